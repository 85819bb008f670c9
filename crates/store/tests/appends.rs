//! Append batches on both engines: the same expectations of SQLite's
//! appender and of PostgreSQL's set-based statements. The PostgreSQL runs
//! need a server (`./scripts/test` provides one; see `PALAVER_TEST_POSTGRES_URL`).

use palaver_domain::model::User;
use palaver_domain::store::{AppendOutcome, NewMessage, NewRoom, NewUser, Store};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use palaver_store::{PostgresStore, SqliteStore, StoreOptions};
use sqlx::Connection;

/// Each check, on a fresh SQLite file and a fresh PostgreSQL database.
macro_rules! on_both_engines {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $check() {
                let (_dir, store) = super::sqlite().await;
                super::$check(&store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $check() {
                let store = super::postgres(stringify!($check)).await;
                super::$check(&store).await;
            })*
        }
    };
}

on_both_engines!(
    one_batch_allocates_per_room_ranges_and_resolves_repeated_keys_and_non_members,
    a_large_batch_over_several_rooms_keeps_every_column_intact,
    a_batch_mentions_the_members_named_once_each_and_no_one_else,
    a_deleted_account_takes_its_mentions_and_erased_messages_theirs,
);

/// Stores write the cluster's outbox (as node `node-a`): the append path
/// nodes of a cluster take. (Single nodes, without one, are what the API
/// suite runs on both engines.)
fn with_outbox() -> StoreOptions {
    StoreOptions {
        outbox_origin: Some("node-a".into()),
        ..StoreOptions::default()
    }
}

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db"), &with_outbox())
        .await
        .unwrap();
    (dir, store)
}

/// A store on a database of its own on the test server, recreated for each check.
async fn postgres(check: &str) -> PostgresStore {
    PostgresStore::open(postgres_database(check).await.as_str(), &with_outbox())
        .await
        .unwrap()
}

