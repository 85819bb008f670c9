//! Password hashing with argon2id, off the async runtime, a few at a time.
//!
//! Each hash holds its memory cost (19 MiB by default) for its whole run,
//! and tokio's blocking pool would run hundreds at once: a flood of logins
//! would be an out-of-memory kill. So at most `concurrent` hashes run, at most
//! `waiting` callers wait for a turn (each for at most [`MAX_HASH_WAIT`]), and
//! everyone else is refused at once with [`Error::Overloaded`]. A turn moves
//! into the blocking task with its hash, so a caller that goes away does not
//! free its turn before the hash is done. The binary also keeps the allocator
//! from holding on to a finished hash's memory (`main.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// The longest a caller waits for a hashing turn before it is refused.
pub const MAX_HASH_WAIT: Duration = Duration::from_secs(2);

/// What a refused caller is told to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How many hashes run at once, and how many callers may wait for a turn.
#[derive(Debug, Clone, Copy)]
pub struct HashingLimits {
    pub concurrent: usize,
    pub waiting: usize,
}

impl Default for HashingLimits {
    /// One hash per core: hashing is CPU-bound, so more at once only adds
    /// memory, not throughput.
    fn default() -> Self {
        Self {
            concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            waiting: 64,
        }
    }
}

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
    turns: Arc<Turns>,
}

/// Turns at hashing: permits for the running hashes, a count of the waiting.
struct Turns {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Turns {
    /// A permit to hash, held until the hash is done.
    async fn take(&self) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(overloaded());
        }
        let waited =
            tokio::time::timeout(MAX_HASH_WAIT, self.running.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out (or the semaphore closed, which it never is).
            _ => Err(overloaded()),
        }
    }
}

fn overloaded() -> Error {
    metrics::counter!("palaver_password_hashes_refused_total").increment(1);
    Error::Overloaded {
        retry_after: RETRY_AFTER,
    }
}

impl Passwords {
    pub fn new(cost: HashCost, limits: HashingLimits) -> Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| Error::invalid("argon2", e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy_hash = hash_with(&argon, "decoy password never used")?;
        let turns = Arc::new(Turns {
            running: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting: limits.waiting,
        });
        Ok(Self {
            argon,
            decoy_hash,
            turns,
        })
    }

    /// `Overloaded` when too many hashes run and wait already.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let turn = self.turns.take().await?;
        let argon = self.argon.clone();
        let password = password.to_owned();
        run_blocking(turn, move || hash_with(&argon, &password)).await
    }

    /// Constant-time comparison is done by argon2's verifier. `Overloaded`
    /// as for [`Passwords::hash`].
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let turn = self.turns.take().await?;
        let argon = self.argon.clone();
        let password = password.to_owned();
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.decoy_hash).to_owned();
        let matched = run_blocking(turn, move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| {
                tracing::error!(error = %e, "stored password hash is unreadable");
                Error::Internal
            })?;
            Ok(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await?;
        Ok(known && matched)
    }
}

/// Runs `work` off the runtime, holding `turn` until it is done.
async fn run_blocking<T: Send + 'static>(
    turn: OwnedSemaphorePermit,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        work()
    })
    .await
    .map_err(|_| Error::Internal)?
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
        cheap_with(HashingLimits::default())
    }

    fn cheap_with(limits: HashingLimits) -> Passwords {
        let cost = HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        Passwords::new(cost, limits).unwrap()
    }

    #[tokio::test]
    async fn past_the_running_and_waiting_hashes_a_caller_is_refused_at_once() {
        let passwords = cheap_with(HashingLimits {
            concurrent: 1,
            waiting: 1,
        });
        // Both turns taken by hand: one running, one waiting.
        let running = passwords.turns.take().await.unwrap();
        let waiter = {
            let passwords = passwords.clone();
            tokio::spawn(async move { passwords.hash("correct horse").await })
        };
        while passwords.turns.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = passwords.verify("correct horse", None).await;
        assert!(
            matches!(refused, Err(Error::Overloaded { .. })),
            "{refused:?}"
        );
        drop(running);
        assert!(waiter.await.unwrap().is_ok(), "the waiter gets its turn");
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_waits_for_a_turn_at_most_max_hash_wait() {
        let passwords = cheap_with(HashingLimits {
            concurrent: 1,
            waiting: 8,
        });
        let _running = passwords.turns.take().await.unwrap();
        let refused = passwords.hash("correct horse").await;
        assert!(
            matches!(refused, Err(Error::Overloaded { .. })),
            "{refused:?}"
        );
        assert_eq!(passwords.turns.waiting.load(Ordering::Acquire), 0);
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
