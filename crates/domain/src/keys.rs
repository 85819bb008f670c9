//! The keys that sign access tokens: generated here, kept in the store (so
//! every node on one database signs and verifies with the same ones), and
//! published as public keys for other services.
//!
//! A key signs from its `signs_from` until the next key's; a rotation adds a
//! key whose `signs_from` lies ahead, so it is published before it signs
//! anything. A key stays verifiable until every token it signed has expired:
//! the access-token lifetime (plus leeway) after its successor took over.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// How a key signs. Pinned per key: a token is verified only with its key's
/// own algorithm, whatever its header claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (JOSE `EdDSA`): the default; small keys, fast to sign and check.
    EdDsa,
    /// RSA 2048 with SHA-256 (JOSE `RS256`), for verifiers without EdDSA.
    Rs256,
}

impl KeyAlgorithm {
    /// The JOSE name (`alg`), which is also how the store spells it.
    pub fn jose_name(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDsa => "EdDSA",
            KeyAlgorithm::Rs256 => "RS256",
        }
    }

    /// Accepts the JOSE name in any case, and `ed25519` for `EdDSA`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "eddsa" | "ed25519" => Ok(KeyAlgorithm::EdDsa),
            "rs256" => Ok(KeyAlgorithm::Rs256),
            _ => Err(Error::invalid("algorithm", "must be EdDSA or RS256")),
        }
    }
}

/// A signing key as the store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The `kid` of the tokens it signs and of its JWK.
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    /// PKCS#8 DER for Ed25519, PKCS#1 DER for RSA.
    pub private_der: Vec<u8>,
    pub created_at: Timestamp,
    pub signs_from: Timestamp,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_der", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("signs_from", &self.signs_from)
            .finish()
    }
}

/// What a verifier needs of a key, in the JWK's own encoding (base64url).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub material: PublicMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicMaterial {
    /// JWK `kty: OKP, crv: Ed25519`.
    Ed25519 { x: String },
    /// JWK `kty: RSA`.
    Rsa { n: String, e: String },
}

impl SigningKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate(
        algorithm: KeyAlgorithm,
        now: Timestamp,
        signs_from: Timestamp,
    ) -> Result<Self> {
        let private_der = match algorithm {
            KeyAlgorithm::EdDsa => {
                let rng = ring::rand::SystemRandom::new();
                Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| internal("generating an Ed25519 key"))?
                    .as_ref()
                    .to_vec()
            }
            KeyAlgorithm::Rs256 => {
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                    .map_err(|_| internal("generating an RSA key"))?;
                key.to_pkcs1_der()
                    .map_err(|_| internal("encoding an RSA key"))?
                    .as_bytes()
                    .to_vec()
            }
        };
        Ok(Self {
            kid: crate::tokens::random_token(12),
            algorithm,
            private_der,
            created_at: now,
            signs_from,
        })
    }

    pub fn public(&self) -> Result<PublicKey> {
        let material = match self.algorithm {
            KeyAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(&self.private_der)
                    .map_err(|_| internal("reading an Ed25519 key"))?;
                PublicMaterial::Ed25519 {
                    x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                }
            }
            KeyAlgorithm::Rs256 => {
                let key = rsa::RsaPrivateKey::from_pkcs1_der(&self.private_der)
                    .map_err(|_| internal("reading an RSA key"))?;
                PublicMaterial::Rsa {
                    n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                    e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
                }
            }
        };
        Ok(PublicKey {
            kid: self.kid.clone(),
            algorithm: self.algorithm,
            material,
        })
    }

    /// The private key as the store's text column holds it.
    pub fn private_text(&self) -> String {
        STANDARD.encode(&self.private_der)
    }

    pub fn decode_private_text(text: &str) -> Result<Vec<u8>> {
        STANDARD
            .decode(text)
            .map_err(|_| internal("decoding a stored signing key"))
    }
}

fn internal(what: &str) -> Error {
    tracing::error!("{what} failed");
    Error::Internal
}

/// Every key a node knows, oldest first, with the rules of which one signs
/// and which ones verify at a given time.
#[derive(Debug, Clone, Default)]
pub struct KeySchedule {
    keys: Vec<SigningKey>,
}

