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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use palaver_domain::events::DomainEvent;
use palaver_domain::events::OutboxRow;
use palaver_domain::model::Message;
use palaver_domain::store::{
    AppendOutcome, Appended, Committed, NewMessage, StoreError, StoreResult,
};
use palaver_domain::UserId;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::checkpointer::{Checkpointer, Watched};
use super::search;
use super::store_closed;
use crate::append_plan;
use crate::errors::map_rusqlite;

const IS_MEMBER: &str = "SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2";

const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    crate::sql::message_columns!(),
    " FROM messages m WHERE m.room_id = $1 AND m.sender_id = $2 AND m.client_id = $3"
);

const ATTACHMENT: &str = concat!(
    "SELECT ",
    crate::sql::attachment_columns!(),
    " FROM attachments a WHERE a.id = $1"
);

const CLAIM_ATTACHMENT: &str = "UPDATE attachments SET message_seq = $1 WHERE id = $2";

const LAST_SEQ: &str = "SELECT last_seq FROM rooms WHERE id = $1";

const SET_LAST_SEQ: &str = "UPDATE rooms SET last_seq = $1 WHERE id = $2";

/// Inserts nothing when the idempotency key was used before: the unique index
/// answers "seen before?" in the same descent that inserts a new key. A stored
/// message waits for the search index in `search_pending` (`search::PEND_NEW`).
const INSERT_MESSAGE: &str = "INSERT INTO messages \
    (room_id, seq, sender_id, body, client_id, created_at, reply_to) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (room_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING";

/// The mention of one named user, if they are a member of the room and not
/// the sender: read and written in one statement, under the write lock that
/// checked the sender's membership.
const INSERT_MENTION: &str = "INSERT INTO mentions (user_id, room_id, seq, sender_id, created_at) \
    SELECT u.id, $1, $2, $3, $4 FROM users u \
    JOIN members mb ON mb.room_id = $1 AND mb.user_id = u.id \
    WHERE u.username = $5 AND u.id <> $3 \
    ON CONFLICT DO NOTHING RETURNING user_id";

