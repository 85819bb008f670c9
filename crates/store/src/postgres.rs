//! The PostgreSQL store, for installations that outgrow one machine: many
//! Palaver nodes share one database.
//!
//! Correctness across processes rests on the database, never on memory: seqs
//! come from `rooms.last_seq` under a row lock (taken in room-id order, so
//! concurrent writers cannot deadlock), and idempotent `client_id`s from a
//! unique index checked after that lock.

use std::str::FromStr;
use std::sync::Arc;

use std::collections::{BTreeMap, HashMap};

use palaver_domain::events::DomainEvent;
use palaver_domain::model::{Message, User};
use palaver_domain::store::{
    Appended, Committed, NewMessage, SearchRequest, SearchTerms, Store, StoreError, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use crate::append_plan;
use crate::errors::map_err;
use crate::sql::{decode, Engine, SqlStore, MESSAGE_COLUMNS};
use crate::{ManagedStore, StoreOptions};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
    /// `BEGIN` and the row locks of the batch's rooms as one simple query:
    /// one round trip. Locks are taken in id order, so two writers (nodes)
    /// never deadlock; every statement after it sees each commit of a writer
    /// that held these rooms before (seqs, `client_id`s already used).
    fn begin_and_lock(rooms: &[i64]) -> String {
        // Room ids are integers formatted here, never text from a client.
        let ids: Vec<String> = rooms.iter().map(i64::to_string).collect();
        format!(
            "BEGIN; SELECT 1 FROM rooms WHERE id IN ({}) ORDER BY id FOR UPDATE",
            ids.join(",")
        )
    }

    /// What the batch needs to know, read in one statement after the lock:
    /// per distinct (room, sender, client id), the room's last seq (no row:
    /// the room is gone), whether the sender is a member, and the message
    /// already stored under that key.
    async fn read_state(
        tx: &mut Transaction<'_, Postgres>,
        batch: &[NewMessage],
    ) -> StoreResult<append_plan::BatchState> {
        let keys = append_plan::distinct_keys(batch);
        let rows = sqlx::query(concat!(
            "SELECT k.room_id AS k_room_id, k.sender_id AS k_sender_id, r.last_seq AS k_last_seq,
                    EXISTS (SELECT 1 FROM members mb
                            WHERE mb.room_id = k.room_id AND mb.user_id = k.sender_id) AS k_member, ",
            crate::sql::message_columns!(),
            " FROM unnest($1::int8[], $2::int8[], $3::text[]) AS k(room_id, sender_id, client_id)
             CROSS JOIN LATERAL (SELECT last_seq FROM rooms WHERE id = k.room_id) AS r
             LEFT JOIN LATERAL (SELECT * FROM messages m
                                WHERE m.room_id = k.room_id AND m.sender_id = k.sender_id
                                  AND m.client_id = k.client_id LIMIT 1) AS m ON true"
        ))
        .bind(keys.iter().map(|k| k.0).collect::<Vec<i64>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<i64>>())
        .bind(keys.iter().map(|k| k.2).collect::<Vec<Option<&str>>>())
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
        let mut state = append_plan::BatchState::default();
        for row in rows {
            let (room, sender): (i64, i64) = (
                row.try_get("k_room_id").map_err(map_err)?,
                row.try_get("k_sender_id").map_err(map_err)?,
            );
            state
                .last_seq
                .insert(room, row.try_get("k_last_seq").map_err(map_err)?);
            if row.try_get::<bool, _>("k_member").map_err(map_err)? {
                state.members.insert((room, sender));
            }
            if row
                .try_get::<Option<i64>, _>("m_seq")
                .map_err(map_err)?
                .is_some()
            {
                let message = crate::sql::decode::message(&row)?;
                let client_id = message.client_id.clone().unwrap_or_default();
                state.existing.insert((room, sender, client_id), message);
            }
        }
        Ok(state)
    }

    /// The batch's attachments, locked until it commits (a round trip only
    /// for a batch that carries any).
    async fn read_attachments(
        tx: &mut Transaction<'_, Postgres>,
        batch: &[NewMessage],
    ) -> StoreResult<HashMap<String, palaver_domain::attachments::Attachment>> {
        let ids = append_plan::attachment_ids(batch);
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            crate::sql::attachment_columns!(),
            " FROM attachments a WHERE a.id = ANY($1) FOR UPDATE"
        ))
        .bind(ids)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| crate::sql::decode::attachment(row).map(|a| (a.id.clone(), a)))
            .collect()
    }

    /// Marks the attachments of `stored` as theirs.
    async fn claim_attachments(
        tx: &mut Transaction<'_, Postgres>,
        stored: &[palaver_domain::model::Message],
    ) -> StoreResult<()> {
        let (ids, seqs): (Vec<&str>, Vec<i64>) = (stored.iter())
            .flat_map(|m| m.attachments.iter().map(|a| (a.id.as_str(), m.seq as i64)))
            .unzip();
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE attachments AS a SET message_seq = x.seq
             FROM unnest($1::text[], $2::int8[]) AS x(id, seq) WHERE a.id = x.id",
        )
        .bind(ids)
        .bind(seqs)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    /// The rest of [`Engine::append`] once the rooms are locked.
    async fn append_locked(
        store: &PostgresStore,
        mut tx: Transaction<'_, Postgres>,
        batch: &[NewMessage],
    ) -> StoreResult<Appended> {
        let mut state = Self::read_state(&mut tx, batch).await?;
        state.attachments = Self::read_attachments(&mut tx, batch).await?;
        let plan = append_plan::decide(batch, &state);
        let next_seq =
            plan.new_per_room
                .keys()
                .map(|room| {
                    let last =
                        state.last_seq.get(room).copied().ok_or_else(|| {
                            StoreError::Other("room vanished while appending".into())
                        })?;
                    Ok((*room, last + 1))
                })
                .collect::<StoreResult<HashMap<i64, i64>>>()?;
        let (outcomes, stored) = append_plan::settle(batch, plan, next_seq)?;

        if stored.is_empty() {
            tx.commit().await.map_err(map_err)?;
            return Ok(Committed::quiet(outcomes));
        }
        // Mentions first (one statement, only when a stored message names
        // someone): their events' outbox rows are written with the messages'.
        let mut mentioned = Self::insert_mentions(&mut tx, &stored).await?;
        let mentions_of = |mentioned: &mut HashMap<(i64, u64), Vec<UserId>>,
                           m: &palaver_domain::model::Message| {
            mentioned
                .remove(&(m.room_id.0, m.seq))
                .map(|user_ids| DomainEvent::Mentioned {
                    room_id: m.room_id,
                    seq: m.seq,
                    sender_id: m.sender_id,
                    user_ids,
                })
        };
        // One statement writes it all (data-modifying CTEs): the rooms' new
        // last seqs, the messages, and with an outbox the events' outbox rows.
        let payloads: Option<OutboxPayloads> = store.outbox_origin.as_deref().map(|origin| {
            let mut mentioned = mentioned.clone();
            let mut rooms = Vec::with_capacity(stored.len());
            let mut encoded = Vec::with_capacity(stored.len());
            for m in &stored {
                rooms.push(m.room_id.0);
                encoded.push(
                    palaver_domain::events::encode(&DomainEvent::MessagePosted(m.clone())).into(),
                );
                if let Some(event) = mentions_of(&mut mentioned, m) {
                    rooms.push(m.room_id.0);
                    encoded.push(palaver_domain::events::encode(&event).into());
                }
            }
            (origin, rooms, encoded)
        });
        let mut last_seqs: BTreeMap<i64, i64> = BTreeMap::new();
        for message in &stored {
            last_seqs.insert(message.room_id.0, message.seq as i64);
        }
        let column = |f: fn(&palaver_domain::model::Message) -> i64| -> Vec<i64> {
            stored.iter().map(f).collect()
        };
        // The rooms are locked already; `array_position` finds each room's
        // value without a join.
        let write = "WITH seqs AS (
                 UPDATE rooms SET last_seq = ($9::int8[])[array_position($8::int8[], id)]
                 WHERE id = ANY($8)),
             inserted AS (
                 INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at, reply_to)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[],
                                      $6::int8[], $7::int8[]))";
        let sql = match payloads {
            None => format!("{write} SELECT 0::int8 WHERE false"),
            Some(_) => format!(
                "{write} {}",
                insert_outbox_rows("$12::int8[]", "$10", "$11::text[]", "($6::int8[])[1]")
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
            )
            .bind(last_seqs.keys().copied().collect::<Vec<i64>>())
            .bind(last_seqs.values().copied().collect::<Vec<i64>>());
        if let Some((origin, rooms, encoded)) = &payloads {
            query = query
                .bind(*origin)
                .bind(encoded.iter().map(|p| &**p).collect::<Vec<&str>>())
                .bind(rooms);
        }
        let mut ids = query.fetch_all(&mut *tx).await.map_err(map_err)?;
        Self::claim_attachments(&mut tx, &stored).await?;
        tx.commit().await.map_err(map_err)?;
        // One sequence, rows inserted in the payloads' order: sorted ids are in it.
        ids.sort_unstable();
        let outbox = match payloads {
            Some((_, _, encoded)) => ids
                .into_iter()
                .zip(encoded)
                .map(|(id, payload)| palaver_domain::events::OutboxRow { id, payload })
                .collect(),
            None => Vec::new(),
        };
        let mut events = Vec::with_capacity(stored.len() + mentioned.len());
        for message in stored {
            let mentions = mentions_of(&mut mentioned, &message);
            events.push(DomainEvent::MessagePosted(message));
            events.extend(mentions);
        }
        Ok(Committed {
            value: outcomes,
            events,
            outbox,
        })
    }

    /// The mentions of the messages just stored: one row per member each
    /// names (never its sender), found and written in one statement under
    /// the rooms' row locks that membership changes take too. Who each
    /// message mentions, by (room, seq); nothing is run when no message
    /// names anyone.
    async fn insert_mentions(
        tx: &mut Transaction<'_, Postgres>,
        stored: &[palaver_domain::model::Message],
    ) -> StoreResult<HashMap<(i64, u64), Vec<UserId>>> {
        let (mut rooms, mut seqs, mut senders, mut times, mut names) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for m in stored {
            for name in palaver_domain::messages::mentions::parse(&m.body) {
                rooms.push(m.room_id.0);
                seqs.push(m.seq as i64);
                senders.push(m.sender_id.0);
                times.push(m.created_at.0);
                names.push(name);
            }
        }
        let mut mentioned: HashMap<(i64, u64), Vec<UserId>> = HashMap::new();
        if names.is_empty() {
            return Ok(mentioned);
        }
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "INSERT INTO mentions (user_id, room_id, seq, sender_id, created_at)
             SELECT u.id, c.room_id, c.seq, c.sender_id, c.created_at
             FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::text[])
                  AS c(room_id, seq, sender_id, created_at, name)
             CROSS JOIN LATERAL (SELECT u.id FROM users u
                                 JOIN members mb ON mb.room_id = c.room_id AND mb.user_id = u.id
                                 WHERE u.username = c.name AND u.id <> c.sender_id
                                 LIMIT 1) AS u
             ON CONFLICT DO NOTHING
             RETURNING room_id, seq, user_id",
        )
        .bind(&rooms)
        .bind(&seqs)
        .bind(&senders)
        .bind(&times)
        .bind(&names)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
        for (room, seq, user) in rows {
            mentioned
                .entry((room, seq as u64))
                .or_default()
                .push(UserId(user));
        }
        for users in mentioned.values_mut() {
            users.sort_unstable_by_key(|user| user.0);
        }
        Ok(mentioned)
    }
}