impl KeySchedule {
    pub fn new(mut keys: Vec<SigningKey>) -> Self {
        // Ties (two nodes creating the first key at once) are broken by kid,
        // so every node picks the same signer.
        keys.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        Self { keys }
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key that signs at `now`: the latest whose `signs_from` has come.
    pub fn signer(&self, now: Timestamp) -> Option<&SigningKey> {
        self.keys.iter().rev().find(|k| k.signs_from <= now)
    }

    /// When `key` stopped signing (its successor's `signs_from`), if it has
    /// a successor.
    pub fn superseded_at(&self, key: &SigningKey) -> Option<Timestamp> {
        let at = self.keys.iter().position(|k| k.kid == key.kid)?;
        self.keys.get(at + 1).map(|next| next.signs_from)
    }

    /// Whether a token signed by `key` can still be valid at `now`, given
    /// tokens live `token_lifetime_secs` (leeway included). A key published
    /// ahead of its time verifies too: it has signed nothing yet, and a node
    /// whose clock runs ahead may already sign with it.
    pub fn verifies(&self, key: &SigningKey, now: Timestamp, token_lifetime_secs: i64) -> bool {
        match self.superseded_at(key) {
            None => true,
            Some(at) => now < at.plus_seconds(token_lifetime_secs),
        }
    }

    /// The keys that verify at `now`: what the JWKS document publishes.
    pub fn verifying(
        &self,
        now: Timestamp,
        token_lifetime_secs: i64,
    ) -> impl Iterator<Item = &SigningKey> {
        self.keys
            .iter()
            .filter(move |k| self.verifies(k, now, token_lifetime_secs))
    }

    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// Adds a key of `algorithm` that signs from `publish_ahead_secs` after
/// `now`, and deletes keys no token of which can still be valid. Returns the
/// new key and the kids deleted.
pub async fn rotate(
    store: &dyn crate::store::KeyStore,
    algorithm: KeyAlgorithm,
    publish_ahead_secs: i64,
    token_lifetime_secs: i64,
    now: Timestamp,
) -> Result<(SigningKey, Vec<String>)> {
    let key = SigningKey::generate(algorithm, now, now.plus_seconds(publish_ahead_secs))?;
    store.insert_signing_key(&key, false).await?;
    let schedule = KeySchedule::new(store.signing_keys().await?);
    let retired: Vec<String> = schedule
        .keys()
        .iter()
        .filter(|k| !schedule.verifies(k, now, token_lifetime_secs))
        .map(|k| k.kid.clone())
        .collect();
    store.delete_signing_keys(&retired).await?;
    Ok((key, retired))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, signs_from: i64) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            algorithm: KeyAlgorithm::EdDsa,
            private_der: Vec::new(),
            created_at: Timestamp(0),
            signs_from: Timestamp(signs_from),
        }
    }

    #[test]
    fn the_latest_key_whose_time_has_come_signs() {
        let schedule = KeySchedule::new(vec![key("b", 10_000), key("a", 0)]);
        assert_eq!(schedule.signer(Timestamp(5_000)).unwrap().kid, "a");
        assert_eq!(schedule.signer(Timestamp(10_000)).unwrap().kid, "b");
        assert!(KeySchedule::new(vec![key("a", 1)])
            .signer(Timestamp(0))
            .is_none());
    }

    #[test]
    fn a_superseded_key_verifies_until_its_last_token_has_expired() {
        let schedule = KeySchedule::new(vec![key("old", 0), key("new", 10_000)]);
        let old = schedule.find("old").unwrap();
        // 60 s lifetime: tokens signed just before 10 s live until 70 s.
        assert!(schedule.verifies(old, Timestamp(69_999), 60));
        assert!(!schedule.verifies(old, Timestamp(70_000), 60));
        let new = schedule.find("new").unwrap();
        assert!(
            schedule.verifies(new, Timestamp(0), 60),
            "published before it signs"
        );
        let published: Vec<_> = schedule
            .verifying(Timestamp(80_000), 60)
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(published, ["new"]);
    }

    #[test]
    fn keys_created_at_the_same_time_are_ordered_by_kid_on_every_node() {
        let one = KeySchedule::new(vec![key("x", 5), key("y", 5)]);
        let other = KeySchedule::new(vec![key("y", 5), key("x", 5)]);
        assert_eq!(one.signer(Timestamp(5)).unwrap().kid, "y");
        assert_eq!(other.signer(Timestamp(5)).unwrap().kid, "y");
    }

    #[test]
    fn generated_keys_give_their_public_half() {
        let now = Timestamp(0);
        let ed = SigningKey::generate(KeyAlgorithm::EdDsa, now, now).unwrap();
        let PublicMaterial::Ed25519 { x } = ed.public().unwrap().material else {
            panic!("an Ed25519 key has an OKP public key");
        };
        assert_eq!(URL_SAFE_NO_PAD.decode(x).unwrap().len(), 32);
        let stored = SigningKey::decode_private_text(&ed.private_text()).unwrap();
        assert_eq!(stored, ed.private_der);
    }

    #[test]
    fn algorithms_parse_by_jose_name() {
        assert_eq!(KeyAlgorithm::parse("EdDSA").unwrap(), KeyAlgorithm::EdDsa);
        assert_eq!(KeyAlgorithm::parse("rs256").unwrap(), KeyAlgorithm::Rs256);
        assert!(KeyAlgorithm::parse("HS256").is_err());
        assert!(KeyAlgorithm::parse("none").is_err());
    }
}
