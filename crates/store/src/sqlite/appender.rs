//! Message appends on a thread of their own, over their own connection.
//!
//! sqlx runs every SQLite statement on its connection's worker thread and
//! waits for the answer, so a batch cost six round trips between threads
//! (`BEGIN`, four statements, `COMMIT`), each a wake-up that on a busy core
//! waits for the other thread's time slice. Here a batch is one hand-off to
//! this thread, which runs the transaction start to finish, and one answer
//! back (docs/benchmarks.md, "What was tried").
//!
//! With no hand-off per statement, plain prepared statements run once per
//! row are the cheapest form: they beat one statement per step taking the
//! whole batch as a JSON array by about half (no JSON to write and parse, and
//! a single-row write needs no statement journal).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;

use palaver_domain::events::DomainEvent;
use palaver_domain::events::OutboxRow;
use palaver_domain::model::Message;
use palaver_domain::store::{
    AppendOutcome, Appended, Committed, NewMessage, StoreError, StoreResult,
};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::checkpointer::{Checkpointer, Watched};
use super::store_closed;
use crate::append_plan;
use crate::errors::map_rusqlite;

const IS_MEMBER: &str = "SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2";

const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    crate::sql::message_columns!(),
    " FROM messages m WHERE m.room_id = $1 AND m.sender_id = $2 AND m.client_id = $3"
);

const LAST_SEQ: &str = "SELECT last_seq FROM rooms WHERE id = $1";

const SET_LAST_SEQ: &str = "UPDATE rooms SET last_seq = $1 WHERE id = $2";

/// Inserts nothing when the idempotency key was used before: the unique index
/// answers "seen before?" in the same descent that inserts a new key.
const INSERT_MESSAGE: &str = "INSERT INTO messages \
    (room_id, seq, sender_id, body, client_id, created_at, reply_to) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (room_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING";

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
        let checkpointer = Checkpointer::start(path, super::WAL_AUTOCHECKPOINT_PAGES)?;
        let connection = checkpointer.watch(super::connection::open(path)?);
        // Unbounded on purpose: an append sends only while holding the write
        // turn (`SqliteEngine::append`) and awaits its answer, so at most one
        // batch (and a close) is ever queued here.
        let (commands, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("palaver-append".into())
            .spawn(move || serve(connection, checkpointer, inbox, outbox_origin.as_deref()))
            .map_err(|err| StoreError::Other(format!("starting the append thread: {err}")))?;
        Ok(Self { commands })
    }

    /// Appends one batch in one transaction; see `Store::append_messages`.
    pub async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Appended> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Append { batch, reply })
            .map_err(|_| store_closed())?;
        answer.await.map_err(|_| store_closed())?
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

