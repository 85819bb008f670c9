//! Sequencing, idempotency, history and limits.

use std::collections::HashSet;

use palaver_client::frames::ServerFrame;
use palaver_client::types::HistoryQuery;

use crate::helpers::*;

#[tokio::test]
async fn resending_a_client_id_stores_nothing_new_and_returns_the_original_seq() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;

    alice_ws
        .send(&send_frame(room.id, "once", Some("retry-me")))
        .await
        .unwrap();
    let (_, first) = next_ack(&mut alice_ws).await;
    assert_eq!(next_message(&mut bob_ws).await.seq, first);

    alice_ws
        .send(&send_frame(room.id, "once", Some("retry-me")))
        .await
        .unwrap();
    let (client_id, second) = next_ack(&mut alice_ws).await;
    assert_eq!((client_id.as_deref(), second), (Some("retry-me"), first));
    assert_no_message(&mut bob_ws).await;

    // Over REST too: 200 with the original instead of 201.
    let again = alice
        .client
        .post_message(room.id, "once", Some("retry-me"))
        .await
        .unwrap();
    assert_eq!(again.seq, first);
    let page = alice
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);

    // Another sender's identical client_id is their own message.
    let bobs = bob
        .client
        .post_message(room.id, "mine", Some("retry-me"))
        .await
        .unwrap();
    assert_eq!(bobs.seq, first + 1);
}

#[tokio::test]
async fn history_pages_back_and_catches_up_forward_in_ascending_order() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("log", None).await.unwrap();
    for n in 1..=7 {
        alice
            .client
            .post_message(room.id, &format!("m{n}"), None)
            .await
            .unwrap();
    }
    let seqs = |page: &palaver_client::types::MessagePage| {
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>()
    };

    let newest = alice
        .client
        .history(
            room.id,
            &HistoryQuery {
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((seqs(&newest), newest.has_more), (vec![5, 6, 7], true));
    let older = alice
        .client
        .history(
            room.id,
            &HistoryQuery {
                before: Some(5),
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((seqs(&older), older.has_more), (vec![2, 3, 4], true));
    let oldest = alice
        .client
        .history(
            room.id,
            &HistoryQuery {
                before: Some(2),
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((seqs(&oldest), oldest.has_more), (vec![1], false));

    let forward = alice
        .client
        .history(
            room.id,
            &HistoryQuery {
                after: Some(4),
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((seqs(&forward), forward.has_more), (vec![5, 6], true));
    assert_eq!(forward.messages[0].body, "m5");
    let rest = alice
        .client
        .history(
            room.id,
            &HistoryQuery {
                after: Some(6),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((seqs(&rest), rest.has_more), (vec![7], false));

    // Both bounds: what lies strictly between, oldest first, paged forward.
    let between = |after, before, limit| HistoryQuery {
        after: Some(after),
        before: Some(before),
        limit: Some(limit),
    };
    let page = alice
        .client
        .history(room.id, &between(2, 6, 2))
        .await
        .unwrap();
    assert_eq!((seqs(&page), page.has_more), (vec![3, 4], true));
    let page = alice
        .client
        .history(room.id, &between(4, 6, 2))
        .await
        .unwrap();
    assert_eq!((seqs(&page), page.has_more), (vec![5], false));
    let page = alice
        .client
        .history(room.id, &between(5, 5, 2))
        .await
        .unwrap();
    assert_eq!((seqs(&page), page.has_more), (vec![], false));
}

#[tokio::test]
async fn history_rejects_bad_limits() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("log", None).await.unwrap();
    for query in [
        HistoryQuery {
            limit: Some(0),
            ..Default::default()
        },
        HistoryQuery {
            limit: Some(201),
            ..Default::default()
        },
    ] {
        let err = alice.client.history(room.id, &query).await.unwrap_err();
        assert_eq!(err.status(), Some(422), "{query:?}");
    }
    let err = alice
        .client
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/rooms/{}/messages?limit=lots", room.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(err.status(), 400);
}

#[tokio::test]
async fn oversize_and_empty_bodies_are_refused_and_nothing_is_stored() {
    let app = spawn_app_with(|s| s.messages.max_body_bytes = 100).await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    let mut ws = alice.connect().await;

    ws.send(&send_frame(room.id, &"x".repeat(101), Some("big")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        ("invalid_input".into(), Some("big".into()))
    );
    ws.send(&send_frame(room.id, "", Some("empty")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        ("invalid_input".into(), Some("empty".into()))
    );
    // The connection is still usable, and the limit is inclusive.
    ws.send(&send_frame(room.id, &"x".repeat(100), Some("fits")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut ws).await, (Some("fits".into()), 1));

    let err = alice
        .client
        .post_message(room.id, &"y".repeat(101), None)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("invalid_input"))
    );
}

#[tokio::test]
async fn fifty_concurrent_senders_get_gapless_seqs_and_every_connection_sees_one_order() {
    const SENDERS: usize = 50;
    const PER_SENDER: usize = 4;
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let room = owner.client.create_room("busy", None).await.unwrap();
    let mut senders = Vec::new();
    for n in 0..SENDERS {
        let user = app.signup(&format!("sender{n}")).await;
        user.client.join_room(&room.code, None).await.unwrap();
        senders.push(user);
    }
    let mut watchers = vec![
        owner.connect().await,
        owner.connect().await,
        senders[0].connect().await,
    ];

    let mut tasks = Vec::new();
    for (n, user) in senders.iter().enumerate() {
        let mut ws = user.connect().await;
        let room_id = room.id;
        tasks.push(tokio::spawn(async move {
            for k in 0..PER_SENDER {
                ws.send(&send_frame(
                    room_id,
                    &format!("{n}:{k}"),
                    Some(&format!("c{k}")),
                ))
                .await
                .unwrap();
            }
            let mut seqs = Vec::new();
            while seqs.len() < PER_SENDER {
                if let ServerFrame::Ack { seq, .. } = ws.next_frame().await.unwrap() {
                    seqs.push(seq);
                }
            }
            seqs
        }));
    }
    let mut acked: Vec<u64> = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    let total = SENDERS * PER_SENDER;
    acked.sort_unstable();
    assert_eq!(
        acked,
        (1..=total as u64).collect::<Vec<_>>(),
        "acked seqs are 1..N without gap"
    );

    let mut orders = Vec::new();
    for ws in &mut watchers {
        let mut order = Vec::new();
        while order.len() < total {
            let m = next_message(ws).await;
            order.push((m.seq, m.body));
        }
        orders.push(order);
    }
    let seqs: Vec<u64> = orders[0].iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=total as u64).collect::<Vec<_>>(),
        "delivered in seq order"
    );
    let bodies: HashSet<_> = orders[0].iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(bodies.len(), total, "every message exactly once");
    assert!(
        orders.iter().all(|o| *o == orders[0]),
        "every connection sees the same order"
    );
}

#[tokio::test]
async fn a_frame_larger_than_the_servers_read_buffer_arrives_whole() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;

    // The read buffer is 1 KiB; a maximal 4 KiB body must still be read whole.
    let body: String = (0..4096)
        .map(|n| char::from(b'a' + (n % 26) as u8))
        .collect();
    alice_ws
        .send(&send_frame(room.id, &body, Some("big")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut alice_ws).await, (Some("big".into()), 1));
    assert_eq!(next_message(&mut bob_ws).await.body, body);
}
