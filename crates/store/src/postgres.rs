//! The PostgreSQL store, for installations that outgrow one machine: many
//! Palaver nodes share one database.
//!
//! Correctness across processes rests on the database, never on memory: seqs
//! come from `rooms.last_seq` under a row lock (taken in room-id order, so
//! concurrent writers cannot deadlock), and idempotent `client_id`s from a
//! unique index checked after that lock.

use std::str::FromStr;
use std::sync::Arc;

use std::collections::{HashMap, HashSet};

use palaver_domain::events::DomainEvent;
use palaver_domain::model::User;
use palaver_domain::store::{Appended, Committed, NewMessage, Store, StoreResult};
use palaver_domain::{RoomId, UserId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row, Transaction};

use crate::append_plan;
use crate::errors::map_err;
use crate::sql::{Engine, SqlStore, CACHED_BATCH_SHAPES};
use crate::{ManagedStore, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store: the shared SQL over this engine. Its `readers` pool
/// is the `writer` pool: PostgreSQL runs readers and writers side by side.
pub type PostgresStore = SqlStore<PostgresEngine>;

/// PostgreSQL's own part of the store: its appends and row locks.
#[derive(Clone)]
pub struct PostgresEngine;

impl SqlStore<PostgresEngine> {
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
            engine: PostgresEngine,
        })
    }
}