fn serve(
    mut watched: Watched,
    mut checkpointer: Checkpointer,
    inbox: mpsc::Receiver<Command>,
    origin: Option<&str>,
) {
    while let Ok(command) = inbox.recv() {
        match command {
            Command::Append { batch, reply } => {
                // The caller may have gone away; what committed stays committed.
                let _ = reply.send(append(&mut watched.connection, &batch, origin));
                checkpointer.after_commit(&watched.connection);
            }
            Command::Close { done } => {
                checkpointer.stop();
                if let Err(err) = watched.close() {
                    tracing::warn!(error = %err, "closing the append connection");
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

/// One transaction for the batch. Unlike PostgreSQL's (`append_plan`), it
/// does not look up every idempotency key before inserting: each insert takes
/// the room's next seq and reports whether its key was new, and only a repeated
/// key (rare) is read back. That is one statement per message instead of two,
/// and with the writer's lock held, seqs handed out in order leave no gap.
fn append(
    connection: &mut Connection,
    batch: &[NewMessage],
    origin: Option<&str>,
) -> StoreResult<Appended> {
    if batch.is_empty() {
        return Ok(Committed::quiet(Vec::new()));
    }
    // IMMEDIATE takes the write lock before the first read, so what the reads
    // see cannot change before the writes (another process may share the file).
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_rusqlite)?;
    let members = member_pairs(&tx, &append_plan::sender_pairs(batch))?;
    let mut seqs = SeqCounters::default();
    let mut outcomes = Vec::with_capacity(batch.len());
    // The new messages again: their events (and outbox rows).
    let mut events = Vec::new();
    {
        let mut insert = tx.prepare_cached(INSERT_MESSAGE).map_err(map_rusqlite)?;
        for m in batch {
            if !members.contains(&(m.room_id.0, m.sender_id.0)) {
                outcomes.push(AppendOutcome::NotMember);
                continue;
            }
            let seq = seqs.next(&tx, m.room_id.0)?;
            let inserted = insert
                .execute(rusqlite::params![
                    m.room_id.0,
                    seq,
                    m.sender_id.0,
                    m.body,
                    m.client_id,
                    m.created_at.0,
                    m.reply_to.map(|s| s as i64),
                ])
                .map_err(map_rusqlite)?;
            if inserted == 1 {
                seqs.take(m.room_id.0);
                let message = m.stored_as(seq as u64);
                events.push(DomainEvent::MessagePosted(message.clone()));
                outcomes.push(AppendOutcome::Stored(message));
            } else {
                // Only a used key skips the insert (a NULL key never conflicts).
                let client_id = m.client_id.as_deref().unwrap_or_default();
                outcomes.push(AppendOutcome::Duplicate(message_by_client_id(
                    &tx,
                    m.room_id.0,
                    m.sender_id.0,
                    client_id,
                )?));
            }
        }
    }
    seqs.save(&tx)?;
    let mut outbox = Vec::new();
    if let (Some(origin), false) = (origin, events.is_empty()) {
        outbox = insert_outbox(&tx, origin, &events, batch[0].created_at.0)?;
    }
    tx.commit().map_err(map_rusqlite)?;
    Ok(Committed {
        value: outcomes,
        events,
        outbox,
    })
}

fn member_pairs(tx: &Transaction, pairs: &[(i64, i64)]) -> StoreResult<HashSet<(i64, i64)>> {
    let mut statement = tx.prepare_cached(IS_MEMBER).map_err(map_rusqlite)?;
    let mut members = HashSet::with_capacity(pairs.len());
    for &(room, user) in pairs {
        if statement.exists([room, user]).map_err(map_rusqlite)? {
            members.insert((room, user));
        }
    }
    Ok(members)
}

fn message_by_client_id(
    tx: &Transaction,
    room: i64,
    sender: i64,
    client_id: &str,
) -> StoreResult<Message> {
    tx.prepare_cached(MESSAGE_BY_CLIENT_ID)
        .map_err(map_rusqlite)?
        .query_row(rusqlite::params![room, sender, client_id], |row| {
            Ok(crate::sql::decode::message(row))
        })
        .map_err(map_rusqlite)?
}

/// Each room's seqs during one transaction: read once, handed out in order,
/// written back once.
#[derive(Default)]
struct SeqCounters {
    /// Room id → (last seq when read, next seq to hand out).
    rooms: HashMap<i64, (i64, i64)>,
}

impl SeqCounters {
    /// The seq the room's next new message takes.
    fn next(&mut self, tx: &Transaction, room: i64) -> StoreResult<i64> {
        if let Some(&(_, next)) = self.rooms.get(&room) {
            return Ok(next);
        }
        let last: i64 = tx
            .prepare_cached(LAST_SEQ)
            .map_err(map_rusqlite)?
            .query_row([room], |row| row.get(0))
            .map_err(map_rusqlite)?;
        self.rooms.insert(room, (last, last + 1));
        Ok(last + 1)
    }

    /// Marks the room's next seq as used; call only after `next` for the room.
    fn take(&mut self, room: i64) {
        if let Some((_, next)) = self.rooms.get_mut(&room) {
            *next += 1;
        }
    }

    /// Writes back the last seq of every room that received messages.
    fn save(&self, tx: &Transaction) -> StoreResult<()> {
        let mut statement = tx.prepare_cached(SET_LAST_SEQ).map_err(map_rusqlite)?;
        for (&room, &(last, next)) in &self.rooms {
            if next - 1 > last {
                statement.execute([next - 1, room]).map_err(map_rusqlite)?;
            }
        }
        Ok(())
    }
}

fn insert_outbox(
    tx: &Transaction,
    origin: &str,
    events: &[DomainEvent],
    now: i64,
) -> StoreResult<Vec<OutboxRow>> {
    let mut statement = tx.prepare_cached(INSERT_OUTBOX).map_err(map_rusqlite)?;
    events
        .iter()
        .map(|event| {
            let payload: std::sync::Arc<str> = palaver_domain::events::encode(event).into();
            let id = statement
                .query_row(
                    rusqlite::params![event.room_id().0, origin, &*payload, now],
                    |row| row.get(0),
                )
                .map_err(map_rusqlite)?;
            Ok(OutboxRow { id, payload })
        })
        .collect()
}
