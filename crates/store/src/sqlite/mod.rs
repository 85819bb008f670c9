//! The embedded default store: one SQLite file in WAL mode.
//!
//! Two sqlx pools, a writer connection and a few readers that WAL lets run
//! beside it, for the SQL shared with PostgreSQL. Message appends, the hot
//! path, run on the [`appender`]'s thread and rusqlite connection. SQLite
//! lets one connection write at a time, so every write, on either driver,
//! first takes the store's one write turn (`SqliteEngine::write_turn`):
//! queueing in-process, in order, avoids SQLITE_BUSY and its sleeping retries;
//! the two reads every new WebSocket connection makes run on the [`reader`]
//! threads' own read-only connections; the [`checkpointer`] copies the WAL
//! into the database file off the appender's commits. `synchronous = FULL`
//! makes every commit durable before it is acknowledged; batching in the
//! message writer amortizes the fsync.

mod appender;
mod checkpointer;
mod connection;
mod reader;
mod search;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use palaver_domain::model::{Message, User};
use palaver_domain::store::{Appended, NewMessage, SearchRequest, Store, StoreError, StoreResult};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use self::appender::Appender;
use self::reader::Readers;
use crate::errors::{map_err, map_rusqlite};
use crate::sql::{Engine, SqlStore};
use crate::{ManagedStore, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store: the shared SQL over this engine.
pub type SqliteStore = SqlStore<SqliteEngine>;

/// SQLite's own part of the store: the write turn, the appender thread and
/// the reader threads.
#[derive(Clone)]
pub struct SqliteEngine {
    /// SQLite lets one connection write at a time. Writes on the sqlx writer
    /// and on the appender's connection take turns here, in the order they
    /// asked (tokio's mutex is fair), rather than in SQLite's busy handler,
    /// which sleeps and retries.
    write_turn: Arc<tokio::sync::Mutex<()>>,
    appender: Arc<Appender>,
    /// The reads of connection set-up (`user_with_positions`), which REST
    /// calls share (`session_is_live`).
    connect_readers: Arc<Readers>,
}

/// The page size of a new database file (an existing file keeps its own).
/// SQLite's default is 4 KiB; a batch of chat messages changes the last leaf
/// of every room it touches in each index, a few hundred bytes in each, and
/// the WAL holds a whole page per changed page. 1 KiB pages write a quarter
/// of the bytes per changed leaf (docs/benchmarks.md, "What was tried").
const NEW_DATABASE_PAGE_SIZE: u32 = 1024;

/// WAL pages after which the [`checkpointer`] starts copying the WAL into the
/// database file (and after which a sqlx connection's own commit would
/// checkpoint; SQLite's default is 1,000). A checkpoint copies each page once
/// however many commits changed it since the last one, and a busy room's last
/// index leaf changes in every batch: the longer the WAL, the fewer copies.
/// 10,000 pages of 1 KiB keep the WAL file near 10 MiB (docs/benchmarks.md,
/// "What was tried").
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Threads (and read-only connections) for the reads of connection set-up.
const CONNECT_READER_THREADS: usize = 2;

/// What the appender's and the readers' callers get once the store is closed.
fn store_closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

impl SqlStore<SqliteEngine> {
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
            .page_size(NEW_DATABASE_PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // A local file cannot silently lose its connection: skip sqlx's ping on
        // every acquire, a round trip to the connection's worker thread.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        crate::migrate::run(&MIGRATOR, &writer).await?;
        let appender = Appender::start(connect.get_filename(), options.outbox_origin.clone())?;
        let connect_readers = Readers::start(connect.get_filename(), CONNECT_READER_THREADS)?;
        let readers = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(options.pool_size.clamp(1, 8))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self {
            writer,
            readers,
            outbox_origin: options.outbox_origin.clone(),
            engine: SqliteEngine {
                write_turn: Arc::new(tokio::sync::Mutex::new(())),
                appender: Arc::new(appender),
                connect_readers: Arc::new(connect_readers),
            },
        })
    }
}

#[async_trait::async_trait]
impl Engine for SqliteEngine {
    type Db = sqlx::Sqlite;
    /// SQLite serializes writers itself; no row locks are needed.
    const FOR_UPDATE: &'static str = "";
    const FOR_SHARE: &'static str = "";
    const FOR_NO_KEY_UPDATE: &'static str = "";
    /// One writer connection: claiming relays never race.
    const SKIP_LOCKED: &'static str = "";
    /// SQLite's `synchronous` is per connection, not per transaction.
    const RELAXED_COMMIT: &'static str = "";
    type WriteTurn = tokio::sync::OwnedMutexGuard<()>;

