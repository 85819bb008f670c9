//! `palaver db copy`: moving a populated installation from SQLite to PostgreSQL.

use palaver_client::types::HistoryQuery;
use palaver_server::config::Secret;
use palaver_store::transfer::{Cursor, Table, Transfer};
use palaver_store::{ManagedStore, StoreOptions};

use crate::helpers::*;

async fn palaver_copy(from: &str, to: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_palaver"))
        .args(["db", "copy", "--from", from, "--to", to])
        .output()
        .await
        .expect("palaver runs")
}

async fn open(url: &str) -> std::sync::Arc<dyn ManagedStore> {
    palaver_store::open(url, &StoreOptions::default())
        .await
        .unwrap()
}

/// Every row of every table, in key order.
async fn dump(store: &dyn Transfer) -> Vec<palaver_store::transfer::Rows> {
    let mut all = Vec::new();
    for table in Table::ALL {
        all.push(
            store
                .read_rows(table, &Cursor::default(), i64::MAX)
                .await
                .unwrap(),
        );
    }
    all
}

#[tokio::test]
async fn copying_sqlite_to_postgres_and_back_preserves_every_row_and_the_result_works() {
    // A populated embedded installation.
    let mut source_app = spawn_app_on(TestDatabase::sqlite(), |_| {}).await;
    let alice = source_app.signup("alice").await;
    let bob = source_app.signup("bob").await;
    let carol = source_app.signup("carol").await;
    let open_room = source_app.room_with(&alice, &[&bob, &carol]).await;
    let locked = bob.client.create_room("locked", Some("pw")).await.unwrap();
    alice
        .client
        .join_room(&locked.code, Some("pw"))
        .await
        .unwrap();
    for n in 0..30 {
        let author = [&alice, &bob, &carol][n % 3];
        author
            .client
            .post_message(open_room.id, &format!("m{n}"), Some(&format!("k{n}")))
            .await
            .unwrap();
    }
    bob.client
        .post_message(locked.id, "quiet, @alice", None)
        .await
        .unwrap();
    // Every kind of column: a reply, an edit, a deletion, read markers.
    bob.client
        .post_reply(open_room.id, "re: m0", None, Some(1))
        .await
        .unwrap();
    alice
        .client
        .edit_message(open_room.id, 1, "m0, edited")
        .await
        .unwrap();
    carol.client.delete_message(open_room.id, 3).await.unwrap();
    bob.client.mark_read(open_room.id, 20).await.unwrap();
    bob.client.ban(locked.id, carol.id()).await.unwrap();
    let carol_refresh = source_app
        .client
        .refresh(&carol.refresh_token)
        .await
        .unwrap()
        .refresh_token;
    // A deleted account: a tombstone, with its username held back.
    let erin = source_app.signup("erin").await;
    erin.client.delete_account(PASSWORD, false).await.unwrap();
    // Server administration: an admin, a report resolved and one open, a
    // suspension, and the audit log of it all.
    source_app.grant_admin("alice").await;
    bob.client
        .report_message(open_room.id, 2, "rude")
        .await
        .unwrap();
    carol
        .client
        .report_message(open_room.id, 5, "spam")
        .await
        .unwrap();
    let open_reports = alice.client.reports("open", None, None).await.unwrap();
    let spam = (open_reports.reports.iter())
        .find(|r| r.reason == "spam")
        .unwrap();
    alice
        .client
        .resolve_report(spam.id, "dismiss", Some("fine"), None)
        .await
        .unwrap();
    alice
        .client
        .suspend_user(bob.id(), "cool down", None)
        .await
        .unwrap();
    source_app.shutdown().await;
    let sqlite_url = format!(
        "sqlite://{}",
        source_app.data_dir().join("palaver.db").display()
    );

    // SQLite → PostgreSQL, verified by the command itself.
    let postgres = TestDatabase::postgres().await;
    let pg_url = postgres.url.clone().unwrap();
    let output = palaver_copy(&sqlite_url, &pg_url).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("messages") && report.contains("32 rows") && report.contains("bans"),
        "{report}"
    );
    // A second copy into the now populated target is refused.
    let again = palaver_copy(&sqlite_url, &pg_url).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // PostgreSQL → a new SQLite file: the round trip is row-for-row identical.
    let back_dir = tempfile::tempdir().unwrap();
    let back_url = format!("sqlite://{}", back_dir.path().join("back.db").display());
    let output = palaver_copy(&pg_url, &back_url).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (original, round_trip) = (open(&sqlite_url).await, open(&back_url).await);
    assert_eq!(
        dump(original.as_ref()).await,
        dump(round_trip.as_ref()).await
    );
    original.close().await;
    round_trip.close().await;

    // The copied installation serves the same data and keeps going.
    let target_app = spawn_app_on(postgres, |s| {
        s.database.url = Some(Secret::new(pg_url.clone().into_bytes()));
    })
    .await;
    let alice = target_app.signup_existing("alice").await;
    assert!(alice.client.user(erin.id()).await.unwrap().deleted);
    // Mentions came along.
    let mentions = alice.client.mentions(&Default::default()).await.unwrap();
    assert_eq!(mentions.mentions.len(), 1, "{mentions:?}");
    assert_eq!(mentions.mentions[0].message.body, "quiet, @alice");
    assert_eq!(
        status_of(target_app.client.register("erin", PASSWORD, None).await),
        409,
        "the username is still held back"
    );
    let rooms = alice.client.rooms().await.unwrap();
    let positions: Vec<_> = rooms
        .iter()
        .map(|r| (r.room.name.as_str(), r.last_seq))
        .collect();
    assert_eq!(positions, [("general", 31), ("locked", 1)]);
    let page = alice
        .client
        .history(
            open_room.id,
            &HistoryQuery {
                limit: Some(200),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 31);
    assert_eq!(page.messages[29].body, "m29");
    assert_eq!(page.messages[0].body, "m0, edited");
    assert!(page.messages[2].deleted);
    assert_eq!(page.messages[30].reply_to, Some(1));
    // Idempotency keys came along; new messages continue the sequence.
    let retry = alice
        .client
        .post_message(open_room.id, "m0", Some("k0"))
        .await
        .unwrap();
    assert_eq!(retry.seq, 1);
    let next = alice
        .client
        .post_message(open_room.id, "after the move", None)
        .await
        .unwrap();
    assert_eq!(next.seq, 32);
    // Refresh tokens still rotate; ids keep growing past the copied ones.
    target_app.client.refresh(&carol_refresh).await.unwrap();
    let dave = target_app
        .client
        .register("dave", PASSWORD, None)
        .await
        .unwrap();
    assert_eq!(dave.id, 5, "after erin's tombstone");
    let room = alice.client.create_room("new", None).await.unwrap();
    assert_eq!(room.id, 3);
    // Admins, reports and the audit log came along; its ids keep growing.
    assert_eq!(
        alice
            .client
            .reports("open", None, None)
            .await
            .unwrap()
            .reports
            .len(),
        1
    );
    let lifted = alice.client.unsuspend_user(bob.id(), None).await.unwrap();
    assert_eq!(
        lifted.id, 4,
        "after the grant, the resolution and the suspension"
    );
}
