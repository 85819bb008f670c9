use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use palaver_domain::time::Timestamp;
use palaver_domain::tokens::{AccessTokens, TokenSettings};

const SECRET: &[u8] = b"the fuzz harness's own secret, 32 bytes or more";

/// An access token as a request presents it. With an even first byte the rest
/// is the token itself (which must never verify: nobody else has the key);
/// with an odd one the rest is the claims of a token signed with the right
/// key, to reach what comes after the signature.
pub fn access_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Built once: key setup is not what is under test.
    static TOKENS: OnceLock<(AccessTokens, EncodingKey)> = OnceLock::new();
    let (tokens, key) = TOKENS.get_or_init(|| {
        (
            AccessTokens::shared_secret(
                SECRET,
                TokenSettings {
                    issuer: "palaver".into(),
                    audience: "palaver".into(),
                    ttl_secs: 900,
                },
            ),
            EncodingKey::from_secret(SECRET),
        )
    });
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        assert!(
            tokens.verify_known(text, Timestamp::now()).is_err(),
            "a token nobody signed verified"
        );
        return;
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(text));
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, Algorithm::HS256)
        .expect("HS256 signs");
    let token = format!("{signing_input}.{signature}");
    if let Ok(bearer) = tokens.verify_known(&token, Timestamp::now()) {
        // It verified: its claims name that user and have not expired. Read
        // as the verifier reads them: other claims are skipped, whatever they
        // hold (a number too large for any type included).
        #[derive(serde::Deserialize)]
        struct Claims {
            sub: String,
            sid: String,
            exp: i64,
            iss: String,
            aud: String,
        }
        let claims: Claims =
            serde_json::from_str(text).expect("verified claims have sub, sid, exp, iss and aud");
        assert_eq!(
            claims.sub.parse::<i64>().ok(),
            Some(bearer.user.0),
            "{text}"
        );
        assert_eq!(claims.sid, bearer.session, "{text}");
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            ("palaver", "palaver"),
            "{text}"
        );
        let now = Timestamp::now().0 / 1000;
        assert!(claims.exp + 5 >= now, "{text}");
    }
}
