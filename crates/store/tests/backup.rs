//! `palaver db backup` and `db restore` at the store: a backup taken while
//! messages are appended is one instant of the store (every room's messages
//! are exactly `1..=last_seq`, every message acknowledged before it began is
//! there); a restore goes only into an empty store, only from a Palaver file
//! of a schema this binary reads. The PostgreSQL runs need a server
//! (`./scripts/test` provides one; see `PALAVER_TEST_POSTGRES_URL`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use palaver_domain::store::{AppendOutcome, MessageStore, NewMessage, NewRoom, NewUser, Store};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use palaver_store::backup::{self, Source};
use palaver_store::transfer::Table;
use palaver_store::{ManagedStore, PostgresStore, SqliteStore, StoreOptions};
use sqlx::Connection;

async fn sqlite_store(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &StoreOptions::default())
        .await
        .unwrap()
}

/// A database of its own on the test server, recreated for each test.
async fn postgres_database(test: &str) -> String {
    let admin_url = std::env::var("PALAVER_TEST_POSTGRES_URL")
        .expect("PALAVER_TEST_POSTGRES_URL names a PostgreSQL server (./scripts/test sets it)");
    let name = format!("palaver_backup_{test}");
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    let new = NewUser {
        username: name.into(),
        email: None,
        display_name: name.into(),
        password_hash: "x".into(),
        created_at: Timestamp(0),
    };
    store.insert_user(new).await.unwrap().id
}

async fn room(store: &dyn Store, owner: UserId, code: &str) -> RoomId {
    let new = NewRoom {
        name: "r".into(),
        code: code.into(),
        password_hash: None,
        owner_id: owner,
        created_at: Timestamp(0),
    };
    store.insert_room(new).await.unwrap().value.id
}

/// An upload's row (its file lives apart, behind the Blobs port).
async fn attachment(store: &dyn Store, room: RoomId, uploader: UserId) {
    let new = palaver_domain::store::NewAttachment {
        id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        room_id: room,
        uploader_id: uploader,
        name: "plan.png".into(),
        size: 33,
        content_type: "image/png".into(),
        sha256: "0".repeat(64),
        width: Some(3),
        height: Some(2),
        created_at: Timestamp(0),
    };
    let stored = store.insert_attachment(&new, u64::MAX).await.unwrap();
    assert!(matches!(
        stored,
        palaver_domain::store::AttachmentInsert::Stored(_)
    ));
}

fn message(room: RoomId, sender: UserId, body: String) -> NewMessage {
    NewMessage {
        room_id: room,
        sender_id: sender,
        body,
        client_id: None,
        reply_to: None,
        created_at: Timestamp(0),
        attachments: None,
    }
}

/// Enough history that copying it takes many pages: appends land between
/// the reads of one table and the next.
async fn fill(store: &dyn Store, rooms: &[RoomId], sender: UserId) {
    for &room in rooms {
        for batch in 0..6 {
            let messages: Vec<_> = (0..500)
                .map(|n| message(room, sender, format!("old {batch}.{n}")))
                .collect();
            store.append_messages(&messages).await.unwrap();
        }
    }
}