/// One outbox row per stored message (cluster mode only).
const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (room_id, origin, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id";

/// The handle to the appending thread; dropping the last one ends it.
pub struct Appender {
    commands: mpsc::Sender<Command>,
    /// Messages waiting for the search index, as last committed (written by
    /// the thread only).
    pending: Arc<AtomicUsize>,
}

enum Command {
    Append {
        batch: Vec<NewMessage>,
        reply: oneshot::Sender<StoreResult<Appended>>,
    },
    IndexPending {
        reply: oneshot::Sender<StoreResult<()>>,
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
        let waiting: i64 = (connection.connection)
            .query_row(search::COUNT_PENDING, [], |row| row.get(0))
            .map_err(map_rusqlite)?;
        let pending = Arc::new(AtomicUsize::new(waiting as usize));
        let counted = pending.clone();
        // Unbounded on purpose: an append sends only while holding the write
        // turn (`SqliteEngine::append`) and awaits its answer, so at most one
        // batch (and a close) is ever queued here.
        let (commands, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("palaver-append".into())
            .spawn(move || {
                let origin = outbox_origin.as_deref();
                serve(connection, checkpointer, inbox, origin, &counted)
            })
            .map_err(|err| StoreError::Other(format!("starting the append thread: {err}")))?;
        Ok(Self { commands, pending })
    }

    /// Whether messages wait for the search index.
    pub fn search_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// Indexes the messages waiting for the search index, in a transaction
    /// of its own; the caller holds the write turn.
    pub async fn index_pending(&self) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::IndexPending { reply })
            .map_err(|_| store_closed())?;
        answer.await.map_err(|_| store_closed())?
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
    pending: &AtomicUsize,
) {
    while let Ok(command) = inbox.recv() {
        match command {
            Command::Append { batch, reply } => {
                // The caller may have gone away; what committed stays committed.
                let _ = reply.send(append(&mut watched.connection, &batch, origin, pending));
                checkpointer.after_commit(&watched.connection);
            }
            Command::IndexPending { reply } => {
                let _ = reply.send(index_pending(&mut watched.connection, pending));
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
    pending: &AtomicUsize,
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
    // Attachments claimed by earlier messages of the batch.
    let mut claimed_ids = HashSet::new();
    // Search rowids of the messages stored.
    let mut indexed = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(INSERT_MESSAGE).map_err(map_rusqlite)?;
        for m in batch {
            if !members.contains(&(m.room_id.0, m.sender_id.0)) {
                outcomes.push(AppendOutcome::NotMember);
                continue;
            }
            let read = read_attachments(&tx, m)?;
            let Some(claimed) = append_plan::claim(m, &read, &claimed_ids) else {
                outcomes.push(AppendOutcome::AttachmentsRefused);
                continue;
            };
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
                indexed.extend(search::rowid(m.room_id.0, seq));
                let mut message = m.stored_as(seq as u64);
                if !claimed.is_empty() {
                    let mut claim = tx.prepare_cached(CLAIM_ATTACHMENT).map_err(map_rusqlite)?;
                    for attachment in &claimed {
                        claim
                            .execute(rusqlite::params![seq, attachment.id])
                            .map_err(map_rusqlite)?;
                    }
                    claimed_ids.extend(claimed.iter().map(|a| a.id.clone()));
                    message.attachments = append_plan::carried(claimed, seq as u64);
                }
                events.push(DomainEvent::MessagePosted(message.clone()));
                if let Some(mentioned) = insert_mentions(&tx, m, seq)? {
                    events.push(mentioned);
                }
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
    let mut waiting = pending.load(Ordering::Relaxed);
    if !indexed.is_empty() {
        waiting += indexed.len();
        tx.prepare_cached(search::PEND_NEW)
            .and_then(|mut statement| statement.execute([search::rowid_list(indexed)]))
            .map_err(map_rusqlite)?;
        if waiting >= search::INDEX_AFTER {
            feed_index(&tx)?;
            waiting = 0;
        }
    }
    let mut outbox = Vec::new();
    if let (Some(origin), false) = (origin, events.is_empty()) {
        outbox = insert_outbox(&tx, origin, &events, batch[0].created_at.0)?;
    }
    tx.commit().map_err(map_rusqlite)?;
    pending.store(waiting, Ordering::Release);
    Ok(Committed {
        value: outcomes,
        events,
        outbox,
    })
}

/// The waiting messages into the search index, in one segment, and off the
/// waiting list.
fn feed_index(tx: &Transaction) -> StoreResult<()> {
    tx.prepare_cached(search::INDEX_PENDING)
        .and_then(|mut statement| statement.execute([]))
        .map_err(map_rusqlite)?;
    tx.prepare_cached(search::CLEAR_PENDING)
        .and_then(|mut statement| statement.execute([]))
        .map_err(map_rusqlite)?;
    Ok(())
}

/// Indexes every waiting message in a transaction of its own (none is
/// opened when none waits).
fn index_pending(connection: &mut Connection, pending: &AtomicUsize) -> StoreResult<()> {
    if pending.load(Ordering::Relaxed) == 0 {
        return Ok(());
    }
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_rusqlite)?;
    feed_index(&tx)?;
    tx.commit().map_err(map_rusqlite)?;
    pending.store(0, Ordering::Release);
    Ok(())
}

/// The mentions of a message just stored at `seq`, and their event; `None`
/// when it names no member (nothing is run for a body without `@`).
fn insert_mentions(tx: &Transaction, m: &NewMessage, seq: i64) -> StoreResult<Option<DomainEvent>> {
    let names = m.mentioned_names();
    if names.is_empty() {
        return Ok(None);
    }
    let mut statement = tx.prepare_cached(INSERT_MENTION).map_err(map_rusqlite)?;
    let mut user_ids = Vec::new();
    for name in &names {
        let mut rows = statement
            .query(rusqlite::params![
                m.room_id.0,
                seq,
                m.sender_id.0,
                m.created_at.0,
                name
            ])
            .map_err(map_rusqlite)?;
        while let Some(row) = rows.next().map_err(map_rusqlite)? {
            user_ids.push(UserId(row.get(0).map_err(map_rusqlite)?));
        }
    }
    if user_ids.is_empty() {
        return Ok(None);
    }
    Ok(Some(DomainEvent::Mentioned {
        room_id: m.room_id,
        seq: seq as u64,
        sender_id: m.sender_id,
        user_ids,
    }))
}

/// The attachments `m` lists, by id (none read for a message that lists none).
fn read_attachments(
    tx: &Transaction,
    m: &NewMessage,
) -> StoreResult<HashMap<String, palaver_domain::attachments::Attachment>> {
    let Some(asked) = &m.attachments else {
        return Ok(HashMap::new());
    };
    let mut statement = tx.prepare_cached(ATTACHMENT).map_err(map_rusqlite)?;
    let mut read = HashMap::with_capacity(asked.ids.len());
    for id in &asked.ids {
        let mut rows = statement.query([id]).map_err(map_rusqlite)?;
        if let Some(row) = rows.next().map_err(map_rusqlite)? {
            let attachment = crate::sql::decode::attachment(row)?;
            read.insert(attachment.id.clone(), attachment);
        }
    }
    Ok(read)
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
