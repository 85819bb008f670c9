//! Access tokens (JWTs whose key and algorithm are pinned per `kid`) and
//! refresh tokens (random, stored hashed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::keys::{KeyAlgorithm, KeySchedule, PublicKey, PublicMaterial, SigningKey};
use crate::store::KeyStore;
use crate::time::Timestamp;

const INVALID: &str = "invalid or expired access token";
/// Clock difference tolerated between the node that signs and the one that
/// verifies.
const LEEWAY_SECS: u64 = 5;
/// A token with a `kid` this node does not know makes it read the keys from
/// the store again (a key another node or `palaver keys rotate` added), at
/// most this often.
const RELOAD_ON_UNKNOWN_KID_EVERY: Duration = Duration::from_secs(1);
/// How many verified tokens a node remembers (about 150 bytes each).
const REMEMBERED_TOKENS: usize = 16_384;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The login (refresh-token family) the token was issued to.
    sid: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

/// Who a verified access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    pub user: UserId,
    /// The login it was issued to (`Session` id).
    pub session: String,
    /// When the token stops being valid (Unix seconds): a stream it opened
    /// ends then.
    pub expires_at: i64,
}

/// What every token carries and is checked for.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
}

/// Issues and verifies access tokens, with keys from the store (the default)
/// or one shared HS256 secret (`--jwt-secret`).
pub struct AccessTokens {
    settings: TokenSettings,
    keys: Keys,
}

enum Keys {
    Shared {
        encoding: EncodingKey,
        decoding: DecodingKey,
        remembered: Remembered,
    },
    Stored {
        store: Arc<dyn KeyStore>,
        loaded: RwLock<Arc<LoadedKeys>>,
        /// When a token with an unknown `kid` last made this node re-read.
        last_unknown_kid: Mutex<Option<Instant>>,
    },
}

/// The store's keys, decoded once.
struct LoadedKeys {
    schedule: KeySchedule,
    encoding: HashMap<String, EncodingKey>,
    decoding: HashMap<String, (Algorithm, DecodingKey)>,
    public: Vec<PublicKey>,
    /// Verified with these keys; kept across a reload that changed none of
    /// them, dropped with a reload that changed one.
    remembered: Arc<Remembered>,
}

/// Tokens this node has verified, by the SHA-256 of their whole text, so a
/// client that presents one again (every REST call, a reconnect, another
/// tab) costs a hash and a lookup instead of a signature check (an Ed25519
/// verification is about 100 µs of a core here). Only tokens whose signature
/// verified enter, so filling it takes valid tokens, and the least used go
/// first. What is kept is what the signature vouched for; the token's expiry
/// and its key's schedule are checked again at every use, as for a token
/// never seen.
struct Remembered(quick_cache::sync::Cache<[u8; 32], Arc<Verified>>);

#[derive(Debug)]
struct Verified {
    bearer: Bearer,
    /// The key that signed it (none for the shared secret).
    kid: Option<String>,
}