/// Appends to every room, one message per append, until stopped; records
/// each acknowledged `(room, seq)`.
struct Appending {
    acked: Arc<Mutex<Vec<(i64, u64)>>>,
    /// How many are in `acked`.
    count: tokio::sync::watch::Sender<usize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Appending {
    fn start(store: Arc<dyn Store>, rooms: &[RoomId], sender: UserId) -> Self {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let count = tokio::sync::watch::Sender::new(0);
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = rooms
            .iter()
            .map(|&room| {
                let (store, acked, stop) = (store.clone(), acked.clone(), stop.clone());
                let count = count.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let sent = message(room, sender, format!("live {n}"));
                        let appended = store.append_messages(&[sent]).await.unwrap();
                        let [AppendOutcome::Stored(stored)] = appended.value.as_slice() else {
                            panic!("not stored: {:?}", appended.value)
                        };
                        let mut acked = acked.lock().unwrap();
                        acked.push((room.0, stored.seq));
                        count.send_replace(acked.len());
                    }
                })
            })
            .collect();
        Self {
            acked,
            count,
            stop,
            tasks,
        }
    }

    fn acked(&self) -> Vec<(i64, u64)> {
        self.acked.lock().unwrap().clone()
    }

    /// Waits until `count` appends were acknowledged in all.
    async fn until(&self, count: usize) {
        let mut acked = self.count.subscribe();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            acked.wait_for(|acked| *acked >= count),
        )
        .await
        .expect("appends are acknowledged")
        .unwrap();
    }

    async fn stop(self) -> Vec<(i64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// Each room's `last_seq` in the backup file, after checking that its
/// messages are exactly `1..=last_seq`: what one instant of the store holds.
fn rooms_in(file: &Path) -> BTreeMap<i64, u64> {
    let connection =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut rooms = connection
        .prepare("SELECT id, last_seq FROM rooms ORDER BY id")
        .unwrap();
    let rooms: Vec<(i64, u64)> = rooms
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for &(room, last_seq) in &rooms {
        let mut seqs = connection
            .prepare("SELECT seq FROM messages WHERE room_id = ?1 ORDER BY seq")
            .unwrap();
        let seqs: Vec<u64> = seqs
            .query_map([room], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            seqs,
            (1..=last_seq).collect::<Vec<_>>(),
            "room {room}: the messages are not those of its last_seq {last_seq}"
        );
    }
    rooms.into_iter().collect()
}

/// Every message acknowledged before the backup began is in it, and every
/// message in it was acknowledged.
fn assert_holds(rooms: &BTreeMap<i64, u64>, before: &[(i64, u64)], all: &[(i64, u64)]) {
    for (room, seq) in before {
        assert!(
            rooms[room] >= *seq,
            "message {seq} of room {room}, acknowledged before the backup, is missing"
        );
    }
    for (room, &last_seq) in rooms {
        let newest = all
            .iter()
            .filter(|(r, _)| r == room)
            .map(|(_, seq)| *seq)
            .max()
            .unwrap();
        assert!(
            last_seq <= newest,
            "room {room}: {last_seq} in the backup, never acknowledged"
        );
    }
}

fn rows(report: &[(Table, i64)], table: Table) -> i64 {
    report.iter().find(|(t, _)| *t == table).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_during_appends_is_one_instant_of_the_store_in_one_compact_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    let store = Arc::new(sqlite_store(&path).await);
    let alice = user(&*store, "alice").await;
    let rooms = [
        room(&*store, alice, "AAAAAAAA").await,
        room(&*store, alice, "BBBBBBBB").await,
    ];
    fill(&*store, &rooms, alice).await;
    attachment(&*store, rooms[0], alice).await;
    let appending = Appending::start(store.clone(), &rooms, alice);
    appending.until(20).await;

    let to = dir.path().join("backup.db");
    let before = appending.acked();
    let written = backup::backup(Source::SqliteFile(&path), &to)
        .await
        .unwrap();
    let after = appending.acked().len();
    appending.until(after + 20).await;
    let all = appending.stop().await;

    let in_file = rooms_in(&to);
    assert_holds(&in_file, &before, &all);
    let held: u64 = in_file.values().sum();
    assert_eq!(rows(&written.tables, Table::Messages), held as i64);
    assert_eq!(rows(&written.tables, Table::Attachments), 1);
    assert_eq!(rows(&written.tables, Table::Users), 1);
    // One self-contained file in rollback-journal mode (header bytes 18
    // and 19), with the store's 1 KiB pages, and nothing left beside it.
    let header = std::fs::read(&to).unwrap();
    assert_eq!((header[18], header[19]), (1, 1), "not in WAL mode");
    assert_eq!(u16::from_be_bytes([header[16], header[17]]), 1024);
    assert_eq!(written.bytes, header.len() as u64);
    let mut beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("backup"))
        .collect();
    beside.sort();
    assert_eq!(beside, ["backup.db"]);
    // The whole store, signing keys and password hashes included: its
    // owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&to).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "backup mode {mode:o}");
    }

    // Restored into a new store, it continues where the backup ends.
    let restored_path = dir.path().join("restored.db");
    let restored = sqlite_store(&restored_path).await;
    let report = backup::restore(&to, &restored).await.unwrap();
    assert_eq!(report, written.tables);
    let next = restored
        .append_messages(&[message(rooms[0], alice, "after".into())])
        .await
        .unwrap();
    let [AppendOutcome::Stored(next)] = next.value.as_slice() else {
        panic!("not stored")
    };
    assert_eq!(next.seq, in_file[&rooms[0].0] + 1);
    restored.close().await;
    store.close().await;
}

#[tokio::test]
async fn a_backup_never_overwrites_a_file_and_leaves_nothing_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    let store = sqlite_store(&path).await;
    user(&store, "alice").await;
    let to = dir.path().join("backup.db");
    std::fs::write(&to, "precious").unwrap();
    let err = backup::backup(Source::SqliteFile(&path), &to)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&to).unwrap(), "precious");

    // An interrupted backup's files are neither used nor removed.
    let to = dir.path().join("other.db");
    std::fs::create_dir(dir.path().join("other.db.partial")).unwrap();
    let err = backup::backup(Source::SqliteFile(&path), &to)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("interrupted"), "{err}");
    assert!(!to.exists());
    assert!(dir.path().join("other.db.partial").is_dir());

    // A SQLite file that is not Palaver's: no backup, no files left.
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    let to = dir.path().join("third.db");
    let err = backup::backup(Source::SqliteFile(&foreign), &to)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a Palaver database"), "{err}");
    assert!(!to.exists());
    assert!(!dir.path().join("third.db.partial").exists());
    // Nor of a file that is not there.
    let err = backup::backup(Source::SqliteFile(&dir.path().join("none.db")), &to)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no such database file"), "{err}");
    assert!(
        !dir.path().join("none.db").exists(),
        "created by the backup"
    );
    store.close().await;
}

