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
use sqlx::{Postgres, Row, Transaction};

use crate::append_plan;
use crate::errors::map_err;
use crate::sql::{Engine, SqlStore};
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
    const RELAXED_COMMIT: &'static str = "SET LOCAL synchronous_commit = off";
    /// PostgreSQL runs writers side by side, locking rows itself.
    type WriteTurn = ();

    async fn write_turn(&self) {}

    /// `Store::append_messages`: one transaction, one statement per step.
    ///
    /// Every statement takes the batch as arrays, so each has one text
    /// whatever the batch's size, stays prepared, and is not planned again.
    /// Lookups of exact pairs and keys probe an index once per pair: a
    /// `LATERAL (… LIMIT 1)` subquery per `unnest`ed row, which the planner
    /// cannot flatten into a join. A plain join against `unnest` (or a JSON
    /// array) was planned as a hash join over a sequential scan while the
    /// tables were young (statistics say empty) and kept in the cached
    /// generic plan until autovacuum analyzed them (712 single-message
    /// appends/s against 1,556); `= ANY(…)` on each column instead makes
    /// PostgreSQL 15 probe every combination of the arrays (rooms × senders
    /// × client ids: a fifth of the throughput at 100 senders).
    async fn append(&self, store: &PostgresStore, batch: &[NewMessage]) -> StoreResult<Appended> {
        if batch.is_empty() {
            return Ok(Committed::quiet(Vec::new()));
        }
        let (_turn, mut tx) = store.begin_write().await?;
        // Lock the batch's rooms in id order before anything else: seq
        // allocation and the client_id check then see every commit of a
        // concurrent writer (another node), and two writers never deadlock.
        let mut rooms: Vec<i64> = batch.iter().map(|m| m.room_id.0).collect();
        rooms.sort_unstable();
        rooms.dedup();
        Self::lock_rooms(&mut tx, &rooms).await?;

        let (pair_rooms, pair_users): (Vec<i64>, Vec<i64>) =
            append_plan::sender_pairs(batch).into_iter().unzip();
        let members: HashSet<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(
            "SELECT k.room_id, k.user_id FROM unnest($1::int8[], $2::int8[]) AS k(room_id, user_id)
             CROSS JOIN LATERAL (SELECT 1 FROM members m
                                 WHERE m.room_id = k.room_id AND m.user_id = k.user_id LIMIT 1) AS found",
        )
        .bind(&pair_rooms)
        .bind(&pair_users)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?
        .into_iter()
        .collect();

        let keys = append_plan::keys_to_check(batch, &members);
        let mut existing = HashMap::new();
        if !keys.is_empty() {
            let key_rooms: Vec<i64> = keys.iter().map(|k| k.0).collect();
            let key_senders: Vec<i64> = keys.iter().map(|k| k.1).collect();
            let client_ids: Vec<&str> = keys.iter().map(|k| k.2).collect();
            let rows = sqlx::query(&format!(
                "SELECT {} FROM unnest($1::int8[], $2::int8[], $3::text[]) AS k(room_id, sender_id, client_id)
                 CROSS JOIN LATERAL (SELECT * FROM messages m
                                     WHERE m.room_id = k.room_id AND m.sender_id = k.sender_id
                                       AND m.client_id = k.client_id LIMIT 1) AS m",
                crate::sql::MESSAGE_COLUMNS
            ))
            .bind(&key_rooms)
            .bind(&key_senders)
            .bind(&client_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
            for row in rows {
                let message = crate::sql::decode::message(&row)?;
                let client_id = message.client_id.clone().unwrap_or_default();
                existing.insert((message.room_id.0, message.sender_id.0, client_id), message);
            }
        }

        let plan = append_plan::decide(batch, &members, &existing);
        let (seq_rooms, counts): (Vec<i64>, Vec<i64>) =
            plan.new_per_room.iter().map(|(r, n)| (*r, *n)).unzip();
        let mut next_seq = HashMap::new();
        if !seq_rooms.is_empty() {
            // The rooms are locked already; `array_position` finds each
            // room's count without a join.
            let allocated: Vec<(i64, i64)> = sqlx::query_as(
                "UPDATE rooms SET last_seq = last_seq + ($2::int8[])[array_position($1::int8[], id)]
                 WHERE id = ANY($1) RETURNING id, last_seq",
            )
            .bind(&seq_rooms)
            .bind(&counts)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
            for (room, last) in allocated {
                let count = plan.new_per_room.get(&room).copied().unwrap_or(0);
                next_seq.insert(room, last - count + 1);
            }
        }
        let (outcomes, stored) = append_plan::settle(batch, plan, next_seq)?;

        if stored.is_empty() {
            tx.commit().await.map_err(map_err)?;
            return Ok(Committed::quiet(outcomes));
        }
        // With an outbox, the messages' rows and their outbox rows go in one
        // statement (a data-modifying CTE): one round trip fewer in the
        // writer's serial path.
        let payloads: Option<(&str, Vec<Arc<str>>)> =
            store.outbox_origin.as_deref().map(|origin| {
                let encoded = stored
                    .iter()
                    .map(|m| {
                        palaver_domain::events::encode(&DomainEvent::MessagePosted(m.clone()))
                            .into()
                    })
                    .collect();
                (origin, encoded)
            });
        let column = |f: fn(&palaver_domain::model::Message) -> i64| -> Vec<i64> {
            stored.iter().map(f).collect()
        };
        let insert_messages =
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at, reply_to)
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[],
                                  $6::int8[], $7::int8[])";
        let sql = match payloads {
            None => insert_messages.to_owned(),
            Some(_) => format!(
                "WITH inserted AS ({insert_messages}) {}",
                insert_outbox_rows("$1::int8[]", "$8", "$9::text[]", "($6::int8[])[1]")
            ),
        };
        let mut query = sqlx::query_scalar::<_, i64>(&sql)
            .bind(column(|m| m.room_id.0))
            .bind(column(|m| m.seq as i64))
            .bind(column(|m| m.sender_id.0))
            .bind(stored.iter().map(|m| m.body.as_str()).collect::<Vec<_>>())
            .bind(
                stored
                    .iter()
                    .map(|m| m.client_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(column(|m| m.created_at.0))
            .bind(
                stored
                    .iter()
                    .map(|m| m.reply_to.map(|s| s as i64))
                    .collect::<Vec<_>>(),
            );
        if let Some((origin, encoded)) = &payloads {
            query = query
                .bind(*origin)
                .bind(encoded.iter().map(|p| &**p).collect::<Vec<&str>>());
        }
        let mut ids = query.fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        // One sequence, rows inserted in `stored`'s order: sorted ids are in it.
        ids.sort_unstable();
        let outbox = match payloads {
            Some((_, encoded)) => ids
                .into_iter()
                .zip(encoded)
                .map(|(id, payload)| palaver_domain::events::OutboxRow { id, payload })
                .collect(),
            None => Vec::new(),
        };
        Ok(Committed {
            value: outcomes,
            events: stored.into_iter().map(DomainEvent::MessagePosted).collect(),
            outbox,
        })
    }

    /// One statement for any number of rows (arrays again, so it stays
    /// prepared); ids come from one sequence in insertion order, so sorted
    /// they are in `rows`' order.
    async fn insert_outbox(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        rows: &[(i64, &str)],
        origin: &str,
        now: i64,
    ) -> StoreResult<Vec<i64>> {
        let (rooms, payloads): (Vec<i64>, Vec<&str>) = rows.iter().copied().unzip();
        let mut ids: Vec<i64> =
            sqlx::query_scalar(&insert_outbox_rows("$1::int8[]", "$2", "$3::text[]", "$4"))
                .bind(&rooms)
                .bind(origin)
                .bind(&payloads)
                .bind(now)
                .fetch_all(&mut **tx)
                .await
                .map_err(map_err)?;
        ids.sort_unstable();
        Ok(ids)
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

/// Outbox rows from parallel arrays of room ids and payloads (SQL
/// expressions), inserted in array order, returning their ids.
fn insert_outbox_rows(rooms: &str, origin: &str, payloads: &str, created_at: &str) -> String {
    format!(
        "INSERT INTO outbox (room_id, origin, payload, created_at)
         SELECT r.room_id, {origin}, r.payload, {created_at}
         FROM unnest({rooms}, {payloads}) WITH ORDINALITY AS r(room_id, payload, n)
         ORDER BY r.n
         RETURNING id"
    )
}
