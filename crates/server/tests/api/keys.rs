//! Access tokens as another service sees them: signed by a key the JWKS
//! document publishes, with the claims it must check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::helpers::*;

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    sid: String,
}

#[tokio::test]
async fn access_tokens_verify_with_the_published_key_alone() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let response = reqwest::get(format!("{}/.well-known/jwks.json", app.base_url))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=300",
        "verifiers may cache it"
    );
    let jwks: palaver_client::types::Jwks = response.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    let key = &jwks.keys[0];
    assert_eq!(
        (
            key.kty.as_str(),
            key.alg.as_str(),
            key.crv.as_deref(),
            key.use_.as_str()
        ),
        ("OKP", "EdDSA", Some("Ed25519"), "sig"),
        "Ed25519 by default"
    );

    let header = jsonwebtoken::decode_header(&alice.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["palaver"]);
    validation.set_audience(&["palaver"]);
    let decoding = DecodingKey::from_ed_components(key.x.as_deref().unwrap()).unwrap();
    let claims = jsonwebtoken::decode::<Claims>(&alice.access_token, &decoding, &validation)
        .expect("verifies with the JWK")
        .claims;
    assert_eq!(claims.sub, alice.user.id.to_string());
    let current = alice.client.sessions().await.unwrap();
    assert_eq!(claims.sid, current[0].id, "sid names the login");

    // A token whose signature does not match is refused.
    // (A character well inside the signature: the last one also carries padding bits.)
    let mut forged = alice.access_token.clone().into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(jsonwebtoken::decode::<Claims>(&forged, &decoding, &validation).is_err());
    let status = app.client.with_token(&forged).me().await.unwrap_err();
    assert!(matches!(
        status,
        palaver_client::ClientError::Api { status: 401, .. }
    ));
}

#[tokio::test]
async fn rs256_is_selectable_and_published_as_an_rsa_key() {
    let app = spawn_app_with(|s| {
        s.tokens.algorithm = palaver_domain::keys::KeyAlgorithm::Rs256;
        s.tokens.issuer = "https://chat.example".into();
        s.tokens.audience = "chat-api".into();
    })
    .await;
    let alice = app.signup("alice").await;
    let jwks = app.client.jwks().await.unwrap();
    let key = &jwks.keys[0];
    assert_eq!((key.kty.as_str(), key.alg.as_str()), ("RSA", "RS256"));
    let n = URL_SAFE_NO_PAD.decode(key.n.as_deref().unwrap()).unwrap();
    assert_eq!(n.len(), 256, "a 2048-bit modulus");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["https://chat.example"]);
    validation.set_audience(&["chat-api"]);
    let decoding =
        DecodingKey::from_rsa_components(key.n.as_deref().unwrap(), key.e.as_deref().unwrap())
            .unwrap();
    jsonwebtoken::decode::<Claims>(&alice.access_token, &decoding, &validation)
        .expect("verifies with the JWK");
    // The algorithm is pinned to the key: the same token presented as HS256
    // signed with the public key (key confusion) is refused.
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(key.kid.clone()),
            ..jsonwebtoken::Header::new(Algorithm::HS256)
        },
        &serde_json::json!({
            "sub": alice.user.id.to_string(), "sid": "x", "iat": 0, "exp": 99999999999_i64,
            "iss": "https://chat.example", "aud": "chat-api",
        }),
        &jsonwebtoken::EncodingKey::from_secret(&n),
    )
    .unwrap();
    let refused = app.client.with_token(&confused).me().await.unwrap_err();
    assert!(matches!(
        refused,
        palaver_client::ClientError::Api { status: 401, .. }
    ));
}

#[tokio::test]
async fn a_shared_secret_signs_hs256_and_publishes_no_key() {
    let app = spawn_app_with(|s| {
        s.tokens.jwt_secret = Some(palaver_server::config::Secret::new(
            b"a shared secret of at least 32 bytes".to_vec(),
        ));
    })
    .await;
    let alice = app.signup("alice").await;
    let header = jsonwebtoken::decode_header(&alice.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    alice.client.me().await.unwrap();
    assert!(app.client.jwks().await.unwrap().keys.is_empty());
}