impl PostgresEngine {
    async fn lock_rooms(tx: &mut Transaction<'_, Postgres>, rooms: &[i64]) -> StoreResult<()> {
        sqlx::query("SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(rooms)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Engine for PostgresEngine {
    type Db = Postgres;
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    /// PostgreSQL runs writers side by side, locking rows itself.
    type WriteTurn = ();

    async fn write_turn(&self) {}

    /// `Store::append_messages`: one transaction, one statement per step.
    ///
    /// Statements are built to the batch's shape and cached for small
    /// batches. Not statements taking the batch as one JSON array (one text
    /// whatever the batch, so always prepared): PostgreSQL plans a JSON-array
    /// join as a hash join over a sequential scan while the tables are young
    /// (statistics say empty), and keeps that cached generic plan until
    /// autovacuum analyzes them: a fresh database ran 712 single-message
    /// appends/s that way against 1,556 with these, whose lookups use the
    /// indexes.
    async fn append(&self, store: &PostgresStore, batch: &[NewMessage]) -> StoreResult<Appended> {
        if batch.is_empty() {
            return Ok(Committed::quiet(Vec::new()));
        }
        let cache_statements = batch.len() <= CACHED_BATCH_SHAPES;
        let (_turn, mut tx) = store.begin_write().await?;
        // Lock the batch's rooms in id order before anything else: seq
        // allocation and the client_id check then see every commit of a
        // concurrent writer (another node), and two writers never deadlock.
        let mut rooms: Vec<i64> = batch.iter().map(|m| m.room_id.0).collect();
        rooms.sort_unstable();
        rooms.dedup();
        Self::lock_rooms(&mut tx, &rooms).await?;

        let pairs = append_plan::sender_pairs(batch);
        let mut query =
            QueryBuilder::<Postgres>::new("SELECT room_id, user_id FROM members WHERE ");
        for (n, (room, user)) in pairs.iter().enumerate() {
            if n > 0 {
                query.push(" OR ");
            }
            query
                .push("(room_id = ")
                .push_bind(*room)
                .push(" AND user_id = ")
                .push_bind(*user)
                .push(")");
        }
        let members: HashSet<(i64, i64)> = query
            .build()
            .persistent(cache_statements)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)?;

        let keys = append_plan::keys_to_check(batch, &members);
        let mut existing = HashMap::new();
        if !keys.is_empty() {
            let mut query = QueryBuilder::<Postgres>::new(format!(
                "SELECT {} FROM messages m WHERE ",
                crate::sql::MESSAGE_COLUMNS
            ));
            for (n, (room, sender, client_id)) in keys.iter().enumerate() {
                if n > 0 {
                    query.push(" OR ");
                }
                query
                    .push("(m.room_id = ")
                    .push_bind(*room)
                    .push(" AND m.sender_id = ")
                    .push_bind(*sender)
                    .push(" AND m.client_id = ")
                    .push_bind(*client_id)
                    .push(")");
            }
            let rows = query
                .build()
                .persistent(cache_statements)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
            for row in rows {
                let message = crate::sql::decode::message(&row)?;
                let key = (
                    message.room_id.0,
                    message.sender_id.0,
                    message.client_id.clone().unwrap_or_default(),
                );
                existing.insert(key, message);
            }
        }

        let plan = append_plan::decide(batch, &members, &existing);
        let mut next_seq = HashMap::new();
        for (room, count) in &plan.new_per_room {
            let last: i64 = sqlx::query_scalar(
                "UPDATE rooms SET last_seq = last_seq + $1 WHERE id = $2 RETURNING last_seq",
            )
            .bind(*count)
            .bind(*room)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            next_seq.insert(*room, last - count + 1);
        }
        let (outcomes, stored) = append_plan::settle(batch, plan, next_seq)?;

        for chunk in stored.chunks(crate::sql::INSERT_CHUNK) {
            let mut query = QueryBuilder::<Postgres>::new(
                "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at, reply_to) ",
            );
            query.push_values(chunk, |mut row, m| {
                row.push_bind(m.room_id.0)
                    .push_bind(m.seq as i64)
                    .push_bind(m.sender_id.0)
                    .push_bind(m.body.as_str())
                    .push_bind(m.client_id.as_deref())
                    .push_bind(m.created_at.0)
                    .push_bind(m.reply_to.map(|s| s as i64));
            });
            query
                .build()
                .persistent(cache_statements)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let now = stored.first().map(|first| first.created_at);
        let events: Vec<_> = stored.into_iter().map(DomainEvent::MessagePosted).collect();
        match now {
            Some(now) => store.commit_events(tx, outcomes, events, now).await,
            None => {
                tx.commit().await.map_err(map_err)?;
                Ok(Committed::quiet(outcomes))
            }
        }
    }

    /// Identity columns do not notice explicitly inserted ids.
    async fn realign_ids(&self, store: &PostgresStore) -> StoreResult<()> {
        for table in ["users", "rooms"] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                               GREATEST((SELECT MAX(id) FROM {table}), 1))"
            );
            sqlx::query(&sql)
                .execute(&store.writer)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    /// `Store::room_positions`.
    async fn room_positions(
        &self,
        store: &PostgresStore,
        user: UserId,
    ) -> StoreResult<Vec<(RoomId, u64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(crate::sql::ROOM_POSITIONS)
            .bind(user.0)
            .fetch_all(&store.readers)
            .await
            .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, seq)| (RoomId(id), seq as u64))
            .collect())
    }

    /// `Store::user_with_positions`.
    async fn user_with_positions(
        &self,
        store: &PostgresStore,
        user: UserId,
    ) -> StoreResult<Option<(User, Vec<(RoomId, u64)>)>> {
        let rows = sqlx::query(crate::sql::USER_WITH_POSITIONS)
            .bind(user.0)
            .fetch_all(&store.readers)
            .await
            .map_err(map_err)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut positions = Vec::with_capacity(rows.len());
        for row in &rows {
            let room: Option<i64> = row.try_get("room_id").map_err(map_err)?;
            let last_seq: Option<i64> = row.try_get("room_last_seq").map_err(map_err)?;
            if let (Some(room), Some(last_seq)) = (room, last_seq) {
                positions.push((RoomId(room), last_seq as u64));
            }
        }
        Ok(Some((crate::sql::decode::user(first)?, positions)))
    }
}

#[async_trait::async_trait]
impl ManagedStore for PostgresStore {
    async fn close(&self) {
        self.writer.close().await;
    }

    fn as_store(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}
