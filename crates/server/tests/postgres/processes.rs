//! Two `palaver` processes on one PostgreSQL database.

use crate::helpers::*;
use crate::node::Node;
use palaver_client::frames::ServerFrame;
use palaver_client::types::HistoryQuery;
use palaver_client::{Client, WsAuth, WsConnection};

async fn signup(client: &Client, name: &str) -> (Client, String) {
    client.register(name, PASSWORD, None).await.unwrap();
    let tokens = client.login(name, PASSWORD).await.unwrap();
    (client.with_token(&tokens.access_token), tokens.access_token)
}

#[tokio::test]
async fn two_processes_with_concurrent_senders_allocate_gapless_seqs_and_agree_on_order() {
    const SENDERS: usize = 20;
    const PER_SENDER: usize = 10;
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();
    let nodes = [Node::start(&url, &[]).await, Node::start(&url, &[]).await];

    let (owner, owner_token) = signup(&nodes[0].client, "owner").await;
    let room = owner.create_room("contended", None).await.unwrap();
    let mut senders = Vec::new();
    for n in 0..SENDERS {
        let node = &nodes[n % 2];
        let (client, token) = signup(&node.client, &format!("sender{n}")).await;
        client.join_room(&room.code, None).await.unwrap();
        senders.push((n, node.base_url.clone(), token));
    }
    let mut watchers = Vec::new();
    for node in &nodes {
        watchers.push(
            WsConnection::connect(&node.base_url, WsAuth::Header(owner_token.clone()))
                .await
                .unwrap(),
        );
    }

    let mut tasks = Vec::new();
    for (n, base_url, token) in senders.clone() {
        tasks.push(tokio::spawn(async move {
            let mut ws = WsConnection::connect(&base_url, WsAuth::Header(token))
                .await
                .unwrap();
            for k in 0..PER_SENDER {
                ws.send(&send_frame(
                    room.id,
                    &format!("{n}:{k}"),
                    Some(&format!("c{k}")),
                ))
                .await
                .unwrap();
            }
            let mut acks = Vec::new();
            while acks.len() < PER_SENDER {
                match ws.next_frame().await.unwrap() {
                    ServerFrame::Ack { client_id, seq, .. } => acks.push((client_id.unwrap(), seq)),
                    ServerFrame::Error { code, message, .. } => panic!("{code}: {message}"),
                    _ => {}
                }
            }
            acks
        }));
    }
    let mut acks_by_sender = Vec::new();
    for task in tasks {
        acks_by_sender.push(task.await.unwrap());
    }
    let total = (SENDERS * PER_SENDER) as u64;
    let mut seqs: Vec<u64> = acks_by_sender
        .iter()
        .flatten()
        .map(|(_, seq)| *seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "no gap, no duplicate across processes"
    );

    // A retry through the other process is recognised: the unique index, not memory.
    let (n, _, token) = &senders[0];
    let other = &nodes[(n + 1) % 2];
    let retried = other
        .client
        .with_token(token)
        .post_message(room.id, "0:0", Some("c0"))
        .await
        .unwrap();
    let original = acks_by_sender[0].iter().find(|(c, _)| c == "c0").unwrap().1;
    assert_eq!(retried.seq, original);

    // One more message through each node: each watcher fills what the other
    // node committed from the store, so both see one gapless order.
    owner
        .post_message(room.id, "final via node 0", None)
        .await
        .unwrap();
    nodes[1]
        .client
        .with_token(&owner_token)
        .post_message(room.id, "final via node 1", None)
        .await
        .unwrap();
    let mut orders = Vec::new();
    for (watcher, last) in watchers.iter_mut().zip([total + 1, total + 2]) {
        let mut order = Vec::new();
        while order.last().map(|(seq, _)| *seq) != Some(last) {
            let m = next_message(watcher).await;
            order.push((m.seq, m.body));
        }
        let seqs: Vec<u64> = order.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
        orders.push(order);
    }
    assert_eq!(
        orders[0][..],
        orders[1][..(total + 1) as usize],
        "both nodes' members see the same order"
    );

    let newest = owner
        .history(
            room.id,
            &HistoryQuery {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(newest.messages[0].seq, total + 2);
}

#[tokio::test]
async fn failed_logins_on_one_node_make_the_next_attempt_wait_on_another() {
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();
    let flags = crate::node::with(
        &[crate::node::CHEAP_HASHING],
        &["--login-backoff-free=2".to_owned()],
    );
    let nodes = [
        Node::launch(&url, &flags).await,
        Node::launch(&url, &flags).await,
    ];
    nodes[0]
        .client
        .register("alice", PASSWORD, None)
        .await
        .unwrap();
    for node in &nodes {
        let failed = node.client.login("alice", "not her password").await;
        assert_eq!(status_of(failed), 401);
    }
    // Two failures, one on each node: the streak is the store's, so the
    // first node makes the next attempt wait as well as the second.
    assert_eq!(
        status_of(nodes[0].client.login("alice", PASSWORD).await),
        429
    );
    assert_eq!(
        status_of(nodes[1].client.login("alice", PASSWORD).await),
        429
    );
}
