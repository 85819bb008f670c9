//! Stock client libraries of other ecosystems against a live node: each runs
//! its protocol's journey (`tests/clients/*.mjs`, pinned by that directory's
//! lockfile and installed by `scripts/client-libs`), and the node's own
//! history must agree with what it saw.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use palaver_client::types::HistoryQuery;

use crate::helpers::*;

/// `tests/clients` of the repository, with its libraries installed.
fn clients_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
    assert!(
        dir.join("node_modules").is_dir(),
        "the client libraries are not installed: run scripts/client-libs (scripts/test does)"
    );
    dir
}

/// Runs `script` with Node.js and `env`; its last stdout line, parsed.
async fn run_node(script: &str, env: &[(&str, String)]) -> serde_json::Value {
    run_script("node".into(), script, env).await
}

/// Runs `script` with the Python of `scripts/client-libs`' virtual
/// environment (where stomp.py is installed) and `env`.
async fn run_python(script: &str, env: &[(&str, String)]) -> serde_json::Value {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/client-libs-venv/bin/python");
    assert!(
        python.is_file(),
        "the Python client libraries are not installed: run scripts/client-libs"
    );
    run_script(python, script, env).await
}

/// Runs `script` with `program` and `env`; its last stdout line, parsed.
async fn run_script(program: PathBuf, script: &str, env: &[(&str, String)]) -> serde_json::Value {
    let dir = clients_dir();
    let mut command = tokio::process::Command::new(program);
    command
        .arg(dir.join(script))
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish in time"))
        .unwrap_or_else(|e| panic!("node could not run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script} printed {last:?}: {e}"))
}

#[tokio::test]
async fn socket_io_client_does_the_whole_journey() {
    journey(Runner::Node, "socketio.mjs", "hello over socket.io").await;
}

#[tokio::test]
async fn signalr_client_does_the_whole_journey() {
    journey(Runner::Node, "signalr.mjs", "hello over signalr").await;
}

/// A `send` without a `client_id` is given one by the transport: one that
/// no other connection gives, or a later connection's first such send would
/// be taken for a resend of an earlier one's and silently not stored.
#[tokio::test]
async fn socket_io_sends_without_client_id_from_two_connections_are_both_stored() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("fresh ids", None).await.unwrap();

    let seen = run_node(
        "socketio_fresh_ids.mjs",
        &[
            ("PALAVER_URL", app.base_url.clone()),
            ("TOKEN", alice.access_token.clone()),
            ("ROOM", room.id.to_string()),
        ],
    )
    .await;

    let seq = |key: &str| seen[key].as_u64().unwrap();
    assert_ne!(seq("first"), seq("second"));
    assert_eq!(
        stored_history(&alice, room.id).await,
        vec![
            (seq("first"), "from the first connection".to_owned()),
            (seq("second"), "from the second connection".to_owned()),
        ]
    );
}

/// The seqs and bodies of `room`'s stored history, as `who` reads it over REST.
async fn stored_history(who: &TestUser, room: i64) -> Vec<(u64, String)> {
    let history = who
        .client
        .history(
            room,
            &HistoryQuery {
                after: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    history
        .messages
        .into_iter()
        .map(|m| (m.seq, m.body))
        .collect()
}

#[tokio::test]
async fn stompjs_client_does_the_whole_journey() {
    journey(Runner::Node, "stomp.mjs", "hello over stomp").await;
}

#[tokio::test]
async fn stomp_py_does_the_whole_journey() {
    journey(Runner::Python, "stomp_py.py", "hello over stomp.py").await;
}

enum Runner {
    Node,
    Python,
}

/// Runs a protocol's journey script (connect, send, another member receives,
/// resend, a foreign room, typing, resume): Alice and Bob share a room,
/// Carol has one of her own. What the client was acknowledged is what the
/// node stored, once each: REST history must agree with what it saw.
async fn journey(runner: Runner, script: &str, first_body: &str) {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = alice.client.create_room("shared", None).await.unwrap();
    bob.client.join_room(&room.code, None).await.unwrap();
    let foreign = carol.client.create_room("carol's", None).await.unwrap();

    let env = [
        ("PALAVER_URL", app.base_url.clone()),
        ("ALICE_TOKEN", alice.access_token.clone()),
        ("BOB_TOKEN", bob.access_token.clone()),
        ("ALICE_ID", alice.id().to_string()),
        ("ROOM", room.id.to_string()),
        ("FOREIGN_ROOM", foreign.id.to_string()),
    ];
    let seen = match runner {
        Runner::Node => run_node(script, &env).await,
        Runner::Python => run_python(script, &env).await,
    };

    let seq = |key: &str| seen[key].as_u64().unwrap();
    let missed: Vec<u64> = seen["missed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(
        stored_history(&bob, room.id).await,
        vec![
            (seq("first"), first_body.to_owned()),
            (missed[0], "missed 1".to_owned()),
            (missed[1], "missed 2".to_owned()),
            (seq("after"), "live again".to_owned()),
        ]
    );
}
