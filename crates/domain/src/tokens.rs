//! Access tokens (JWT, HS256 pinned) and refresh tokens (random, stored hashed).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::time::Timestamp;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl AccessTokens {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        // Pinning the algorithm rejects `alg: none` and key-confusion tricks.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(&self, user: UserId, now: Timestamp) -> Result<String> {
        let iat = now.0 / 1000;
        let claims = Claims {
            sub: user.0.to_string(),
            iat,
            exp: iat + self.ttl_secs as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "jwt encoding failed");
            Error::Internal
        })
    }

    pub fn verify(&self, token: &str) -> Result<UserId> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::Unauthorized("invalid or expired access token"))?;
        data.claims
            .sub
            .parse()
            .map(UserId)
            .map_err(|_| Error::Unauthorized("invalid or expired access token"))
    }
}

/// A fresh refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    random_token(32)
}

/// A random URL-safe string of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Tokens carry 256 bits of entropy, so a fast hash is enough to make a leaked
/// database useless; lookups go by hash, so no secret is compared byte by byte.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_verifies_to_its_user() {
        let tokens = AccessTokens::new(b"0123456789abcdef0123456789abcdef", 900);
        let jwt = tokens.issue(UserId(42), Timestamp::now()).unwrap();
        assert_eq!(tokens.verify(&jwt).unwrap(), UserId(42));
    }

    #[test]
    fn expired_wrong_key_and_unsigned_tokens_are_rejected() {
        let tokens = AccessTokens::new(b"0123456789abcdef0123456789abcdef", 900);
        let old = tokens
            .issue(UserId(1), Timestamp::now().plus_seconds(-3600))
            .unwrap();
        assert!(tokens.verify(&old).is_err());

        let other = AccessTokens::new(b"another-secret-another-secret-xx", 900);
        let foreign = other.issue(UserId(1), Timestamp::now()).unwrap();
        assert!(tokens.verify(&foreign).is_err());

        // {"alg":"none"} with a valid-looking payload and no signature.
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"1","iat":0,"exp":99999999999}"#)
        );
        assert!(tokens.verify(&unsigned).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hash_deterministically() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a), hash_refresh_token(&a));
        assert_ne!(hash_refresh_token(&a), a);
    }
}
