//! Three nodes, members spread over them: everyone gets every message once, in
//! one order, and a node killed mid-traffic loses no acknowledged message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use palaver_client::frames::ServerFrame;
use palaver_client::{Client, WsAuth, WsConnection};
use tokio::sync::{mpsc, watch};

use crate::helpers::*;
use crate::node::Broker;
use crate::{signup, start_cluster_node};

const NODES: usize = 3;
const WATCHERS: usize = 6;
const SENDERS: usize = 3;
const PER_SENDER: usize = 30;

#[tokio::test]
async fn every_member_on_every_node_gets_one_gapless_order_even_when_a_node_is_killed() {
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();
    let broker = Broker::start().await;
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(start_cluster_node(&url, &broker).await);
    }
    let urls: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base_url.clone()).collect());

    let (owner, _) = signup(&nodes[0].client, "owner").await;
    let room = owner.create_room("everyone", None).await.unwrap();
    let mut people = Vec::new();
    for n in 0..WATCHERS + SENDERS {
        let home = n % NODES;
        let (client, token) = signup(&nodes[home].client, &format!("person{n}")).await;
        client.join_room(&room.code, None).await.unwrap();
        people.push((home, token));
    }

    let (last_seq, last_seq_rx) = watch::channel(0u64);
    let (connected, mut connections) = mpsc::unbounded_channel();
    let mut watchers = Vec::new();
    for (home, token) in people[..WATCHERS].iter().cloned() {
        watchers.push(tokio::spawn(watch_room(
            urls.clone(),
            home,
            token,
            room.id,
            last_seq_rx.clone(),
            connected.clone(),
        )));
    }
    // Every watcher is connected before the first send, so what they get is
    // live delivery across nodes, not a replay.
    for _ in 0..WATCHERS {
        connections.recv().await.expect("a watcher connects");
    }

    let acked = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for (sender, (home, token)) in people[WATCHERS..].iter().cloned().enumerate() {
        senders.push(tokio::spawn(send_all(
            urls.clone(),
            home,
            token,
            room.id,
            sender,
            acked.clone(),
        )));
    }
    let total = SENDERS * PER_SENDER;
    tokio::time::timeout(WAIT, async {
        while acked.load(Ordering::Relaxed) < total / 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("traffic flows");
    nodes[1].kill().await;

    let mut acks = Vec::new();
    for sender in senders {
        acks.extend(sender.await.unwrap());
    }
    let mut seqs: Vec<u64> = acks.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total as u64).collect::<Vec<_>>(),
        "every send acked once, seqs gapless across nodes"
    );

    // The killed node comes back as a new process and hears the others again.
    nodes[1] = start_cluster_node(&url, &broker).await;
    let (home, token) = people[1].clone();
    assert_eq!(home, 1);
    let returning = tokio::spawn(watch_room(
        Arc::new(vec![nodes[1].base_url.clone()]),
        0,
        token,
        room.id,
        last_seq_rx.clone(),
        connected,
    ));
    connections
        .recv()
        .await
        .expect("the returning watcher connects");
    owner
        .post_message(room.id, "final via node 0", None)
        .await
        .unwrap();
    nodes[1]
        .client
        .with_token(&people[WATCHERS + 1].1)
        .post_message(room.id, "final via the restarted node", None)
        .await
        .unwrap();
    let last = total as u64 + 2;
    last_seq.send(last).unwrap();

    let mut seen = Vec::new();
    for watcher in watchers.into_iter().chain([returning]) {
        seen.push(watcher.await.unwrap());
    }
    for other in &seen[1..] {
        assert_eq!(
            other, &seen[0],
            "every member saw the same messages in the same order"
        );
    }
    for (seq, body) in &acks {
        assert_eq!(
            &seen[0][*seq as usize - 1],
            &(*seq, body.clone()),
            "acked message kept"
        );
    }
}

/// Follows the room from `urls[home]`; when that node dies, reconnects to the
/// next one and resumes after the last seq seen. Fails on any gap or
/// duplicate; returns `(seq, body)` for 1..=`last_seq`. Says on `connected`
/// each time it has a connection (its `ready` received).
async fn watch_room(
    urls: Arc<Vec<String>>,
    home: usize,
    token: String,
    room: i64,
    last_seq: watch::Receiver<u64>,
    connected: mpsc::UnboundedSender<()>,
) -> Vec<(u64, String)> {
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut node = home;
    let deadline = tokio::time::Instant::now() + WAIT * 6;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "watcher {home} timed out at {}",
            seen.len()
        );
        let resume = BTreeMap::from([(room.to_string(), seen.len() as u64)]);
        let auth = WsAuth::Frame {
            token: token.clone(),
            resume: Some(resume),
        };
        let Ok(mut ws) = WsConnection::connect(&urls[node], auth).await else {
            node = (node + 1) % urls.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = connected.send(());
        loop {
            let target = *last_seq.borrow();
            if target > 0 && seen.len() as u64 >= target {
                return seen;
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            match ws.next_frame_within(Duration::from_millis(100)).await {
                Ok(Some(ServerFrame::Message { seq, body, .. })) => {
                    assert_eq!(
                        seq,
                        seen.len() as u64 + 1,
                        "watcher {home}: gap or duplicate after {}",
                        seen.len()
                    );
                    seen.push((seq, body));
                }
                Ok(_) => {}
                // The node went away: carry on from another one.
                Err(_) => {
                    node = (node + 1) % urls.len();
                    break;
                }
            }
        }
    }
}

/// Posts `PER_SENDER` messages through `urls[home]`, moving to the next node
/// (same `client_id`, so a commit whose answer was lost is not repeated) when
/// a node stops answering. Returns `(seq, body)` of every ack.
async fn send_all(
    urls: Arc<Vec<String>>,
    home: usize,
    token: String,
    room: i64,
    sender: usize,
    acked: Arc<AtomicUsize>,
) -> Vec<(u64, String)> {
    let mut acks = Vec::new();
    let mut node = home;
    for k in 0..PER_SENDER {
        let body = format!("sender {sender} #{k}");
        let client_id = format!("s{sender}-{k}");
        let mut attempts = 0;
        let seq = loop {
            let client = Client::new(&urls[node]).with_token(&token);
            match client.post_message(room, &body, Some(&client_id)).await {
                Ok(message) => break message.seq,
                Err(err) => {
                    attempts += 1;
                    assert!(attempts < 50, "sender {sender} gave up: {err}");
                    node = (node + 1) % urls.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        acks.push((seq, body));
        acked.fetch_add(1, Ordering::Relaxed);
        // Spread the traffic out so the kill lands in the middle of it.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acks
}
