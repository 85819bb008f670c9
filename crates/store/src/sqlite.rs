//! The embedded default store: one SQLite file in WAL mode.
//!
//! Two pools: a single writer connection (SQLite allows one writer at a time;
//! queueing in-process avoids SQLITE_BUSY) and a few readers that WAL lets run
//! beside it. `synchronous = FULL` makes every commit durable before it is
//! acknowledged; batching in the message writer amortizes the fsync.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use palaver_domain::store::{Store, StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::errors::map_err;
use crate::{ManagedStore, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    /// SQLite serializes writers itself; no row locks are needed.
    const FOR_UPDATE: &'static str = "";

    /// Opens (creating if needed) the database file and runs migrations.
    pub async fn open(path: &Path, options: &StoreOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::new().filename(path);
        Self::open_with(connect, options).await
    }

    /// Opens `sqlite://PATH` (relative) or `sqlite:///PATH` (absolute).
    pub async fn open_url(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::Other(
                "in-memory SQLite is not supported: messages must survive a restart".into(),
            ));
        }
        let connect = SqliteConnectOptions::from_str(url).map_err(map_err)?;
        Self::open_with(connect, options).await
    }

    async fn open_with(connect: SqliteConnectOptions, options: &StoreOptions) -> StoreResult<Self> {
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        crate::migrate::run(&MIGRATOR, &writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.pool_size.clamp(1, 8))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self { writer, readers })
    }

    async fn lock_rooms(_tx: &mut Transaction<'_, Sqlite>, _rooms: &[i64]) -> StoreResult<()> {
        Ok(())
    }

    /// `AUTOINCREMENT` already tracks explicitly inserted ids.
    async fn realign_ids(&self) -> StoreResult<()> {
        Ok(())
    }
}

sql_store!(SqliteStore, sqlx::sqlite::SqliteRow);

#[async_trait::async_trait]
impl ManagedStore for SqliteStore {
    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    fn as_store(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}