#[tokio::test]
async fn a_restore_goes_only_into_an_empty_store_from_a_palaver_file_it_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir.path().join("palaver.db")).await;
    let alice = user(&store, "alice").await;
    room(&store, alice, "AAAAAAAA").await;
    let file = dir.path().join("backup.db");
    backup::backup(Source::SqliteFile(&dir.path().join("palaver.db")), &file)
        .await
        .unwrap();

    // A store with something in it stays as it was.
    let err = backup::restore(&file, &store).await.unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    let target = sqlite_store(&dir.path().join("target.db")).await;

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, but long enough to look like one?",
    )
    .unwrap();
    let err = backup::restore(&text, &target)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a SQLite database"), "{err}");

    let newer = dir.path().join("newer.db");
    std::fs::copy(&file, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99990101000000, 'from a future palaver', 1, X'00', 0)",
            [],
        )
        .unwrap();
    let err = backup::restore(&newer, &target)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("newer than this palaver"), "{err}");

    // Refused restores wrote nothing: the target still takes the backup.
    let report = backup::restore(&file, &target).await.unwrap();
    assert_eq!(
        (rows(&report, Table::Users), rows(&report, Table::Rooms)),
        (1, 1)
    );
    target.close().await;
    store.close().await;
}

#[tokio::test]
async fn a_backup_of_an_older_schema_is_brought_to_this_one_on_restore() {
    let dir = tempfile::tempdir().unwrap();
    // Every migration but the newest.
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    let mut files: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
    files.sort();
    files.pop();
    for file in &files {
        std::fs::copy(file, migrations.join(file.file_name().unwrap())).unwrap();
    }
    let old = dir.path().join("old.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&old)
        .create_if_missing(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap()
        .run(&mut connection)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash, created_at)
         VALUES ('old', 'Old', 'x', 0)",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
    let inspected = backup::inspect(&old).await.unwrap();

    let target = sqlite_store(&dir.path().join("target.db")).await;
    let report = backup::restore(&old, &target).await.unwrap();
    assert_eq!(rows(&report, Table::Users), 1);
    assert!(
        backup::inspect(&dir.path().join("target.db"))
            .await
            .unwrap()
            .schema_version
            > inspected.schema_version
    );
    target.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_taken_during_appends_is_one_snapshot_and_restores_into_postgres() {
    let url = postgres_database("during_appends").await;
    let store = Arc::new(
        PostgresStore::open(&url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let alice = user(&*store, "alice").await;
    let rooms = [
        room(&*store, alice, "AAAAAAAA").await,
        room(&*store, alice, "BBBBBBBB").await,
    ];
    fill(&*store, &rooms, alice).await;
    attachment(&*store, rooms[0], alice).await;
    let appending = Appending::start(store.clone(), &rooms, alice);
    appending.until(20).await;

    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backup.db");
    let before = appending.acked();
    let written = backup::backup(Source::Url(&url), &to).await.unwrap();
    let after = appending.acked().len();
    appending.until(after + 20).await;
    let all = appending.stop().await;

    // Rooms are read before messages: outside one snapshot, messages
    // appended meanwhile would outrun their room's last_seq.
    let in_file = rooms_in(&to);
    assert_holds(&in_file, &before, &all);
    let held: u64 = in_file.values().sum();
    assert_eq!(rows(&written.tables, Table::Messages), held as i64);
    assert_eq!(rows(&written.tables, Table::Attachments), 1);

    let restored_url = postgres_database("during_appends_restored").await;
    let restored = PostgresStore::open(&restored_url, &StoreOptions::default())
        .await
        .unwrap();
    let report = backup::restore(&to, &restored).await.unwrap();
    assert_eq!(report, written.tables);
    let next = restored
        .append_messages(&[message(rooms[1], alice, "after".into())])
        .await
        .unwrap();
    let [AppendOutcome::Stored(next)] = next.value.as_slice() else {
        panic!("not stored")
    };
    assert_eq!(next.seq, in_file[&rooms[1].0] + 1);
    let bob = user(&restored, "bob").await;
    assert_eq!(bob.0, 2, "ids continue after the restored ones");
    restored.close().await;
    store.close().await;
}

#[tokio::test]
async fn a_postgres_backup_refuses_a_schema_this_palaver_does_not_read() {
    let url = postgres_database("newer_schema").await;
    let store = PostgresStore::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    store.close().await;
    let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from a future palaver', true, '\\x00', 0)",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backup.db");
    let err = backup::backup(Source::Url(&url), &to).await.unwrap_err();
    assert!(err.to_string().contains("newer than this palaver"), "{err}");
    assert!(!to.exists());

    // Nor is the backup's source ever migrated: an older one is refused as is.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version >= (SELECT MAX(version) FROM _sqlx_migrations WHERE version < 99990101000000)")
        .execute(&mut connection)
        .await
        .unwrap();
    let err = backup::backup(Source::Url(&url), &to).await.unwrap_err();
    assert!(err.to_string().contains("older than this palaver"), "{err}");
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    let known = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"))
        .unwrap()
        .count() as i64;
    assert_eq!(versions, known - 1, "the backup migrated its source");
    assert!(!to.exists());
}