/// The URL of a fresh database for `check` on the test server.
async fn postgres_database(check: &str) -> url::Url {
    let admin_url = std::env::var("PALAVER_TEST_POSTGRES_URL")
        .expect("PALAVER_TEST_POSTGRES_URL names a PostgreSQL server (./scripts/test sets it)");
    let name = format!("palaver_appends_{}", &check[..check.len().min(40)]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    url
}

async fn user(store: &dyn Store, name: &str) -> User {
    let new = NewUser {
        username: name.into(),
        email: None,
        display_name: name.into(),
        password_hash: "x".into(),
        created_at: Timestamp(0),
    };
    store.insert_user(new).await.unwrap()
}

/// A message without an idempotency key.
fn plain(room_id: RoomId, sender_id: UserId) -> NewMessage {
    NewMessage {
        room_id,
        sender_id,
        body: "b".into(),
        client_id: None,
        reply_to: None,
        created_at: Timestamp(0),
        attachments: None,
    }
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

async fn one_batch_allocates_per_room_ranges_and_resolves_repeated_keys_and_non_members(
    store: &dyn Store,
) {
    let (alice, mallory) = (
        user(store, "alice").await.id,
        user(store, "mallory").await.id,
    );
    let rooms = [
        room(store, alice, "AAAAAAAA").await,
        room(store, alice, "BBBBBBBB").await,
    ];
    let message = |room, sender, key: Option<&str>| NewMessage {
        room_id: room,
        sender_id: sender,
        body: "b".into(),
        client_id: key.map(Into::into),
        reply_to: None,
        created_at: Timestamp(0),
        attachments: None,
    };
    let batch = [
        message(rooms[0], alice, Some("k1")),
        message(rooms[1], alice, None),
        message(rooms[0], mallory, Some("k9")),
        message(rooms[0], alice, Some("k1")),
        message(rooms[0], alice, None),
        message(rooms[1], alice, Some("k1")),
    ];
    let outcomes = store.append_messages(&batch).await.unwrap().value;
    let summary: Vec<_> = outcomes
        .iter()
        .map(|o| match o {
            AppendOutcome::Stored(m) => ("stored", m.room_id, m.seq),
            AppendOutcome::Duplicate(m) => ("duplicate", m.room_id, m.seq),
            AppendOutcome::NotMember => ("not member", RoomId(0), 0),
            AppendOutcome::AttachmentsRefused => ("attachments refused", RoomId(0), 0),
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("stored", rooms[0], 1),
            ("stored", rooms[1], 1),
            ("not member", RoomId(0), 0),
            ("duplicate", rooms[0], 1),
            ("stored", rooms[0], 2),
            // The same key in another room is another message.
            ("stored", rooms[1], 2),
        ]
    );
    // A later batch sees the stored key, and seqs continue.
    let again = store
        .append_messages(&[
            message(rooms[0], alice, Some("k1")),
            message(rooms[0], alice, None),
        ])
        .await
        .unwrap()
        .value;
    assert!(matches!(&again[0], AppendOutcome::Duplicate(m) if m.seq == 1));
    assert!(matches!(&again[1], AppendOutcome::Stored(m) if m.seq == 3));
}

async fn a_large_batch_over_several_rooms_keeps_every_column_intact(store: &dyn Store) {
    let (alice, mallory) = (
        user(store, "alice").await.id,
        user(store, "mallory").await.id,
    );
    let rooms = [
        room(store, alice, "AAAAAAAA").await,
        room(store, alice, "BBBBBBBB").await,
        room(store, alice, "CCCCCCCC").await,
    ];
    // Bodies with quotes, escapes and non-ASCII, and every optional column
    // both set and unset.
    let body = |n: usize| format!("n{n} \"quoted\" \\ back\nslash é 🎉 \u{1}");
    let message = |n: usize| NewMessage {
        room_id: rooms[n % 3],
        sender_id: if n == 7 { mallory } else { alice },
        body: body(n),
        client_id: (!n.is_multiple_of(4)).then(|| format!("k{}", n % 12)),
        reply_to: (n > 3).then_some(1),
        created_at: Timestamp(1_000 + n as i64),
        attachments: None,
    };
    let batch: Vec<_> = (0..40).map(message).collect();
    let committed = store.append_messages(&batch).await.unwrap();
    // Each stored message has its outbox row, holding exactly its event.
    assert_eq!(committed.outbox.len(), committed.events.len());
    for (row, event) in committed.outbox.iter().zip(&committed.events) {
        let held = palaver_domain::events::decode(row.payload.as_bytes()).unwrap();
        assert_eq!(held.as_ref(), Some(event));
    }
    let ids: Vec<i64> = committed.outbox.iter().map(|row| row.id).collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "one row each, in the events' order: {ids:?}"
    );
    let outcomes = committed.value;

    let mut expected_seq = [0u64; 3];
    let mut first_with_key = std::collections::HashMap::new();
    for (n, outcome) in outcomes.iter().enumerate() {
        let key = batch[n].client_id.clone().map(|k| (n % 3, k));
        match outcome {
            AppendOutcome::NotMember => assert_eq!(n, 7),
            AppendOutcome::AttachmentsRefused => panic!("no message lists attachments"),
            AppendOutcome::Duplicate(m) => {
                let first: &usize = &first_with_key[&key.unwrap()];
                assert_eq!(
                    m.body,
                    body(*first),
                    "a repeated key answers its first message"
                );
            }
            AppendOutcome::Stored(m) => {
                expected_seq[n % 3] += 1;
                assert_eq!((m.room_id, m.seq), (rooms[n % 3], expected_seq[n % 3]));
                if let Some(key) = key {
                    assert!(first_with_key.insert(key, n).is_none());
                }
            }
        }
    }
    // Read back: every column arrived intact.
    for (index, room) in rooms.iter().enumerate() {
        let stored = store.messages_after(*room, 0, 100).await.unwrap();
        assert_eq!(stored.len() as u64, expected_seq[index]);
        for m in &stored {
            let n = (m.created_at.0 - 1_000) as usize;
            assert_eq!(m.body, body(n));
            assert_eq!(m.client_id, batch[n].client_id);
            assert_eq!(m.reply_to, batch[n].reply_to);
            assert_eq!(m.sender_id, alice);
        }
    }
    // A second large batch finds every key of the first.
    let again = store.append_messages(&batch).await.unwrap().value;
    for (n, outcome) in again.iter().enumerate() {
        match (&batch[n].client_id, outcome) {
            (_, AppendOutcome::NotMember) => assert_eq!(n, 7),
            (Some(_), AppendOutcome::Duplicate(_)) | (None, AppendOutcome::Stored(_)) => {}
            (key, other) => panic!("message {n} (key {key:?}): {other:?}"),
        }
    }
}

/// The append begins its transaction and takes its room locks in one round
/// trip; when the lock fails after BEGIN ran, the connection must not go
/// back to the pool inside the aborted transaction (the pool has one
/// connection here, so the next append would get it).
#[tokio::test]
async fn a_postgres_append_whose_lock_times_out_leaves_its_connection_usable() {
    let url = postgres_database("lock_timeout").await;
    let options = StoreOptions {
        pool_size: 1,
        statement_timeout: std::time::Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let postgres = PostgresStore::open(url.as_str(), &options).await.unwrap();
    let store: &dyn Store = &postgres;
    let alice = user(store, "alice").await.id;
    let room_id = room(store, alice, "LOCKLOCK").await;
    let message = plain(room_id, alice);

    let mut holder = sqlx::PgConnection::connect(url.as_str()).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE")
        .bind(room_id.0)
        .execute(&mut *held)
        .await
        .unwrap();
    let blocked = store.append_messages(std::slice::from_ref(&message)).await;
    assert!(blocked.is_err(), "the room was locked: {blocked:?}");
    held.rollback().await.unwrap();

    let outcomes = store
        .append_messages(std::slice::from_ref(&message))
        .await
        .expect("the pool's one connection works again")
        .value;
    assert!(matches!(&outcomes[..], [AppendOutcome::Stored(m)] if m.seq == 1));
}

/// Messages have no foreign key to their room (PostgreSQL): a room's
/// deletion must serialize with the appends to it through the room's row
/// lock, or an append committing between its deletion of the messages and
/// of the room would leave messages behind.
#[tokio::test]
async fn a_postgres_room_deleted_while_appends_run_leaves_no_message_behind() {
    let url = postgres_database("deleted_under_appends").await;
    let postgres = PostgresStore::open(url.as_str(), &StoreOptions::default())
        .await
        .unwrap();
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(postgres);
    let alice = user(&*store, "alice").await.id;
    for round in 0..20 {
        let room_id = room(&*store, alice, &format!("DEL{round:05}")).await;
        let batch: Vec<NewMessage> = (0..20).map(|_| plain(room_id, alice)).collect();
        // Appends until the room is gone; the deletion starts once the
        // first has committed.
        let (first, first_committed) = tokio::sync::oneshot::channel();
        let appender = tokio::spawn({
            let store = store.clone();
            async move {
                let mut first = Some(first);
                loop {
                    let outcomes = store.append_messages(&batch).await.unwrap().value;
                    if let Some(first) = first.take() {
                        let _ = first.send(());
                    }
                    if outcomes
                        .iter()
                        .any(|o| matches!(o, AppendOutcome::NotMember))
                    {
                        break;
                    }
                }
            }
        });
        first_committed.await.unwrap();
        store
            .delete_room(room_id, alice, Timestamp(1))
            .await
            .unwrap()
            .unwrap();
        appender.await.unwrap();
        let mut conn = sqlx::PgConnection::connect(url.as_str()).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE room_id = $1")
            .bind(room_id.0)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "round {round}: messages outlived their room");
    }
}

/// Mentions are written in the append's transaction: members named, each
/// once, never the sender, never someone outside the room; each message's
/// `Mentioned` follows its `MessagePosted`, with an outbox row of its own.
async fn a_batch_mentions_the_members_named_once_each_and_no_one_else(store: &dyn Store) {
    use palaver_domain::events::{decode, DomainEvent};
    use palaver_domain::model::Role;
    let (alice, bob, carol) = (
        user(store, "alice").await.id,
        user(store, "bob").await.id,
        user(store, "carol").await.id,
    );
    let ours = room(store, alice, "OURSOURS").await;
    store
        .add_member(ours, bob, Role::Member, Timestamp(0))
        .await
        .unwrap();
    let theirs = room(store, carol, "THEIRSXX").await;
    let message = |room_id, sender_id, body: &str, at| NewMessage {
        body: body.into(),
        created_at: Timestamp(at),
        ..plain(room_id, sender_id)
    };
    let batch = [
        message(ours, alice, "@bob @Bob @carol @alice @nobody hi", 1),
        message(ours, alice, "no one", 2),
        message(theirs, carol, "@bob is not here", 3),
        message(ours, bob, "@ALICE. back", 4),
    ];
    let appended = store.append_messages(&batch).await.unwrap();
    let kinds: Vec<String> = (appended.events.iter())
        .map(|event| match event {
            DomainEvent::MessagePosted(m) => format!("posted {}:{}", m.room_id.0, m.seq),
            DomainEvent::Mentioned {
                room_id,
                seq,
                sender_id,
                user_ids,
            } => format!(
                "mentioned {}:{seq} by {} of {:?}",
                room_id.0,
                sender_id.0,
                user_ids.iter().map(|u| u.0).collect::<Vec<_>>()
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            format!("posted {}:1", ours.0),
            format!("mentioned {}:1 by {} of {:?}", ours.0, alice.0, [bob.0]),
            format!("posted {}:2", ours.0),
            format!("posted {}:1", theirs.0),
            format!("posted {}:3", ours.0),
            format!("mentioned {}:3 by {} of {:?}", ours.0, bob.0, [alice.0]),
        ]
    );
    // The outbox holds every event, in order, as encoded.
    assert_eq!(appended.outbox.len(), appended.events.len());
    for (row, event) in appended.outbox.iter().zip(&appended.events) {
        assert_eq!(
            decode(row.payload.as_bytes()).unwrap().as_ref(),
            Some(event)
        );
    }
    let of = |mentions: Vec<palaver_domain::store::Mention>| -> Vec<(i64, u64)> {
        (mentions.iter())
            .map(|m| (m.message.room_id.0, m.message.seq))
            .collect()
    };
    assert_eq!(
        of(store.mentions(bob, None, 10).await.unwrap()),
        [(ours.0, 1)]
    );
    assert_eq!(
        of(store.mentions(alice, None, 10).await.unwrap()),
        [(ours.0, 3)]
    );
    assert!(store.mentions(carol, None, 10).await.unwrap().is_empty());
}

/// Deleting an account removes the mentions of it; erasing its messages
/// removes the mentions they made (a deleted message mentions no one).
async fn a_deleted_account_takes_its_mentions_and_erased_messages_theirs<S>(store: &S)
where
    S: Store + palaver_store::transfer::Transfer,
{
    use palaver_domain::model::Role;
    use palaver_domain::store::AccountRemoval;
    use palaver_store::transfer::Table;
    let (alice, bob, carol) = (
        user(store, "alice").await.id,
        user(store, "bob").await.id,
        user(store, "carol").await.id,
    );
    let ours = room(store, alice, "OURSOURS").await;
    for member in [bob, carol] {
        store
            .add_member(ours, member, Role::Member, Timestamp(0))
            .await
            .unwrap();
    }
    let said = |sender, body: &str| NewMessage {
        body: body.into(),
        ..plain(ours, sender)
    };
    store
        .append_messages(&[
            said(alice, "@bob hello"),
            said(carol, "@bob @alice hi"),
            said(bob, "@carol yes"),
        ])
        .await
        .unwrap();
    assert_eq!(store.count(Table::Mentions).await.unwrap(), 4);
    let removal = |user, erase| AccountRemoval {
        user,
        erase,
        username_free_at: Timestamp(0),
        now: Timestamp(1),
    };
    // Bob's account goes, his messages stay: the mentions of him go.
    store.delete_account(removal(bob, false)).await.unwrap();
    assert_eq!(store.count(Table::Mentions).await.unwrap(), 2);
    // Carol's goes with her messages erased: the mentions she made go too.
    store.delete_account(removal(carol, true)).await.unwrap();
    assert_eq!(store.count(Table::Mentions).await.unwrap(), 0);
}
