//! Password hashing with argon2id, off the async runtime.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};

use crate::error::{Error, Result};

/// argon2id cost; defaults follow OWASP's recommendation (19 MiB, 2 passes).
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// A real hash verified when the user is unknown, so both failures cost the same.
    decoy_hash: String,
}

impl Passwords {
    pub fn new(cost: HashCost) -> Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| Error::invalid("argon2", e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy_hash = hash_with(&argon, "decoy password never used")?;
        Ok(Self { argon, decoy_hash })
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let argon = self.argon.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&argon, &password))
            .await
            .map_err(|_| Error::Internal)?
    }

    /// Constant-time comparison is done by argon2's verifier.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let argon = self.argon.clone();
        let password = password.to_owned();
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.decoy_hash).to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| {
                tracing::error!(error = %e, "stored password hash is unreadable");
                Error::Internal
            })?;
            Ok::<_, Error>(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|_| Error::Internal)??;
        Ok(known && matched)
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            Error::Internal
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let passwords = cheap();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(passwords
            .verify("correct horse", Some(&hash))
            .await
            .unwrap());
        assert!(!passwords.verify("wrong horse", Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let passwords = cheap();
        assert!(!passwords
            .verify("decoy password never used", None)
            .await
            .unwrap());
    }
}
