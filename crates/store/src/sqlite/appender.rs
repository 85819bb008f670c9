//! Message appends on a thread of their own, over their own connection.
//!
//! sqlx runs every SQLite statement on its connection's worker thread and
//! waits for the answer, so a batch cost six round trips between threads
//! (`BEGIN`, four statements, `COMMIT`). On a busy core each woken thread
//! waits for the other's time slice to end: single steps took 10–45 ms where
//! they usually take 30–150 µs, and that was the whole p99 of the 100 × 10
//! benchmark (docs/benchmarks.md). Here a batch is one hand-off to this
//! thread, which runs the transaction start to finish, and one answer back.
//!
//! Every statement takes the batch as one JSON array of rows (`json_each`),
//! so each keeps one text whatever the batch's size and shape, and stays
//! prepared; a statement per step however many rooms the batch spans.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use palaver_domain::bus::DomainEvent;
use palaver_domain::model::Message;
use palaver_domain::store::{Appended, NewMessage, StoreError, StoreResult};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use rusqlite::{Connection, Row, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::append_plan;
use crate::errors::map_rusqlite;

/// `$1`: `[[room_id, user_id], …]` → the pairs that are memberships.
const MEMBER_PAIRS: &str = "SELECT m.room_id, m.user_id FROM json_each($1) j \
    JOIN members m ON m.room_id = j.value ->> 0 AND m.user_id = j.value ->> 1";

/// `$1`: `[[room_id, sender_id, client_id], …]` → the messages sent under those keys.
const USED_CLIENT_IDS: &str = concat!(
    "SELECT ",
    crate::sql::message_columns!(),
    " FROM json_each($1) j JOIN messages m ON m.room_id = j.value ->> 0 \
      AND m.sender_id = j.value ->> 1 AND m.client_id = j.value ->> 2"
);

/// `$1`: `[[room_id, count], …]` → `(room_id, last_seq)` after adding.
const ALLOCATE_SEQS: &str = "UPDATE rooms SET last_seq = last_seq + (j.value ->> 1) \
    FROM json_each($1) j WHERE rooms.id = j.value ->> 0 \
    RETURNING rooms.id, rooms.last_seq";

/// `$1`: `[[room_id, seq, sender_id, body, client_id, created_at, reply_to], …]`.
const INSERT_MESSAGES: &str = "INSERT INTO messages \
    (room_id, seq, sender_id, body, client_id, created_at, reply_to) \
    SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, \
           j.value ->> 4, j.value ->> 5, j.value ->> 6 FROM json_each($1) j";

/// One outbox row per stored message (cluster mode only).
const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (room_id, origin, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id";

/// The handle to the appending thread; dropping the last one ends it.
pub struct Appender {
    commands: mpsc::Sender<Command>,
}

enum Command {
    Append {
        batch: Vec<NewMessage>,
        reply: oneshot::Sender<StoreResult<Appended>>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

impl Appender {
    /// Opens a connection to the (already migrated) database at `path` and
    /// starts the thread. `outbox_origin` as in `StoreOptions`.
    pub fn start(path: &Path, outbox_origin: Option<String>) -> StoreResult<Self> {
        let connection = open(path)?;
        let (commands, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("palaver-append".into())
            .spawn(move || serve(connection, inbox, outbox_origin.as_deref()))
            .map_err(|err| StoreError::Other(format!("starting the append thread: {err}")))?;
        Ok(Self { commands })
    }

    /// Appends one batch in one transaction; see `Store::append_messages`.
    pub async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Appended> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Append { batch, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Closes the connection (checkpointing the WAL if it is the last one);
    /// appends after this fail as unavailable.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close { done }).is_ok() {
            let _ = closed.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

fn open(path: &Path) -> StoreResult<Connection> {
    let connection = Connection::open(path).map_err(map_rusqlite)?;
    // The same settings as the sqlx connections (WAL mode is the file's own).
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(map_rusqlite)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(map_rusqlite)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(map_rusqlite)?;
    Ok(connection)
}

fn serve(mut connection: Connection, inbox: mpsc::Receiver<Command>, origin: Option<&str>) {
    while let Ok(command) = inbox.recv() {
        match command {
            Command::Append { batch, reply } => {
                // The caller may have gone away; what committed stays committed.
                let _ = reply.send(append(&mut connection, &batch, origin));
            }
            Command::Close { done } => {
                if let Err((_, err)) = connection.close() {
                    tracing::warn!(error = %err, "closing the append connection");
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

fn append(
    connection: &mut Connection,
    batch: &[NewMessage],
    origin: Option<&str>,
) -> StoreResult<Appended> {
    if batch.is_empty() {
        return Ok(Appended::default());
    }
    // IMMEDIATE takes the write lock before the first read, so what the reads
    // see cannot change before the writes (another process may share the file).
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_rusqlite)?;
    let members = member_pairs(&tx, &append_plan::sender_pairs(batch))?;
    let keys = append_plan::keys_to_check(batch, &members);
    let existing = if keys.is_empty() {
        HashMap::new()
    } else {
        used_client_ids(&tx, &keys)?
    };
    let plan = append_plan::decide(batch, &members, &existing);
    let next_seq = if plan.new_per_room.is_empty() {
        HashMap::new()
    } else {
        let counts: Vec<(i64, i64)> = plan.new_per_room.iter().map(|(r, n)| (*r, *n)).collect();
        allocate_seqs(&tx, &counts)?
    };
    let (outcomes, stored) = append_plan::settle(batch, plan, next_seq)?;
    let mut outbox = Vec::new();
    if !stored.is_empty() {
        insert_messages(&tx, &stored)?;
        if let Some(origin) = origin {
            outbox = insert_outbox(&tx, origin, stored)?;
        }
    }
    tx.commit().map_err(map_rusqlite)?;
    Ok(Appended { outcomes, outbox })
}

fn member_pairs(tx: &Transaction, pairs: &[(i64, i64)]) -> StoreResult<HashSet<(i64, i64)>> {
    let mut statement = tx.prepare_cached(MEMBER_PAIRS).map_err(map_rusqlite)?;
    let rows = statement
        .query_map([json_rows(pairs)], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(map_rusqlite)?;
    rows.collect::<Result<_, _>>().map_err(map_rusqlite)
}

fn used_client_ids(
    tx: &Transaction,
    keys: &[(i64, i64, &str)],
) -> StoreResult<HashMap<append_plan::Key, Message>> {
    let mut statement = tx.prepare_cached(USED_CLIENT_IDS).map_err(map_rusqlite)?;
    let rows = statement
        .query_map([json_rows(keys)], message)
        .map_err(map_rusqlite)?;
    let mut existing = HashMap::new();
    for found in rows {
        let found = found.map_err(map_rusqlite)?;
        let key = (
            found.room_id.0,
            found.sender_id.0,
            found.client_id.clone().unwrap_or_default(),
        );
        existing.insert(key, found);
    }
    Ok(existing)
}

/// Room id → the first of the seqs just allocated to it.
fn allocate_seqs(tx: &Transaction, counts: &[(i64, i64)]) -> StoreResult<HashMap<i64, i64>> {
    let wanted: HashMap<i64, i64> = counts.iter().copied().collect();
    let mut statement = tx.prepare_cached(ALLOCATE_SEQS).map_err(map_rusqlite)?;
    let rows = statement
        .query_map([json_rows(counts)], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(map_rusqlite)?;
    let mut first = HashMap::with_capacity(counts.len());
    for row in rows {
        let (room, last) = row.map_err(map_rusqlite)?;
        first.insert(room, last - wanted[&room] + 1);
    }
    Ok(first)
}

fn insert_messages(tx: &Transaction, stored: &[Message]) -> StoreResult<()> {
    let rows: Vec<_> = stored
        .iter()
        .map(|m| {
            (
                m.room_id.0,
                m.seq as i64,
                m.sender_id.0,
                m.body.as_str(),
                m.client_id.as_deref(),
                m.created_at.0,
                m.reply_to.map(|s| s as i64),
            )
        })
        .collect();
    let mut statement = tx.prepare_cached(INSERT_MESSAGES).map_err(map_rusqlite)?;
    statement
        .execute([json_rows(&rows)])
        .map_err(map_rusqlite)?;
    Ok(())
}

fn insert_outbox(tx: &Transaction, origin: &str, stored: Vec<Message>) -> StoreResult<Vec<i64>> {
    let now = stored[0].created_at.0;
    let mut statement = tx.prepare_cached(INSERT_OUTBOX).map_err(map_rusqlite)?;
    stored
        .into_iter()
        .map(|m| {
            let event = DomainEvent::MessagePosted(m);
            let payload = palaver_domain::events::encode(&event);
            statement
                .query_row(
                    rusqlite::params![event.room_id().0, origin, payload, now],
                    |row| row.get(0),
                )
                .map_err(map_rusqlite)
        })
        .collect()
}

/// A message row selected with `message_columns!`.
fn message(row: &Row) -> rusqlite::Result<Message> {
    Ok(Message {
        room_id: RoomId(row.get("m_room_id")?),
        seq: row.get::<_, i64>("m_seq")? as u64,
        sender_id: UserId(row.get("m_sender_id")?),
        body: row.get("m_body")?,
        created_at: Timestamp(row.get("m_created_at")?),
        client_id: row.get("m_client_id")?,
        reply_to: row.get::<_, Option<i64>>("m_reply_to")?.map(|s| s as u64),
        edited_at: row.get::<_, Option<i64>>("m_edited_at")?.map(Timestamp),
        deleted_at: row.get::<_, Option<i64>>("m_deleted_at")?.map(Timestamp),
    })
}

/// A batch's rows (tuples) as one JSON array of arrays.
fn json_rows<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("tuples of numbers and strings always serialize")
}
