//! The embedded node killed with SIGKILL while messages stream in: after a
//! restart on the same SQLite file, every acknowledged message is there once,
//! under the seq its ack gave, and resending what was never acknowledged
//! (under the same `client_id`) stores nothing twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use palaver_client::frames::ServerFrame;
use palaver_client::types::{HistoryQuery, Message};
use palaver_client::{Client, WsAuth, WsConnection};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::helpers::{send_frame, PASSWORD, WAIT};
use crate::node::Node;

const SENDERS: usize = 4;
/// Acks to wait for before the kill: the node is busy, not starting.
const ACKED_BEFORE_KILL: usize = 200;

#[derive(Default)]
struct Ledger {
    sent: BTreeSet<String>,
    acked: BTreeMap<String, u64>,
}

#[tokio::test]
async fn a_node_killed_mid_traffic_keeps_every_acknowledged_message_once_under_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("palaver.db").display());
    let mut node = Node::start(&url, &[]).await;
    node.client.register("alice", PASSWORD, None).await.unwrap();
    let token = node
        .client
        .login("alice", PASSWORD)
        .await
        .unwrap()
        .access_token;
    let alice = node.client.with_token(&token);
    let room = alice.create_room("crash", None).await.unwrap().id;

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (acks, mut acked_count) = watch::channel(0usize);
    let acks = Arc::new(acks);
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let mut ws = WsConnection::connect(&node.base_url, WsAuth::Header(token.clone()))
            .await
            .unwrap();
        let (ledger, acks) = (ledger.clone(), acks.clone());
        senders.push(tokio::spawn(async move {
            // One send in flight per connection until the node is gone.
            for n in 0.. {
                let client_id = format!("s{sender}-{n}");
                ledger.lock().sent.insert(client_id.clone());
                let frame = send_frame(room, &format!("body of {client_id}"), Some(&client_id));
                if ws.send(&frame).await.is_err() {
                    return;
                }
                loop {
                    match ws.next_frame().await {
                        Ok(ServerFrame::Ack {
                            client_id: Some(id),
                            seq,
                            ..
                        }) if id == client_id => {
                            let mut ledger = ledger.lock();
                            ledger.acked.insert(id, seq);
                            acks.send_replace(ledger.acked.len());
                            break;
                        }
                        Ok(ServerFrame::Error { code, message, .. }) => {
                            panic!("{code}: {message}")
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            }
        }));
    }
    tokio::time::timeout(WAIT, acked_count.wait_for(|n| *n >= ACKED_BEFORE_KILL))
        .await
        .expect("messages are acknowledged")
        .unwrap();
    node.kill().await;
    for sender in senders {
        sender.await.unwrap();
    }

    let node = Node::start(&url, &[]).await;
    let alice = node.client.with_token(&token);
    let (sent, acked) = {
        let ledger = ledger.lock();
        (ledger.sent.clone(), ledger.acked.clone())
    };
    let stored = all_messages(&alice, room).await;
    assert_gapless_and_once(&stored);
    let by_client_id: BTreeMap<&str, u64> = stored
        .iter()
        .map(|m| (m.client_id.as_deref().unwrap(), m.seq))
        .collect();
    for (client_id, seq) in &acked {
        assert_eq!(
            by_client_id.get(client_id.as_str()),
            Some(seq),
            "acknowledged {client_id} lost or moved"
        );
    }

    // What the senders never heard back about, sent again as a client would.
    let unacknowledged: Vec<&String> = sent.iter().filter(|id| !acked.contains_key(*id)).collect();
    assert!(unacknowledged.len() <= SENDERS);
    for client_id in &unacknowledged {
        let body = format!("body of {client_id}");
        alice
            .post_message(room, &body, Some(client_id.as_str()))
            .await
            .unwrap();
    }
    let after_retries = all_messages(&alice, room).await;
    assert_gapless_and_once(&after_retries);
    assert_eq!(
        after_retries.len(),
        sent.len(),
        "one message per client_id sent"
    );
    assert!(after_retries.len() >= ACKED_BEFORE_KILL);
}

/// The whole history of `room`, oldest first.
async fn all_messages(client: &Client, room: i64) -> Vec<Message> {
    let mut all: Vec<Message> = Vec::new();
    loop {
        let query = HistoryQuery {
            after: Some(all.last().map_or(0, |m| m.seq)),
            limit: Some(200),
            ..Default::default()
        };
        let page = client.history(room, &query).await.unwrap();
        all.extend(page.messages);
        if !page.has_more {
            return all;
        }
    }
}

fn assert_gapless_and_once(messages: &[Message]) {
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    let expected: Vec<u64> = (1..=messages.len() as u64).collect();
    assert_eq!(seqs, expected, "seqs with a gap");
    let ids: BTreeSet<&str> = messages
        .iter()
        .map(|m| {
            m.client_id
                .as_deref()
                .expect("every message has its client_id")
        })
        .collect();
    assert_eq!(ids.len(), messages.len(), "a client_id stored twice");
}