/// A batch's outbox rows before they are written: the node (`origin`), and
/// each event's room and encoded payload, in publishing order.
type OutboxPayloads<'a> = (&'a str, Vec<i64>, Vec<Arc<str>>);

/// The query of `to_tsquery('simple', …)`: every term, each a prefix where
/// asked (terms hold letters and digits only: no tsquery syntax).
fn search_expression(terms: &SearchTerms) -> String {
    let terms: Vec<String> = (terms.terms().iter())
        .map(|term| match term.prefix {
            true => format!("{}:*", term.word),
            false => term.word.clone(),
        })
        .collect();
    terms.join(" & ")
}

#[async_trait::async_trait]
impl Engine for PostgresEngine {
    type Db = Postgres;
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_SHARE: &'static str = " FOR SHARE";
    const FOR_NO_KEY_UPDATE: &'static str = " FOR NO KEY UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const RELAXED_COMMIT: &'static str = "SET LOCAL synchronous_commit = off";
    /// PostgreSQL runs writers side by side, locking rows itself.
    type WriteTurn = ();

    async fn write_turn(&self) {}

    /// The rooms searched are part of the statement, and it runs under a
    /// statement timeout on one process: the GIN index still reads a
    /// word's whole list, so a word common elsewhere costs more (docs/search.md).
    async fn search(
        &self,
        store: &PostgresStore,
        request: SearchRequest<'_>,
    ) -> StoreResult<Vec<Message>> {
        let rooms: Vec<i64> = request.rooms.iter().map(|room| room.0).collect();
        let mut tx = store.readers.begin().await.map_err(map_err)?;
        for setting in [
            "SET LOCAL statement_timeout = 2000",
            "SET LOCAL max_parallel_workers_per_gather = 0",
        ] {
            sqlx::query(setting)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = $2
             WHERE m.room_id = ANY($6) AND m.search @@ to_tsquery('simple', $1)
               AND m.deleted_at IS NULL AND m.created_at < $3
             ORDER BY ts_rank(m.search, to_tsquery('simple', $1)) DESC,
                      m.created_at DESC, m.room_id DESC, m.seq DESC
             LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query(&sql)
            .bind(search_expression(request.terms))
            .bind(request.reader.0)
            .bind(request.before.0)
            .bind(i64::from(request.limit))
            .bind(i64::from(request.offset))
            .bind(&rooms)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter().map(decode::message).collect()
    }

    /// `Store::append_messages`: four round trips whatever the batch —
    /// begin and lock, read what the batch needs, write, commit.
    ///
    /// Every prepared statement takes the batch as arrays, so each has one
    /// text whatever the batch's size, stays prepared, and is not planned
    /// again. Lookups of exact pairs and keys probe an index once per pair: a
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
        let mut rooms: Vec<i64> = batch.iter().map(|m| m.room_id.0).collect();
        rooms.sort_unstable();
        rooms.dedup();
        let mut conn = store.writer.acquire().await.map_err(map_err)?;
        let failed =
            match sqlx::Connection::begin_with(&mut *conn, Self::begin_and_lock(&rooms)).await {
                Ok(tx) => return Self::append_locked(store, tx, batch).await,
                Err(err) => err,
            };
        // sqlx counts a transaction only once its BEGIN statement succeeded
        // as a whole: when the lock failed after BEGIN ran, the connection
        // would go back to the pool inside an aborted transaction.
        let _ = sqlx::Executor::execute(&mut *conn, "ROLLBACK").await;
        Err(map_err(failed))
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

    /// The search column is generated with each row.
    async fn index_imported_messages(
        &self,
        _tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        _messages: &[(i64, i64)],
    ) -> StoreResult<()> {
        Ok(())
    }

    /// Identity columns do not notice explicitly inserted ids.
    async fn realign_ids(&self, store: &PostgresStore) -> StoreResult<()> {
        for table in ["users", "rooms", "reports", "admin_audit"] {
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

    async fn session_is_live(
        &self,
        store: &PostgresStore,
        user: UserId,
        session: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(crate::sql::SESSION_IS_LIVE)
            .bind(session)
            .bind(user.0)
            .bind(now.0)
            .fetch_optional(&store.readers)
            .await
            .map_err(map_err)?;
        Ok(found.is_some())
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
