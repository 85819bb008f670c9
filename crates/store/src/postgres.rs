//! The PostgreSQL store, for installations that outgrow one machine: many
//! Palaver nodes share one database.
//!
//! Correctness across processes rests on the database, never on memory: seqs
//! come from `rooms.last_seq` under a row lock (taken in room-id order, so
//! concurrent writers cannot deadlock), and idempotent `client_id`s from a
//! unique index checked after that lock.

use std::str::FromStr;
use std::sync::Arc;

use palaver_domain::store::{Store, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::errors::map_err;
use crate::sql::BatchJson;
use crate::{ManagedStore, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub struct PostgresStore {
    writer: PgPool,
    /// The same pool: PostgreSQL runs readers and writers side by side.
    readers: PgPool,
    outbox_origin: Option<String>,
}

impl PostgresStore {
    const FOR_UPDATE: &'static str = " FOR UPDATE";

    /// Connects, then runs migrations (under sqlx's advisory lock, so nodes
    /// starting together migrate once).
    pub async fn open(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(map_err)?
            .application_name("palaver")
            .options([(
                "statement_timeout",
                format!("{}ms", options.statement_timeout.as_millis()),
            )]);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(options.acquire_timeout)
            // A connection that died with the server is detected here, not
            // handed to a request.
            .test_before_acquire(true)
            .connect_with(connect)
            .await
            .map_err(map_err)?;
        crate::migrate::run(&MIGRATOR, &pool).await?;
        Ok(Self {
            writer: pool.clone(),
            readers: pool,
            outbox_origin: options.outbox_origin.clone(),
        })
    }

    /// Relays on several nodes claim disjoint rows instead of waiting on each other.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    /// No: PostgreSQL plans a JSON-array join as a hash join over a
    /// sequential scan while the tables are young (statistics say empty), and
    /// keeps that cached generic plan until autovacuum analyzes them: a fresh
    /// database ran 712 single-message appends/s this way against 1,556 with
    /// shape-built statements, whose lookups use the indexes.
    const BATCH_JSON: Option<BatchJson> = None;

    async fn lock_rooms(tx: &mut Transaction<'_, Postgres>, rooms: &[i64]) -> StoreResult<()> {
        sqlx::query("SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(rooms)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Identity columns do not notice explicitly inserted ids.
    async fn realign_ids(&self) -> StoreResult<()> {
        for table in ["users", "rooms"] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                               GREATEST((SELECT MAX(id) FROM {table}), 1))"
            );
            sqlx::query(&sql)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }
}

sql_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);

#[async_trait::async_trait]
impl ManagedStore for PostgresStore {
    async fn close(&self) {
        self.writer.close().await;
    }

    fn as_store(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}
