//! `palaver db backup` of a node that is taking messages, and `palaver db
//! restore` into a new store that a second node then serves. Both run as the
//! operator runs them, as processes beside the node, on the store this run
//! tests: SQLite (`VACUUM INTO` of the live file) or, with
//! `PALAVER_TEST_STORE=postgres`, PostgreSQL (one snapshot transaction); the
//! backup is restored into a new store of the same engine.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use palaver_client::frames::ServerFrame;
use palaver_client::types::search::SearchQuery;
use palaver_client::types::HistoryQuery;
use palaver_client::{Client, WsAuth, WsConnection};
use tokio::sync::watch;

use crate::helpers::*;

/// Runs the `palaver` binary with `args` and none of this process's
/// `PALAVER_*` variables.
async fn palaver(args: &[OsString]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_palaver"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PALAVER_") {
            command.env_remove(name);
        }
    }
    command.args(args).output().await.expect("palaver runs")
}

fn args(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|part| part.as_ref().to_owned()).collect()
}

/// The flags naming a node's store: its PostgreSQL database, or its data
/// directory (and so its SQLite file).
fn store_flags(database_url: &Option<String>, data_dir: &Path) -> Vec<OsString> {
    match database_url {
        Some(url) => args(&[&"--database-url", url]),
        None => args(&[&"--data-dir", &data_dir]),
    }
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A WebSocket client that keeps `WINDOW` messages in flight until stopped,
/// and records each acknowledged one as `(seq, body)`.
struct Sending {
    acked: Arc<Mutex<Vec<(u64, String)>>>,
    /// How many are in `acked`.
    count: watch::Receiver<usize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

const WINDOW: usize = 8;

impl Sending {
    fn start(mut ws: WsConnection, room: i64) -> Self {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (counted, count) = watch::channel(0);
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (acked, stop) = (acked.clone(), stop.clone());
            async move {
                let mut bodies = BTreeMap::new();
                let mut sent = 0;
                loop {
                    while bodies.len() < WINDOW && !stop.load(Ordering::Relaxed) {
                        sent += 1;
                        let (client_id, body) = (format!("c{sent}"), format!("m{sent}"));
                        ws.send(&send_frame(room, &body, Some(&client_id)))
                            .await
                            .expect("send");
                        bodies.insert(client_id, body);
                    }
                    if bodies.is_empty() {
                        return;
                    }
                    let (client_id, seq) = next_ack(&mut ws).await;
                    let body = bodies.remove(&client_id.expect("a client_id")).unwrap();
                    let mut acked = acked.lock().unwrap();
                    acked.push((seq, body));
                    counted.send_replace(acked.len());
                }
            }
        });
        Self {
            acked,
            count,
            stop,
            task,
        }
    }

    fn acked(&self) -> Vec<(u64, String)> {
        self.acked.lock().unwrap().clone()
    }

    async fn until(&mut self, count: usize) {
        tokio::time::timeout(WAIT, self.count.wait_for(|acked| *acked >= count))
            .await
            .expect("messages are acknowledged")
            .unwrap();
    }

    /// Stops sending, waits for the messages in flight, returns every ack.
    async fn stop(self) -> Vec<(u64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// Every message of `room` from `client`'s node, by REST, `(seq, body)` in order.
async fn history(client: &Client, room: i64) -> Vec<(u64, String)> {
    let mut all = Vec::new();
    loop {
        let query = HistoryQuery {
            after: Some(all.last().map_or(0, |(seq, _)| *seq)),
            limit: Some(200),
            ..Default::default()
        };
        let page = client.history(room, &query).await.unwrap();
        if page.messages.is_empty() {
            return all;
        }
        all.extend(page.messages.into_iter().map(|m| (m.seq, m.body)));
    }
}

#[tokio::test]
async fn a_backup_during_sends_holds_every_acked_message_and_its_restore_serves_clients() {
    let database = TestDatabase::fresh().await;
    let url = database.url.clone();
    let mut app = spawn_app_on(database, |_| {}).await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("general", None).await.unwrap();
    let mut sending = Sending::start(alice.connect().await, room.id);
    sending.until(30).await;
    // Reactions travel with their messages.
    for emoji in ["👍", ":tada:"] {
        alice.client.react(room.id, 1, emoji).await.unwrap();
    }

    // With messages in flight, back up from another process.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("backup.db");
    let before = sending.acked();
    let mut command = args(&[&"db", &"backup", &"--to", &file]);
    command.extend(store_flags(&url, app.data_dir()));
    let output = palaver(&command).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("signing_keys"), "{report}");
    assert!(report.contains("reactions"), "{report}");
    // The node went on taking messages.
    let after = sending.acked().len();
    sending.until(after + 10).await;
    let all: BTreeMap<u64, String> = sending.stop().await.into_iter().collect();
    app.shutdown().await;

    // Restored into a new store of the same engine, then served by a new node.
    let restored = TestDatabase::fresh().await;
    let restored_url = restored.url.clone();
    let restored_dir = tempfile::tempdir().unwrap();
    let mut command = args(&[&"db", &"restore", &"--from", &file]);
    command.extend(store_flags(&restored_url, restored_dir.path()));
    let output = palaver(&command).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("restored and verified"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let node = spawn_app_on(restored, |settings| {
        settings.data_dir = restored_dir.path().to_owned();
    })
    .await;

    // (1) The backup is one instant of the room: messages 1..=k, each as
    // acknowledged, and every one acknowledged before the backup began.
    let alice_again = node.signup_existing("alice").await;
    let held = history(&alice_again.client, room.id).await;
    let k = held.len() as u64;
    let seqs: Vec<u64> = held.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=k).collect::<Vec<_>>());
    for (seq, body) in &held {
        assert_eq!(all.get(seq), Some(body), "seq {seq} as acknowledged");
    }
    let first = alice_again
        .client
        .history(
            room.id,
            &HistoryQuery {
                after: Some(0),
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let reactions: Vec<(String, u32, bool)> = (first.messages[0].reactions.iter())
        .map(|r| (r.emoji.clone(), r.count, r.me))
        .collect();
    assert_eq!(
        reactions,
        [("👍".into(), 1, true), (":tada:".into(), 1, true)]
    );
    // The restored messages are found by search (the index is rebuilt
    // from them), each once.
    let word = &held[0].1;
    let found = (alice_again.client)
        .search(&SearchQuery {
            q: word.clone(),
            ..SearchQuery::default()
        })
        .await
        .unwrap();
    let found: Vec<(i64, u64)> = (found.results.iter())
        .map(|result| (result.message.room_id, result.message.seq))
        .collect();
    assert_eq!(found, [(room.id, 1)], "searching for {word:?}");
    for (seq, body) in &before {
        assert!(
            *seq <= k,
            "{body} (seq {seq}) was acknowledged before the backup began but is not in it (it ends at {k})"
        );
    }

    // (2) The old access token still verifies (the keys came along); a
    // client resuming from an earlier seq gets exactly the messages after
    // it that the backup holds, then sends the next one.
    let resume_from = before[before.len() / 2].0;
    let mut ws = WsConnection::connect(
        &node.base_url,
        WsAuth::Frame {
            token: alice.access_token.clone(),
            resume: Some(BTreeMap::from([(room.id.to_string(), resume_from)])),
        },
    )
    .await
    .expect("the old access token is accepted");
    let Some(ServerFrame::Ready { rooms, .. }) = &ws.ready else {
        panic!("no ready")
    };
    assert_eq!(rooms[0].last_seq, k);
    for expected in &held[resume_from as usize..] {
        let message = next_message(&mut ws).await;
        assert_eq!((message.seq, message.body), expected.clone());
    }
    assert_no_message(&mut ws).await;
    ws.send(&send_frame(room.id, "after the restore", Some("new")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut ws).await, (Some("new".into()), k + 1));
}

#[tokio::test]
async fn db_backup_refuses_an_existing_file_and_db_restore_a_store_with_data() {
    let database = TestDatabase::fresh().await;
    let url = database.url.clone();
    let app = spawn_app_on(database, |_| {}).await;
    let alice = app.signup("alice").await;
    let node_store = store_flags(&url, app.data_dir());
    let work = tempfile::tempdir().unwrap();

    let existing = work.path().join("existing.db");
    std::fs::write(&existing, "precious").unwrap();
    let mut command = args(&[&"db", &"backup", &"--to", &existing]);
    command.extend(node_store.clone());
    let output = palaver(&command).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("exists"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");

    let file = work.path().join("backup.db");
    let mut command = args(&[&"db", &"backup", &"--to", &file]);
    command.extend(node_store.clone());
    let output = palaver(&command).await;
    assert!(output.status.success(), "{}", stderr(&output));

    // Into the node's own, populated store: refused, nothing changed.
    let mut command = args(&[&"db", &"restore", &"--from", &file]);
    command.extend(node_store.clone());
    let output = palaver(&command).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("not empty"), "{}", stderr(&output));
    alice
        .client
        .rooms()
        .await
        .expect("the node serves as before");
    app.signup_existing("alice").await;

    // From a file that is no backup: refused, saying why.
    let empty = TestDatabase::fresh().await;
    let empty_dir = tempfile::tempdir().unwrap();
    let mut command = args(&[&"db", &"restore", &"--from", &existing]);
    command.extend(store_flags(&empty.url, empty_dir.path()));
    let output = palaver(&command).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not a SQLite database"),
        "{}",
        stderr(&output)
    );
}