impl Remembered {
    fn new() -> Self {
        Self(quick_cache::sync::Cache::new(REMEMBERED_TOKENS))
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Verified>> {
        self.0.get(digest)
    }

    fn keep(&self, digest: [u8; 32], verified: Verified) -> Arc<Verified> {
        let verified = Arc::new(verified);
        self.0.insert(digest, verified.clone());
        verified
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl LoadedKeys {
    fn decode(keys: Vec<SigningKey>) -> Result<Self> {
        let schedule = KeySchedule::new(keys);
        let mut encoding = HashMap::new();
        let mut decoding = HashMap::new();
        let mut public = Vec::new();
        for key in schedule.keys() {
            let public_key = key.public()?;
            let (algorithm, encoding_key, decoding_key) = match &public_key.material {
                PublicMaterial::Ed25519 { x } => (
                    Algorithm::EdDSA,
                    EncodingKey::from_ed_der(&key.private_der),
                    DecodingKey::from_ed_components(x).map_err(|_| Error::Internal)?,
                ),
                PublicMaterial::Rsa { n, e } => (
                    Algorithm::RS256,
                    EncodingKey::from_rsa_der(&key.private_der),
                    DecodingKey::from_rsa_components(n, e).map_err(|_| Error::Internal)?,
                ),
            };
            encoding.insert(key.kid.clone(), encoding_key);
            decoding.insert(key.kid.clone(), (algorithm, decoding_key));
            public.push(public_key);
        }
        Ok(Self {
            schedule,
            encoding,
            decoding,
            public,
            remembered: Arc::new(Remembered::new()),
        })
    }
}

impl AccessTokens {
    /// Every token signed and verified with one HS256 secret.
    pub fn shared_secret(secret: &[u8], settings: TokenSettings) -> Self {
        Self {
            settings,
            keys: Keys::Shared {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
                remembered: Remembered::new(),
            },
        }
    }

    /// Signs with the store's keys, creating the first one (`first_key`'s
    /// algorithm) when the store has none.
    pub async fn from_store(
        store: Arc<dyn KeyStore>,
        first_key: KeyAlgorithm,
        settings: TokenSettings,
    ) -> Result<Self> {
        let mut keys = store.signing_keys().await?;
        if keys.is_empty() {
            let now = Timestamp::now();
            let key = SigningKey::generate(first_key, now, now)?;
            if store.insert_signing_key(&key, true).await? {
                tracing::info!(kid = %key.kid, algorithm = key.algorithm.jose_name(), "created the first signing key");
            }
            // Read back: another node may have created it first.
            keys = store.signing_keys().await?;
        }
        let loaded = LoadedKeys::decode(keys)?;
        Ok(Self {
            settings,
            keys: Keys::Stored {
                store,
                loaded: RwLock::new(Arc::new(loaded)),
                last_unknown_kid: Mutex::new(None),
            },
        })
    }

    pub fn ttl_secs(&self) -> u64 {
        self.settings.ttl_secs
    }

    /// How long after a key stopped signing a token of it can still verify.
    pub fn token_lifetime_secs(&self) -> i64 {
        token_lifetime_secs(self.settings.ttl_secs)
    }

    /// Reads the keys from the store again (a rotation).
    pub async fn reload(&self) -> Result<()> {
        if let Keys::Stored { store, loaded, .. } = &self.keys {
            let mut fresh = LoadedKeys::decode(store.signing_keys().await?)?;
            let mut loaded = loaded.write().expect("the key lock is never poisoned");
            // A reload that only added keys (or read the same ones: anyone can
            // make a node read once a second) keeps what was verified with them.
            if loaded.public.iter().all(|key| fresh.public.contains(key)) {
                fresh.remembered = loaded.remembered.clone();
            }
            *loaded = Arc::new(fresh);
        }
        Ok(())
    }

    pub fn issue(&self, user: UserId, session: &str, now: Timestamp) -> Result<String> {
        let iat = now.0 / 1000;
        let claims = Claims {
            sub: user.0.to_string(),
            sid: session.to_owned(),
            iat,
            exp: iat + self.settings.ttl_secs as i64,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
        };
        let encoded = match &self.keys {
            Keys::Shared { encoding, .. } => {
                encode(&Header::new(Algorithm::HS256), &claims, encoding)
            }
            Keys::Stored { loaded, .. } => {
                let loaded = self.loaded(loaded);
                let key = loaded.schedule.signer(now).ok_or_else(|| {
                    tracing::error!("no signing key is due yet");
                    Error::Internal
                })?;
                let (algorithm, _) = loaded.decoding[&key.kid];
                let mut header = Header::new(algorithm);
                header.kid = Some(key.kid.clone());
                encode(&header, &claims, &loaded.encoding[&key.kid])
            }
        };
        encoded.map_err(|e| {
            tracing::error!(error = %e, "jwt encoding failed");
            Error::Internal
        })
    }

    /// Verifies with the keys known now, reading them from the store once
    /// more when the token names a key this node has not seen.
    pub async fn verify(&self, token: &str) -> Result<Bearer> {
        match self.verify_known(token, Timestamp::now()) {
            Err(Unverified::UnknownKey) if self.may_reload() => {
                self.reload().await?;
                self.verify_known(token, Timestamp::now())
                    .map_err(|_| Error::Unauthorized(INVALID))
            }
            other => other.map_err(|_| Error::Unauthorized(INVALID)),
        }
    }

    /// Verifies with the keys this node holds, without reading the store.
    pub fn verify_known(&self, token: &str, now: Timestamp) -> Result<Bearer, Unverified> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let verified = match &self.keys {
            Keys::Shared {
                decoding,
                remembered,
                ..
            } => match remembered.get(&digest) {
                Some(verified) => verified,
                None => {
                    let claims = self.decode(token, Algorithm::HS256, decoding)?;
                    remembered.keep(digest, unexpired(verified(claims, None)?, now)?)
                }
            },
            Keys::Stored { loaded, .. } => {
                let loaded = self.loaded(loaded);
                let known = loaded.remembered.get(&digest);
                let named;
                let kid = match &known {
                    Some(verified) => verified.kid.as_deref().ok_or(Unverified::Invalid)?,
                    None => {
                        let header = decode_header(token).map_err(|_| Unverified::Invalid)?;
                        named = header.kid.ok_or(Unverified::Invalid)?;
                        named.as_str()
                    }
                };
                let (Some((algorithm, key)), Some(stored)) =
                    (loaded.decoding.get(kid), loaded.schedule.find(kid))
                else {
                    return Err(Unverified::UnknownKey);
                };
                if !loaded
                    .schedule
                    .verifies(stored, now, self.token_lifetime_secs())
                {
                    return Err(Unverified::Invalid);
                }
                match known {
                    Some(verified) => verified,
                    None => {
                        let claims = self.decode(token, *algorithm, key)?;
                        let kid = Some(kid.to_owned());
                        loaded
                            .remembered
                            .keep(digest, unexpired(verified(claims, kid)?, now)?)
                    }
                }
            }
        };
        Ok(unexpired(verified, now)?.bearer.clone())
    }

    /// The public keys other services verify tokens with (none for a shared
    /// secret, which must never be published).
    pub fn public_keys(&self, now: Timestamp) -> Vec<PublicKey> {
        match &self.keys {
            Keys::Shared { .. } => Vec::new(),
            Keys::Stored { loaded, .. } => {
                let loaded = self.loaded(loaded);
                let lifetime = self.token_lifetime_secs();
                loaded
                    .public
                    .iter()
                    .filter(|public| {
                        loaded
                            .schedule
                            .find(&public.kid)
                            .is_some_and(|key| loaded.schedule.verifies(key, now, lifetime))
                    })
                    .cloned()
                    .collect()
            }
        }
    }

    fn decode(
        &self,
        token: &str,
        algorithm: Algorithm,
        key: &DecodingKey,
    ) -> Result<Claims, Unverified> {
        // One algorithm per key: `alg: none` and key-confusion tricks fail here.
        let mut validation = Validation::new(algorithm);
        // Checked by `verify_known` against its clock, for remembered tokens too.
        validation.validate_exp = false;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|_| Unverified::Invalid)
    }

    fn loaded(&self, loaded: &RwLock<Arc<LoadedKeys>>) -> Arc<LoadedKeys> {
        loaded
            .read()
            .expect("the key lock is never poisoned")
            .clone()
    }

    fn may_reload(&self) -> bool {
        match &self.keys {
            Keys::Shared { .. } => false,
            Keys::Stored {
                last_unknown_kid, ..
            } => {
                let mut last = last_unknown_kid.lock().expect("never poisoned");
                if last.is_some_and(|at| at.elapsed() < RELOAD_ON_UNKNOWN_KID_EVERY) {
                    return false;
                }
                *last = Some(Instant::now());
                true
            }
        }
    }
}

/// What a token whose signature and claims verified speaks for.
fn verified(claims: Claims, kid: Option<String>) -> Result<Verified, Unverified> {
    let user = claims
        .sub
        .parse()
        .map(UserId)
        .map_err(|_| Unverified::Invalid)?;
    Ok(Verified {
        bearer: Bearer {
            user,
            session: claims.sid,
            expires_at: claims.exp,
        },
        kid,
    })
}

/// `verified` unless it has expired by `now`: checked before a token is
/// remembered (so an expired one takes no place) and again at every use.
fn unexpired<V: AsRef<Verified>>(verified: V, now: Timestamp) -> Result<V, Unverified> {
    if verified.as_ref().bearer.expires_at < now.0.div_euclid(1000) - LEEWAY_SECS as i64 {
        return Err(Unverified::Invalid);
    }
    Ok(verified)
}

impl AsRef<Verified> for Verified {
    fn as_ref(&self) -> &Verified {
        self
    }
}

/// How long a token issued with `ttl_secs` can verify: its lifetime and the
/// leeway (what a retired key's last token needs).
pub fn token_lifetime_secs(ttl_secs: u64) -> i64 {
    (ttl_secs + LEEWAY_SECS) as i64
}

/// Why a token did not verify with the keys at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    Invalid,
    /// Its `kid` names no key this node holds.
    UnknownKey,
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

/// How secrets (refresh and reset tokens, one-time codes) are stored. Tokens
/// carry 256 bits of entropy, so a fast hash is enough to make a leaked
/// database useless; lookups go by hash, so no secret is compared byte by
/// byte. (A 6-digit code's hash can be searched; codes live minutes.)
pub fn hash_secret(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::StoreResult;

    #[derive(Default)]
    struct MemoryKeys(Mutex<Vec<SigningKey>>);

    #[async_trait::async_trait]
    impl KeyStore for MemoryKeys {
        async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn insert_signing_key(&self, key: &SigningKey, first: bool) -> StoreResult<bool> {
            let mut keys = self.0.lock().unwrap();
            if first && !keys.is_empty() {
                return Ok(false);
            }
            keys.push(key.clone());
            Ok(true)
        }
        async fn delete_signing_keys(&self, kids: &[String]) -> StoreResult<()> {
            self.0.lock().unwrap().retain(|k| !kids.contains(&k.kid));
            Ok(())
        }
        async fn cluster_secret(&self, candidate: &str) -> StoreResult<String> {
            Ok(candidate.to_owned())
        }
    }

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "palaver".into(),
            audience: "palaver".into(),
            ttl_secs: 900,
        }
    }

    async fn stored(store: &Arc<MemoryKeys>, algorithm: KeyAlgorithm) -> AccessTokens {
        AccessTokens::from_store(store.clone(), algorithm, settings())
            .await
            .unwrap()
    }

    fn segment(token: &str, at: usize) -> serde_json::Value {
        let part = token.split('.').nth(at).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn issued_tokens_verify_to_their_user_and_login_with_either_algorithm() {
        for algorithm in [KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256] {
            let store = Arc::new(MemoryKeys::default());
            let tokens = stored(&store, algorithm).await;
            let jwt = tokens
                .issue(UserId(42), "login-1", Timestamp::now())
                .unwrap();
            let header = segment(&jwt, 0);
            assert_eq!(header["alg"], algorithm.jose_name());
            assert_eq!(header["kid"], store.0.lock().unwrap()[0].kid.as_str());
            let claims = segment(&jwt, 1);
            assert_eq!(
                (claims["iss"].as_str(), claims["aud"].as_str()),
                (Some("palaver"), Some("palaver"))
            );
            let bearer = tokens.verify(&jwt).await.unwrap();
            assert_eq!(
                (bearer.user, bearer.session.as_str()),
                (UserId(42), "login-1")
            );
            assert_eq!(bearer.expires_at, claims["exp"].as_i64().unwrap());
        }
    }

    #[tokio::test]
    async fn every_node_on_one_store_verifies_the_others_tokens() {
        let store = Arc::new(MemoryKeys::default());
        let first = stored(&store, KeyAlgorithm::EdDsa).await;
        let second = stored(&store, KeyAlgorithm::EdDsa).await;
        assert_eq!(
            store.0.lock().unwrap().len(),
            1,
            "the second node reuses the key"
        );
        let jwt = first.issue(UserId(1), "s", Timestamp::now()).unwrap();
        assert_eq!(second.verify(&jwt).await.unwrap().user, UserId(1));
    }

    #[tokio::test]
    async fn a_key_added_to_the_store_is_picked_up_when_a_token_names_it() {
        let store = Arc::new(MemoryKeys::default());
        let signer = stored(&store, KeyAlgorithm::EdDsa).await;
        let verifier = stored(&store, KeyAlgorithm::EdDsa).await;
        // A second later than the first key, whatever the kids.
        let now = Timestamp::now().plus_seconds(1);
        store
            .insert_signing_key(
                &SigningKey::generate(KeyAlgorithm::Rs256, now, now).unwrap(),
                false,
            )
            .await
            .unwrap();
        signer.reload().await.unwrap();
        let jwt = signer.issue(UserId(7), "s", now).unwrap();
        assert_eq!(
            segment(&jwt, 0)["alg"],
            "RS256",
            "the newest key that is due signs"
        );
        assert_eq!(verifier.verify(&jwt).await.unwrap().user, UserId(7));
        // Tokens naming keys nobody has make the store read at most once a second.
        let unknown = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"nobody's"}"#),
            jwt.split('.').nth(1).unwrap(),
            jwt.split('.').nth(2).unwrap()
        );
        assert!(verifier.verify(&unknown).await.is_err());
        assert!(!verifier.may_reload(), "throttled");
    }

    #[tokio::test]
    async fn expired_foreign_retired_and_unsigned_tokens_are_rejected() {
        let store = Arc::new(MemoryKeys::default());
        let hours_ago = Timestamp::now().plus_seconds(-7200);
        store
            .insert_signing_key(
                &SigningKey::generate(KeyAlgorithm::EdDsa, hours_ago, hours_ago).unwrap(),
                true,
            )
            .await
            .unwrap();
        let tokens = stored(&store, KeyAlgorithm::EdDsa).await;
        let old = tokens
            .issue(UserId(1), "s", Timestamp::now().plus_seconds(-3600))
            .unwrap();
        assert!(tokens.verify(&old).await.is_err());

        let other = stored(&Arc::new(MemoryKeys::default()), KeyAlgorithm::EdDsa).await;
        let foreign = other.issue(UserId(1), "s", Timestamp::now()).unwrap();
        assert!(tokens.verify(&foreign).await.is_err());

        let wrong_audience = AccessTokens::from_store(
            store.clone(),
            KeyAlgorithm::EdDsa,
            TokenSettings {
                audience: "another service".into(),
                ..settings()
            },
        )
        .await
        .unwrap()
        .issue(UserId(1), "s", Timestamp::now())
        .unwrap();
        assert!(tokens.verify(&wrong_audience).await.is_err());

        // {"alg":"none"} with a valid-looking payload and no signature.
        let kid = store.0.lock().unwrap()[0].kid.clone();
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)),
            URL_SAFE_NO_PAD.encode(
                br#"{"sub":"1","sid":"s","iat":0,"exp":99999999999,"iss":"palaver","aud":"palaver"}"#
            )
        );
        assert!(tokens.verify(&unsigned).await.is_err());
    }

    #[tokio::test]
    async fn a_retired_key_neither_verifies_nor_is_published() {
        let store = Arc::new(MemoryKeys::default());
        let tokens = stored(&store, KeyAlgorithm::EdDsa).await;
        // A node that will not have read the next key when it signs.
        let stale = stored(&store, KeyAlgorithm::EdDsa).await;
        let now = Timestamp::now();
        let jwt = tokens.issue(UserId(1), "s", now).unwrap();
        let old_kid = store.0.lock().unwrap()[0].kid.clone();
        let later = now.plus_seconds(10);
        store
            .insert_signing_key(
                &SigningKey::generate(KeyAlgorithm::EdDsa, now, later).unwrap(),
                false,
            )
            .await
            .unwrap();
        tokens.reload().await.unwrap();
        let published = |at: Timestamp| -> Vec<String> {
            tokens.public_keys(at).into_iter().map(|k| k.kid).collect()
        };
        assert_eq!(
            published(now).len(),
            2,
            "the next key is published before it signs"
        );
        assert!(tokens.verify_known(&jwt, now).is_ok());
        assert_eq!(
            remembered(&tokens),
            1,
            "so its key's schedule is checked again"
        );
        let retired = later.plus_seconds(tokens.token_lifetime_secs());
        assert!(!published(retired).contains(&old_kid));
        assert_eq!(tokens.verify_known(&jwt, retired), Err(Unverified::Invalid));
        // Signed with the old key after the next one took over, a token
        // outlives the old key's verification: the key's end ends it, even
        // once remembered.
        let late = stale
            .issue(UserId(2), "s", later.plus_seconds(100))
            .unwrap();
        assert!(tokens.verify_known(&late, later.plus_seconds(100)).is_ok());
        assert_eq!(
            tokens.verify_known(&late, retired),
            Err(Unverified::Invalid)
        );
    }

    #[test]
    fn a_shared_secret_signs_hs256_and_publishes_nothing() {
        let tokens = AccessTokens::shared_secret(b"0123456789abcdef0123456789abcdef", settings());
        let jwt = tokens.issue(UserId(3), "s", Timestamp::now()).unwrap();
        assert_eq!(segment(&jwt, 0)["alg"], "HS256");
        assert_eq!(
            tokens.verify_known(&jwt, Timestamp::now()).unwrap().user,
            UserId(3)
        );
        assert!(tokens.public_keys(Timestamp::now()).is_empty());
        let other = AccessTokens::shared_secret(b"another-secret-another-secret-xx", settings());
        assert!(other.verify_known(&jwt, Timestamp::now()).is_err());
    }

    /// How many verified tokens `tokens` remembers.
    fn remembered(tokens: &AccessTokens) -> usize {
        match &tokens.keys {
            Keys::Shared { remembered, .. } => remembered.len(),
            Keys::Stored { loaded, .. } => tokens.loaded(loaded).remembered.len(),
        }
    }

    #[test]
    fn a_token_presented_again_is_remembered_and_still_expires() {
        let tokens = AccessTokens::shared_secret(b"0123456789abcdef0123456789abcdef", settings());
        let now = Timestamp::now();
        let jwt = tokens.issue(UserId(3), "s", now).unwrap();
        let bearer = tokens.verify_known(&jwt, now).unwrap();
        assert_eq!(remembered(&tokens), 1);
        assert_eq!(tokens.verify_known(&jwt, now), Ok(bearer.clone()));
        assert_eq!(remembered(&tokens), 1, "one entry per token");
        let last_second = now.plus_seconds(tokens.token_lifetime_secs());
        assert_eq!(tokens.verify_known(&jwt, last_second), Ok(bearer));
        assert_eq!(
            tokens.verify_known(&jwt, last_second.plus_seconds(1)),
            Err(Unverified::Invalid)
        );
        let expired = tokens
            .issue(UserId(3), "s", now.plus_seconds(-1000))
            .unwrap();
        assert_eq!(tokens.verify_known(&expired, now), Err(Unverified::Invalid));
        assert_eq!(remembered(&tokens), 1, "an expired token takes no place");
    }

    #[tokio::test]
    async fn only_tokens_whose_signature_verified_are_remembered() {
        let store = Arc::new(MemoryKeys::default());
        let tokens = stored(&store, KeyAlgorithm::EdDsa).await;
        let now = Timestamp::now();
        let jwt = tokens.issue(UserId(1), "s", now).unwrap();
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let mut forged = URL_SAFE_NO_PAD.decode(signature).unwrap();
        forged[0] ^= 1;
        let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(tokens.verify_known(&forged, now), Err(Unverified::Invalid));
        assert_eq!(remembered(&tokens), 0);
        assert!(tokens.verify_known(&jwt, now).is_ok());
        // The genuine token remembered does not vouch for a forgery of it.
        assert_eq!(tokens.verify_known(&forged, now), Err(Unverified::Invalid));
        let other_user = format!(
            "{}.{}.{signature}",
            jwt.split('.').next().unwrap(),
            URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(&serde_json::json!({
                    "sub": "2", "sid": "s", "iat": 0, "exp": 99_999_999_999i64,
                    "iss": "palaver", "aud": "palaver"
                }))
                .unwrap()
            )
        );
        assert_eq!(
            tokens.verify_known(&other_user, now),
            Err(Unverified::Invalid)
        );
        assert_eq!(remembered(&tokens), 1);
    }

    #[tokio::test]
    async fn no_variant_of_a_remembered_token_verifies() {
        for algorithm in [KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256] {
            let store = Arc::new(MemoryKeys::default());
            let tokens = stored(&store, algorithm).await;
            let now = Timestamp::now();
            let jwt = tokens.issue(UserId(1), "s", now).unwrap();
            tokens.verify_known(&jwt, now).unwrap();
            assert_eq!(remembered(&tokens), 1);
            let kid = store.0.lock().unwrap()[0].kid.clone();
            let parts: Vec<&str> = jwt.split('.').collect();
            let (header, payload, signature) = (parts[0], parts[1], parts[2]);
            let encode = |value: serde_json::Value| {
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&value).unwrap())
            };
            // HS256 keyed with the public key (key confusion).
            let public = match &tokens.public_keys(now)[0].material {
                PublicMaterial::Ed25519 { x } => x.clone().into_bytes(),
                PublicMaterial::Rsa { n, .. } => n.clone().into_bytes(),
            };
            let hs256 = encode(serde_json::json!({"alg": "HS256", "kid": kid, "typ": "JWT"}));
            let signed = format!("{hs256}.{payload}");
            let confused = jsonwebtoken::crypto::sign(
                signed.as_bytes(),
                &EncodingKey::from_secret(&public),
                Algorithm::HS256,
            )
            .unwrap();
            let none = encode(serde_json::json!({"alg": "none", "kid": kid}));
            let reencoded = encode(serde_json::json!({
                "alg": algorithm.jose_name(), "kid": kid, "typ": "JWT"
            }));
            let other_user = encode(serde_json::json!({
                "sub": "2", "sid": "s", "iat": 0, "exp": 99_999_999_999i64,
                "iss": "palaver", "aud": "palaver"
            }));
            let mut last_changed = signature.to_owned();
            let last = last_changed.pop().unwrap();
            last_changed.push(if last == 'A' { 'B' } else { 'A' });
            let variants = [
                format!("{none}.{payload}."),
                format!("{none}.{payload}.{signature}"),
                format!("{signed}.{confused}"),
                format!("{jwt} "),
                format!(" {jwt}"),
                format!("{jwt}="),
                format!("{jwt}."),
                jwt.to_uppercase(),
                format!("{header}.{payload}.{}", &signature[..signature.len() - 1]),
                format!("{header}.{payload}.{last_changed}"),
                format!("{reencoded}.{payload}.{signature}"),
                format!("{header}.{other_user}.{signature}"),
                format!("{header}.{payload}"),
            ];
            for variant in &variants {
                assert!(
                    tokens.verify(variant).await.is_err(),
                    "{algorithm:?}: {variant:?} verified"
                );
            }
            assert_eq!(remembered(&tokens), 1, "no variant entered");
        }
    }

    #[tokio::test]
    async fn a_reload_keeps_remembered_tokens_unless_a_key_went() {
        let store = Arc::new(MemoryKeys::default());
        let tokens = stored(&store, KeyAlgorithm::EdDsa).await;
        let now = Timestamp::now();
        let jwt = tokens.issue(UserId(1), "s", now).unwrap();
        tokens.verify_known(&jwt, now).unwrap();
        let later = now.plus_seconds(1);
        let next = SigningKey::generate(KeyAlgorithm::EdDsa, later, later).unwrap();
        store.insert_signing_key(&next, false).await.unwrap();
        tokens.reload().await.unwrap();
        assert_eq!(remembered(&tokens), 1, "a key was added, none changed");

        let first = store.0.lock().unwrap()[0].kid.clone();
        store.delete_signing_keys(&[first]).await.unwrap();
        tokens.reload().await.unwrap();
        assert_eq!(remembered(&tokens), 0);
        assert_eq!(
            tokens.verify_known(&jwt, now),
            Err(Unverified::UnknownKey),
            "its key is gone"
        );
    }

    #[test]
    fn refresh_tokens_are_random_and_hash_deterministically() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), a);
    }
}