    async fn write_turn(&self) -> Self::WriteTurn {
        self.write_turn.clone().lock_owned().await
    }

    /// What waits for the index enters it first (in the write turn), so a
    /// search finds every message stored before it began. The turn is held
    /// until that commit ends even if the search is given up meanwhile (its
    /// client gone): a write let in mid-commit would wait on SQLite's lock.
    async fn search(
        &self,
        store: &SqliteStore,
        request: SearchRequest<'_>,
    ) -> StoreResult<Vec<Message>> {
        if self.appender.search_pending() {
            let turn = self.write_turn().await;
            let appender = self.appender.clone();
            tokio::spawn(async move {
                let _turn = turn;
                appender.index_pending().await
            })
            .await
            .map_err(|err| StoreError::Other(format!("indexing for a search: {err}")))??;
        }
        search::search(store, request).await
    }

    /// On the appender's thread, in the write turn.
    async fn append(&self, _store: &SqliteStore, batch: &[NewMessage]) -> StoreResult<Appended> {
        let _turn = self.write_turn().await;
        self.appender.append(batch.to_vec()).await
    }

    /// On a reader thread.
    async fn room_positions(
        &self,
        _store: &SqliteStore,
        user: UserId,
    ) -> StoreResult<Vec<(RoomId, u64)>> {
        self.connect_readers
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(crate::sql::ROOM_POSITIONS)
                    .map_err(map_rusqlite)?;
                let rows = statement
                    .query_map([user.0], |row| {
                        Ok((RoomId(row.get(0)?), row.get::<_, i64>(1)? as u64))
                    })
                    .map_err(map_rusqlite)?;
                rows.collect::<Result<_, _>>().map_err(map_rusqlite)
            })
            .await
    }

    /// On a reader thread.
    async fn session_is_live(
        &self,
        _store: &SqliteStore,
        user: UserId,
        session: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let session = session.to_owned();
        self.connect_readers
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(crate::sql::SESSION_IS_LIVE)
                    .map_err(map_rusqlite)?;
                statement
                    .exists(rusqlite::params![session, user.0, now.0])
                    .map_err(map_rusqlite)
            })
            .await
    }

    /// On a reader thread.
    async fn user_with_positions(
        &self,
        _store: &SqliteStore,
        user: UserId,
    ) -> StoreResult<Option<(User, Vec<(RoomId, u64)>)>> {
        self.connect_readers
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(crate::sql::USER_WITH_POSITIONS)
                    .map_err(map_rusqlite)?;
                let mut rows = statement.query([user.0]).map_err(map_rusqlite)?;
                let mut found = None;
                let mut positions = Vec::new();
                while let Some(row) = rows.next().map_err(map_rusqlite)? {
                    if found.is_none() {
                        found = Some(crate::sql::decode::user(row)?);
                    }
                    let room: Option<i64> = row.get("room_id").map_err(map_rusqlite)?;
                    let last_seq: Option<i64> = row.get("room_last_seq").map_err(map_rusqlite)?;
                    if let (Some(room), Some(last_seq)) = (room, last_seq) {
                        positions.push((RoomId(room), last_seq as u64));
                    }
                }
                Ok(found.map(|user| (user, positions)))
            })
            .await
    }

    /// Multi-row `VALUES`, in chunks under SQLite's parameter limit; ids
    /// come back in row order.
    async fn insert_outbox(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        rows: &[(i64, &str)],
        origin: &str,
        now: i64,
    ) -> StoreResult<Vec<i64>> {
        use sqlx::Row;
        let mut ids = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(crate::sql::INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO outbox (room_id, origin, payload, created_at) VALUES {} RETURNING id",
                crate::sql::value_rows(chunk.len(), 4)
            );
            let mut query = sqlx::query(&sql);
            for (room, payload) in chunk {
                query = query.bind(*room).bind(origin).bind(*payload).bind(now);
            }
            let found = query
                .persistent(chunk.len() <= crate::sql::CACHED_BATCH_SHAPES)
                .fetch_all(&mut **tx)
                .await
                .map_err(map_err)?;
            for row in found {
                ids.push(row.try_get::<i64, _>(0).map_err(map_err)?);
            }
        }
        Ok(ids)
    }

    /// A page of imported messages enters the search index as a batch of
    /// appended ones does: in one statement, one segment.
    async fn index_imported_messages(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        messages: &[(i64, i64)],
    ) -> StoreResult<()> {
        let rowids: Vec<i64> = (messages.iter())
            .filter_map(|&(room, seq)| search::rowid(room, seq))
            .collect();
        if rowids.is_empty() {
            return Ok(());
        }
        sqlx::query(search::INDEX_NEW)
            .bind(search::rowid_list(rowids))
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// `AUTOINCREMENT` already tracks explicitly inserted ids.
    async fn realign_ids(&self, _store: &SqliteStore) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl ManagedStore for SqliteStore {
    async fn close(&self) {
        self.engine.connect_readers.close().await;
        self.readers.close().await;
        self.engine.appender.close().await;
        self.writer.close().await;
    }

    fn as_store(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}

#[cfg(test)]
mod tests {
    use palaver_domain::store::{
        AccountStore, AppendOutcome, MessageStore, NewMessage, NewRoom, NewUser, OutboxStore,
        ReactionStore, RoomStore,
    };
    use palaver_domain::time::Timestamp;
    use palaver_domain::{RoomId, UserId};

    use super::*;

    async fn scratch_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db"), &StoreOptions::default())
            .await
            .unwrap();
        (dir, store)
    }

    /// A message of `sender` in `room` under idempotency key `key`.
    fn keyed(room: RoomId, sender: UserId, body: String, key: String) -> NewMessage {
        NewMessage {
            room_id: room,
            sender_id: sender,
            body,
            client_id: Some(key),
            reply_to: None,
            created_at: Timestamp(0),
            attachments: None,
        }
    }

    /// A store writing every change's events to the outbox, as node `node-a`.
    async fn outbox_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            outbox_origin: Some("node-a".into()),
            ..StoreOptions::default()
        };
        let store = SqliteStore::open(&dir.path().join("p.db"), &options)
            .await
            .unwrap();
        (dir, store)
    }

    async fn user(store: &SqliteStore, name: &str) -> palaver_domain::model::User {
        let new = NewUser {
            username: name.into(),
            email: None,
            display_name: name.into(),
            password_hash: "x".into(),
            created_at: Timestamp(0),
        };
        store.insert_user(new).await.unwrap()
    }

    async fn room(store: &SqliteStore, owner: UserId, code: &str) -> RoomId {
        let new = NewRoom {
            name: "r".into(),
            code: code.into(),
            password_hash: None,
            owner_id: owner,
            created_at: Timestamp(0),
        };
        store.insert_room(new).await.unwrap().value.id
    }

    #[tokio::test]
    async fn a_database_migrated_by_a_newer_palaver_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("palaver.db");
        let store = SqliteStore::open(&path, &StoreOptions::default())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99990101000000, 'from a future palaver', 1, X'00', 0)",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        store.close().await;

        let Err(err) = SqliteStore::open(&path, &StoreOptions::default()).await else {
            panic!("a newer schema was accepted")
        };
        assert!(err.to_string().contains("newer than this palaver"), "{err}");
    }

    #[tokio::test]
    async fn user_with_positions_reads_the_user_and_every_room_in_one_go() {
        let (_dir, store) = scratch_store().await;
        let (alice, loner) = (user(&store, "alice").await, user(&store, "loner").await);
        let rooms = [
            room(&store, alice.id, "AAAAAAAA").await,
            room(&store, alice.id, "BBBBBBBB").await,
        ];
        let message = NewMessage {
            room_id: rooms[1],
            sender_id: alice.id,
            body: "b".into(),
            client_id: None,
            reply_to: None,
            created_at: Timestamp(0),
            attachments: None,
        };
        store.append_messages(&[message]).await.unwrap();

        let (user, mut positions) = store.user_with_positions(alice.id).await.unwrap().unwrap();
        positions.sort();
        assert_eq!(user, alice);
        assert_eq!(positions, [(rooms[0], 0), (rooms[1], 1)]);
        let (user, positions) = store.user_with_positions(loner.id).await.unwrap().unwrap();
        assert_eq!((user, positions), (loner, Vec::new()));
        assert!(store
            .user_with_positions(UserId(999))
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn the_outbox_holds_each_committed_event_until_deleted_and_leases_claims() {
        use palaver_domain::events::DomainEvent;
        use palaver_domain::model::Role;
        use palaver_domain::store::{Refusal, Removal};

        let (_dir, store) = outbox_store().await;
        let (alice, bob) = (user(&store, "alice").await.id, user(&store, "bob").await.id);
        let room = room(&store, alice, "ABCDEFGH").await;
        let joined = store
            .add_member(room, bob, Role::Member, Timestamp(10))
            .await
            .unwrap();
        let message = |client_id: &str| NewMessage {
            room_id: room,
            sender_id: alice,
            body: "hi".into(),
            client_id: Some(client_id.into()),
            reply_to: None,
            created_at: Timestamp(20),
            attachments: None,
        };
        let appended = store
            .append_messages(&[message("a"), message("b"), message("a")])
            .await
            .unwrap();
        assert_eq!(joined.outbox.len(), 1);
        assert_eq!(
            appended.outbox.len(),
            2,
            "one row per stored message, none for the duplicate"
        );
        // An idempotent re-join writes nothing.
        let again = store
            .add_member(room, bob, Role::Member, Timestamp(11))
            .await
            .unwrap();
        assert!(again.outbox.is_empty());
        // The creation, the join and two messages.
        assert_eq!(store.outbox_backlog().await.unwrap(), 4);

        // Rows younger than `written_before` are left to their publisher: only
        // the room's creation (at 0) is older than 5.
        let creation = store
            .claim_outbox(Timestamp(5), Timestamp(100), Timestamp(200), 10)
            .await
            .unwrap();
        assert_eq!(creation.len(), 1);
        let event = palaver_domain::events::decode(creation[0].payload.as_bytes()).unwrap();
        assert!(
            matches!(event, Some(DomainEvent::MemberJoined { user_id, last_seq: 0, .. }) if user_id == alice),
            "the owner joins the room they create"
        );
        let claimed = store
            .claim_outbox(Timestamp(50), Timestamp(100), Timestamp(200), 10)
            .await
            .unwrap();
        let events: Vec<_> = claimed
            .iter()
            .map(|e| {
                assert_eq!((e.origin.as_str(), e.room_id), ("node-a", room));
                palaver_domain::events::decode(e.payload.as_bytes())
                    .unwrap()
                    .unwrap()
            })
            .collect();
        assert!(
            matches!(&events[0], DomainEvent::MemberJoined { user_id, last_seq: 0, .. } if *user_id == bob)
        );
        assert!(matches!(&events[1], DomainEvent::MessagePosted(m) if m.seq == 1));
        assert!(matches!(&events[2], DomainEvent::MessagePosted(m) if m.seq == 2));
        // Leased until 200: invisible to another relay before then, visible after.
        let during_lease = store
            .claim_outbox(Timestamp(50), Timestamp(150), Timestamp(300), 10)
            .await
            .unwrap();
        assert!(during_lease.is_empty());
        let after_lease = store
            .claim_outbox(Timestamp(50), Timestamp(201), Timestamp(300), 10)
            .await
            .unwrap();
        assert_eq!(after_lease.len(), 4, "the creation's lease ran out too");

        let ids: Vec<i64> = after_lease.iter().map(|e| e.id).collect();
        store.delete_outbox(&ids).await.unwrap();
        let left = store
            .remove_member(room, bob, Removal::Left, Timestamp(60))
            .await
            .unwrap()
            .unwrap()
            .outbox;
        assert_eq!(left.len(), 1);
        let left: Vec<i64> = left.iter().map(|row| row.id).collect();
        let remaining = store
            .claim_outbox(Timestamp(i64::MAX), Timestamp(1000), Timestamp(2000), 10)
            .await
            .unwrap();
        assert_eq!(remaining.iter().map(|e| e.id).collect::<Vec<_>>(), left);
        // Claimed rows stay until they are deleted.
        assert_eq!(store.outbox_backlog().await.unwrap(), 1);
        assert_eq!(
            store
                .remove_member(room, bob, Removal::Left, Timestamp(61))
                .await
                .unwrap()
                .unwrap_err(),
            Refusal::NotMember
        );
    }

    /// The events a change returns are the events its outbox rows hold, one
    /// row each, in order, and the rows in the table hold the same payloads.
    /// (Compared in their versioned form, which omits what other nodes need
    /// not know, such as an edited message's `client_id`.)
    fn published_equals_outbox<T>(
        change: &str,
        committed: &palaver_domain::store::Committed<T>,
        written: &mut Vec<palaver_domain::events::OutboxRow>,
    ) {
        assert!(!committed.events.is_empty(), "{change}: no event");
        assert_eq!(
            committed.events.len(),
            committed.outbox.len(),
            "{change}: one outbox row per event"
        );
        for (event, row) in committed.events.iter().zip(&committed.outbox) {
            // The event's versioned form (what other nodes receive) is the row,
            // and reading the row gives that form back.
            let encoded = palaver_domain::events::encode(event);
            assert_eq!(
                encoded, &*row.payload,
                "{change}: the row holds the published event"
            );
            let read = palaver_domain::events::decode(row.payload.as_bytes())
                .unwrap()
                .unwrap();
            assert_eq!(palaver_domain::events::encode(&read), encoded, "{change}");
            assert_eq!(read.room_id(), event.room_id(), "{change}");
        }
        written.extend(committed.outbox.iter().cloned());
    }

    #[tokio::test]
    async fn every_change_publishes_exactly_what_its_outbox_rows_hold() {
        use palaver_domain::model::Role;
        use palaver_domain::store::{Removal, RoomChanges};

        let (_dir, store) = outbox_store().await;
        let (alice, bob, carol) = (
            user(&store, "alice").await.id,
            user(&store, "bob").await.id,
            user(&store, "carol").await.id,
        );
        let at = Timestamp(10);
        let mut written = Vec::new();
        let new_room = |code: &str| NewRoom {
            name: "r".into(),
            code: code.into(),
            password_hash: None,
            owner_id: alice,
            created_at: at,
        };

        let created = store.insert_room(new_room("ABCDEFGH")).await.unwrap();
        published_equals_outbox("insert_room", &created, &mut written);
        let room = created.value.id;
        let direct = store
            .direct_room(alice, bob, new_room("DIRECT01"))
            .await
            .unwrap();
        published_equals_outbox("direct_room", &direct, &mut written);
        for member in [bob, carol] {
            let joined = store
                .add_member(room, member, Role::Member, at)
                .await
                .unwrap();
            published_equals_outbox("add_member", &joined, &mut written);
        }
        let message = |client_id: &str| NewMessage {
            room_id: room,
            sender_id: alice,
            body: "hi".into(),
            client_id: Some(client_id.into()),
            reply_to: None,
            created_at: at,
            attachments: None,
        };
        let appended = store
            .append_messages(&[message("a"), message("b"), message("a")])
            .await
            .unwrap();
        published_equals_outbox("append_messages", &appended, &mut written);
        assert_eq!(appended.events.len(), 2, "no event for the duplicate");
        let edited = store
            .edit_message(room, 1, "edited", at)
            .await
            .unwrap()
            .unwrap();
        published_equals_outbox("edit_message", &edited, &mut written);
        let deleted = store.delete_message(room, 2, at).await.unwrap().unwrap();
        published_equals_outbox("delete_message", &deleted, &mut written);
        let read = store.mark_read(room, bob, 2, at).await.unwrap();
        published_equals_outbox("mark_read", &read, &mut written);
        let reaction = palaver_domain::store::Reaction {
            room_id: room,
            seq: 1,
            user_id: bob,
            emoji: palaver_domain::messages::emoji::Emoji::parse("👍").unwrap(),
        };
        let caps = palaver_domain::messages::reactions::CAPS;
        let added = store.add_reaction(&reaction, caps, at).await.unwrap();
        published_equals_outbox("add_reaction", &added, &mut written);
        assert_eq!(added.events.len(), 1);
        let again = store.add_reaction(&reaction, caps, at).await.unwrap();
        assert!(
            again.events.is_empty() && again.outbox.is_empty(),
            "a repeated reaction is no change"
        );
        let removed = store.remove_reaction(&reaction, at).await.unwrap();
        published_equals_outbox("remove_reaction", &removed, &mut written);
        assert_eq!(removed.events.len(), 1);
        let promoted = store
            .set_role(room, alice, bob, Role::Admin, at)
            .await
            .unwrap()
            .unwrap();
        published_equals_outbox("set_role", &promoted, &mut written);
        let changes = RoomChanges {
            name: Some("renamed".into()),
            ..RoomChanges::default()
        };
        let updated = store
            .update_room(room, alice, changes, at)
            .await
            .unwrap()
            .unwrap();
        published_equals_outbox("update_room", &updated, &mut written);
        assert_eq!(updated.value.name, "renamed");
        let kicked = store
            .remove_member(room, carol, Removal::Kicked { by: alice }, at)
            .await
            .unwrap()
            .unwrap();
        published_equals_outbox("remove_member (kick)", &kicked, &mut written);
        let transferred = store
            .transfer_ownership(room, alice, bob, at)
            .await
            .unwrap()
            .unwrap();
        published_equals_outbox("transfer_ownership", &transferred, &mut written);
        let left = store
            .remove_member(room, bob, Removal::Left, at)
            .await
            .unwrap()
            .unwrap();
        published_equals_outbox("remove_member (owner leaves)", &left, &mut written);
        assert!(
            left.events.len() >= 3,
            "left, the heir's role, the room's owner"
        );
        let rejoined = store
            .add_member(room, carol, Role::Member, at)
            .await
            .unwrap();
        published_equals_outbox("add_member (again)", &rejoined, &mut written);
        let banned = store
            .remove_member(room, carol, Removal::Banned { by: alice, at }, at)
            .await
            .unwrap()
            .unwrap();
        published_equals_outbox("remove_member (ban)", &banned, &mut written);
        let gone = store.delete_room(room, alice, at).await.unwrap().unwrap();
        published_equals_outbox("delete_room", &gone, &mut written);

        // And the table holds exactly those rows, with those payloads, in order.
        let rows = store
            .claim_outbox(Timestamp(i64::MAX), Timestamp(100), Timestamp(200), 1000)
            .await
            .unwrap();
        let in_table: Vec<_> = rows.iter().map(|r| (r.id, r.payload.as_str())).collect();
        let returned: Vec<_> = written.iter().map(|r| (r.id, &*r.payload)).collect();
        assert_eq!(in_table, returned);
    }

    #[tokio::test]
    async fn without_an_origin_no_outbox_rows_are_written() {
        let (_dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await.id;
        let room = room(&store, alice, "ABCDEFGH").await;
        let appended = store
            .append_messages(&[NewMessage {
                room_id: room,
                sender_id: alice,
                body: "hi".into(),
                client_id: None,
                reply_to: None,
                created_at: Timestamp(0),
                attachments: None,
            }])
            .await
            .unwrap();
        assert!(appended.outbox.is_empty());
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&store.readers)
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[tokio::test]
    async fn in_memory_databases_are_refused() {
        assert!(
            SqliteStore::open_url("sqlite::memory:", &StoreOptions::default())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn appends_and_other_writes_take_turns_without_failing() {
        let (_dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        let first = room(&store, alice.id, "AAAAAAAA").await;
        // Appends on the appender's connection race creations and read
        // markers on the writer pool's; none may fail as busy.
        let appends = (0..200).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let message = NewMessage {
                    room_id: first,
                    sender_id: alice.id,
                    body: format!("m{n}"),
                    client_id: None,
                    reply_to: None,
                    created_at: Timestamp(n),
                    attachments: None,
                };
                store.append_messages(&[message]).await.map(|_| ())
            })
        });
        let other_writes = (0..50).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .mark_read(first, alice.id, n / 2, Timestamp(n as i64))
                    .await?;
                let new = NewRoom {
                    name: "r".into(),
                    code: format!("C{n:07}"),
                    password_hash: None,
                    owner_id: alice.id,
                    created_at: Timestamp(0),
                };
                store.insert_room(new).await.map(|_| ())
            })
        });
        let tasks: Vec<_> = appends.chain(other_writes).collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stored = store.messages_after(first, 0, 500).await.unwrap();
        let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>(), "no gap, no repeat");
    }

    async fn matching(store: &SqliteStore, word: &str) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT rowid FROM messages_search WHERE messages_search MATCH $1 ORDER BY rowid",
        )
        .bind(word)
        .fetch_all(&store.readers)
        .await
        .unwrap()
    }

    async fn count(store: &SqliteStore, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&store.readers)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn stored_messages_wait_for_the_search_index_then_enter_it_as_one_segment() {
        let (_dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        let first = room(&store, alice.id, "ABCDEFGH").await;
        let second = room(&store, alice.id, "BCDEFGHI").await;
        // Rooms alternate, the later room first: rowids arrive out of order.
        let mut batch: Vec<NewMessage> = (0..20)
            .map(|i| {
                let room = if i % 2 == 0 { second } else { first };
                keyed(room, alice.id, format!("apple {i}"), format!("k{i}"))
            })
            .collect();
        batch.push(keyed(second, alice.id, "apple again".into(), "k0".into()));
        let appended = store.append_messages(&batch).await.unwrap();
        assert!(matches!(appended.value[20], AppendOutcome::Duplicate(_)));
        // Stored, waiting: the repeat is not.
        assert_eq!(matching(&store, "apple").await, Vec::<i64>::new());
        assert_eq!(count(&store, "search_pending").await, 20);
        assert!(store.engine.appender.search_pending());

        // Edited and deleted while waiting: they enter the index as they are
        // then, once.
        for (seq, body) in [(1, "pear"), (2, "")] {
            sqlx::query("UPDATE messages SET body = $1 WHERE room_id = $2 AND seq = $3")
                .bind(body)
                .bind(first.0)
                .bind(seq)
                .execute(&store.writer)
                .await
                .unwrap();
        }
        store.engine.appender.index_pending().await.unwrap();
        let rowid = |room: RoomId, seq: i64| (room.0 << 32) | seq;
        let apples: Vec<i64> = (3..=10)
            .map(|seq| rowid(first, seq))
            .chain((1..=10).map(|seq| rowid(second, seq)))
            .collect();
        assert_eq!(matching(&store, "apple").await, apples);
        assert_eq!(matching(&store, "pear").await, vec![rowid(first, 1)]);
        assert_eq!(count(&store, "search_pending").await, 0);
        assert!(!store.engine.appender.search_pending());
        // The averages, the structure, one leaf: one segment for them all.
        assert_eq!(count(&store, "messages_search_data").await, 3);

        // Once indexed, an edit goes through the trigger.
        sqlx::query("UPDATE messages SET body = 'plum' WHERE room_id = $1 AND seq = 1")
            .bind(first.0)
            .execute(&store.writer)
            .await
            .unwrap();
        assert_eq!(matching(&store, "pear").await, Vec::<i64>::new());
        assert_eq!(matching(&store, "plum").await, vec![rowid(first, 1)]);
    }

    #[tokio::test]
    async fn whether_a_message_waits_is_one_index_lookup() {
        // The body-update trigger asks it of every message an erasure empties.
        let (_dir, store) = scratch_store().await;
        let plan: Vec<String> = (sqlx::query_as::<_, (i64, i64, i64, String)>(
            "EXPLAIN QUERY PLAN SELECT 1 FROM search_pending WHERE message = 42",
        ))
        .fetch_all(&store.readers)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, _, detail)| detail)
        .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING COVERING INDEX search_pending_message")),
            "{plan:?}"
        );
    }

    #[tokio::test]
    async fn a_batch_that_fills_the_waiting_list_feeds_the_index_itself() {
        let (_dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        let first = room(&store, alice.id, "ABCDEFGH").await;
        let batch = |from: usize, n: usize| -> Vec<NewMessage> {
            (from..from + n)
                .map(|i| keyed(first, alice.id, format!("cherry {i}"), format!("k{i}")))
                .collect()
        };
        let short = search::INDEX_AFTER - 1;
        store.append_messages(&batch(0, short)).await.unwrap();
        assert_eq!(count(&store, "search_pending").await, short as i64);
        assert!(matching(&store, "cherry").await.is_empty());
        store.append_messages(&batch(short, 1)).await.unwrap();
        assert_eq!(count(&store, "search_pending").await, 0);
        assert_eq!(matching(&store, "cherry").await.len(), search::INDEX_AFTER);
        assert!(!store.engine.appender.search_pending());
    }

    async fn pragma(store: &SqliteStore, name: &str) -> i64 {
        sqlx::query_scalar(&format!("PRAGMA {name}"))
            .fetch_one(&store.readers)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn new_files_get_small_pages_and_long_wals_and_existing_files_keep_their_pages() {
        let (_dir, store) = scratch_store().await;
        assert_eq!(pragma(&store, "page_size").await, 1024);
        assert_eq!(pragma(&store, "wal_autocheckpoint").await, 10_000);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = rusqlite::Connection::open(&path).unwrap();
        old.pragma_update(None, "page_size", 4096).unwrap();
        old.pragma_update(None, "journal_mode", "WAL").unwrap();
        drop(old);
        let store = SqliteStore::open(&path, &StoreOptions::default())
            .await
            .unwrap();
        assert_eq!(pragma(&store, "page_size").await, 4096);
        user(&store, "alice").await;
    }

    #[tokio::test]
    async fn appends_leave_more_than_sqlites_default_in_the_wal_before_checkpointing() {
        let (dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, alice.id, "ABCDEFGH").await;
        let body = "x".repeat(400);
        for batch in 0..10 {
            let messages: Vec<NewMessage> = (0..500)
                .map(|n| {
                    keyed(
                        room,
                        alice.id,
                        format!("{batch}.{n} {body}"),
                        format!("{batch}.{n}"),
                    )
                })
                .collect();
            store.append_messages(&messages).await.unwrap();
        }
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
        // Well past SQLite's default of 1,000 pages, well short of 10,000.
        assert!(
            size("p.db-wal") > 2_000 * 1024,
            "WAL {} bytes",
            size("p.db-wal")
        );
        // A checkpoint is what copies pages into the database file.
        assert!(
            size("p.db") < 1_000 * 1024,
            "database {} bytes",
            size("p.db")
        );
    }

    #[tokio::test]
    async fn connection_reads_after_close_fail_as_unavailable() {
        let (_dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        assert!(store.user_with_positions(alice.id).await.unwrap().is_some());
        store.engine.connect_readers.close().await;
        let err = store.user_with_positions(alice.id).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        let err = store.room_positions(alice.id).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    }

    #[tokio::test]
    async fn appends_after_close_fail_as_unavailable() {
        let (_dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, alice.id, "ABCDEFGH").await;
        store.engine.appender.close().await;
        let message = NewMessage {
            room_id: room,
            sender_id: alice.id,
            body: "late".into(),
            client_id: None,
            reply_to: None,
            created_at: Timestamp(0),
            attachments: None,
        };
        let err = store.append_messages(&[message]).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    }

    #[tokio::test]
    async fn a_failed_batch_stores_nothing_and_allocates_no_seq() {
        let (_dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, alice.id, "ABCDEFGH").await;
        let message = |body: &str| NewMessage {
            room_id: room,
            sender_id: alice.id,
            body: body.into(),
            client_id: None,
            reply_to: None,
            created_at: Timestamp(0),
            attachments: None,
        };
        // Plant a row where the second message of the next batch will go, so
        // the batch fails half-way through.
        sqlx::query(
            "INSERT INTO messages (room_id, seq, sender_id, body, created_at) VALUES ($1, 2, $2, 'planted', 0)",
        )
        .bind(room.0)
        .bind(alice.id.0)
        .execute(&store.writer)
        .await
        .unwrap();
        store
            .append_messages(&[message("one"), message("two")])
            .await
            .expect_err("the second insert collides");

        let stored = store.messages_after(room, 0, 10).await.unwrap();
        let bodies: Vec<_> = stored.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(
            bodies,
            ["planted"],
            "the first message of the failed batch was rolled back"
        );
        let positions = store.room_positions(alice.id).await.unwrap();
        assert_eq!(positions, [(room, 0)], "no seq was consumed");
    }

    /// A bus that holds nothing: these tests look at the writer, not fan-out.
    struct NoBus;

    impl palaver_domain::bus::Bus for NoBus {
        fn publish(
            &self,
            _events: Vec<palaver_domain::bus::Publication>,
        ) -> palaver_domain::bus::Delivery {
            palaver_domain::bus::delivered()
        }
    }

    #[tokio::test]
    async fn the_writer_says_it_is_committing_while_its_batch_waits_on_the_database() {
        use palaver_domain::messages::{MessageWriter, WriterConfig};
        use palaver_domain::outbox::Publisher;

        let (dir, store) = scratch_store().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, alice.id, "ABCDEFGH").await;
        let store: Arc<dyn Store> = Arc::new(store);
        let publisher = Publisher::new(Arc::new(NoBus), store.clone());
        let (writer, _task) = MessageWriter::spawn(store, publisher, WriterConfig::default());
        assert!(!writer.committing(), "idle");

        // Another connection holds the write lock: the batch's transaction
        // waits for it (busy timeout 5 s), so the commit stays in flight.
        let other = rusqlite::Connection::open(dir.path().join("p.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let sending = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .append(NewMessage {
                        room_id: room,
                        sender_id: alice.id,
                        body: "held".into(),
                        client_id: None,
                        reply_to: None,
                        created_at: Timestamp(0),
                        attachments: None,
                    })
                    .await
            }
        });
        let raised = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while !writer.committing() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(raised.is_ok(), "not committing while the batch waits");
        assert!(!sending.is_finished());

        other.execute_batch("COMMIT").unwrap();
        let outcome = sending.await.unwrap().unwrap();
        assert!(matches!(outcome, AppendOutcome::Stored(_)), "{outcome:?}");
        assert!(!writer.committing(), "lowered once the commit is answered");
    }
}
