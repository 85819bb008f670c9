//! Implementations of the domain's `Store` port: SQLite (embedded default) and
//! PostgreSQL, selected by a database URL.
//!
//! Architecture invariant: SQL exists only in this crate. Both stores run the
//! same SQL text (`SqlStore<E>` in `sql.rs`); what differs — pools, pragmas,
//! migrations, row locks, and how messages are appended — lives in `sqlite/`
//! and `postgres.rs`, behind `sql::Engine`.

mod append_plan;
pub mod backup;
mod blobs;
mod errors;
mod migrate;
mod postgres;
mod s3_blobs;
mod sql;
mod sqlite;
pub mod transfer;

use std::sync::Arc;
use std::time::Duration;

use palaver_domain::store::{Store, StoreError, StoreResult};

pub use blobs::LocalBlobs;
pub use postgres::{PostgresEngine, PostgresStore};
pub use s3_blobs::{S3Blobs, S3Location};
pub use sql::SqlStore;
pub use sqlite::{SqliteEngine, SqliteStore};

/// Connection settings shared by both stores.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool (PostgreSQL); SQLite uses one writer and this many readers (at most 8).
    pub pool_size: u32,
    /// How long a request waits for a connection before failing with "unavailable".
    pub acquire_timeout: Duration,
    /// Longest a single statement may run (PostgreSQL `statement_timeout`).
    pub statement_timeout: Duration,
    /// `Some(node id)` writes every committed event to the transactional outbox,
    /// tagged with this node (cluster mode); `None` writes no outbox.
    pub outbox_origin: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            outbox_origin: None,
        }
    }
}

/// Which engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn of(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(StoreError::Other(format!(
                "unsupported database URL (expected sqlite://PATH or postgres://…): {}",
                redact(url)
            )))
        }
    }
}

/// Opens the store a URL names and brings its schema up to date.
pub async fn open(url: &str, options: &StoreOptions) -> StoreResult<Arc<dyn ManagedStore>> {
    Ok(match Engine::of(url)? {
        Engine::Sqlite => Arc::new(SqliteStore::open_url(url, options).await?),
        Engine::Postgres => Arc::new(PostgresStore::open(url, options).await?),
    })
}

/// A store the server can also shut down and move data out of.
#[async_trait::async_trait]
pub trait ManagedStore: Store + transfer::Transfer {
    /// Closes every pooled connection; waits for in-use ones to be returned.
    async fn close(&self);
    fn as_store(self: Arc<Self>) -> Arc<dyn Store>;
}

/// A URL with its password (if any) replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_follows_the_url_scheme() {
        assert_eq!(
            Engine::of("sqlite://data/palaver.db").unwrap(),
            Engine::Sqlite
        );
        assert_eq!(Engine::of("postgres://u@h/db").unwrap(), Engine::Postgres);
        assert_eq!(Engine::of("postgresql://u@h/db").unwrap(), Engine::Postgres);
        assert!(Engine::of("mysql://u@h/db").is_err());
    }

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/chat"),
            "postgres://app:***@db:5432/chat"
        );
        assert_eq!(redact("postgres://app@db/chat"), "postgres://app@db/chat");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
