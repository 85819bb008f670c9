//! The WebSocket protocol: authentication, errors, resume, limits.

use std::collections::BTreeMap;

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::types::HistoryQuery;
use palaver_client::{ClientError, WsAuth};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

#[tokio::test]
async fn every_documented_way_to_authenticate_works() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    let token = alice.access_token.clone();

    for auth in [
        WsAuth::Header(token.clone()),
        WsAuth::Query(token.clone()),
        WsAuth::Frame {
            token: token.clone(),
            resume: None,
        },
    ] {
        let ws = app
            .connect_raw(auth.clone())
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e}"));
        let Some(ServerFrame::Ready { user, rooms, .. }) = ws.ready else {
            panic!("no ready")
        };
        assert_eq!(user.id, alice.id());
        assert_eq!(rooms.len(), 1);
        assert_eq!((rooms[0].id, rooms[0].last_seq), (room.id, 0));
    }

    // A bare token string as the first frame.
    let mut ws = app.connect_raw(WsAuth::None).await.unwrap();
    ws.send_text(token).await.unwrap();
    assert!(matches!(
        ws.next_frame().await.unwrap(),
        ServerFrame::Ready { .. }
    ));
}

#[tokio::test]
async fn a_user_in_many_rooms_gets_ready_a_page_at_a_time_before_anything_else() {
    let app = spawn_app_with(|s| s.limits = palaver_domain::throttle::RateLimits::off()).await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let mut created = Vec::new();
    for n in 0..250 {
        created.push(
            alice
                .client
                .create_room(&format!("r{n}"), None)
                .await
                .unwrap()
                .id,
        );
    }
    let shared = created[0];
    bob.client
        .join_room(&alice.client.room(shared).await.unwrap().code, None)
        .await
        .unwrap();

    let mut ws = app.connect_raw(WsAuth::None).await.unwrap();
    ws.send(&ClientFrame::Auth {
        token: Some(alice.access_token.clone()),
        resume: None,
    })
    .await
    .unwrap();
    // While the pages go out, something happens in a room: it comes after them.
    bob.client.post_message(shared, "hi", None).await.unwrap();
    let mut pages = Vec::new();
    loop {
        let (rooms, more) = match ws.next_frame().await.unwrap() {
            ServerFrame::Ready { rooms, more, .. } if pages.is_empty() => (rooms, more),
            ServerFrame::Rooms { rooms, more } if !pages.is_empty() => (rooms, more),
            other => panic!("not the opening's next page: {other:?}"),
        };
        assert!(rooms.len() <= 100, "a page of {}", rooms.len());
        pages.push(rooms);
        if !more {
            break;
        }
    }
    assert_eq!(pages.len(), 3);
    let mut ids: Vec<i64> = pages.into_iter().flatten().map(|p| p.id).collect();
    ids.sort();
    created.sort();
    assert_eq!(ids, created);

    // The client library gathers the pages into one `ready`.
    let ws = alice.connect().await;
    let Some(ServerFrame::Ready { rooms, more, .. }) = &ws.ready else {
        panic!("no ready")
    };
    assert_eq!((rooms.len(), *more), (250, false));
}

#[tokio::test]
async fn a_bad_first_frame_or_token_closes_with_4001() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;

    let mut ws = app.connect_raw(WsAuth::None).await.unwrap();
    ws.send(&send_frame(1, "sneaky", None)).await.unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 4001);

    let mut ws = app.connect_raw(WsAuth::None).await.unwrap();
    ws.send_text("not-a-token").await.unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 4001);

    for auth in [
        WsAuth::Header("garbage".into()),
        WsAuth::Query("garbage".into()),
    ] {
        match app.connect_raw(auth).await {
            Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4001),
            other => panic!("expected close 4001, got {:?}", other.map(|_| ())),
        }
    }
    // The valid token still works afterwards.
    alice.connect().await;
}

#[tokio::test]
async fn no_authentication_in_time_closes_with_4001() {
    let app =
        spawn_app_with(|s| s.realtime.auth_timeout = std::time::Duration::from_millis(200)).await;
    let mut ws = app.connect_raw(WsAuth::None).await.unwrap();
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, 4001);
    assert!(reason.contains("timed out"), "{reason}");
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_error_frames_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    let mut ws = alice.connect().await;

    ws.send_text("{this is not json").await.unwrap();
    assert_eq!(next_error(&mut ws).await.0, "malformed_frame");
    ws.send_text(r#"{"type":"dance","ref":"d1"}"#)
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        ("unknown_type".into(), Some("d1".into()))
    );
    ws.send_text(r#"{"type":"send","room":1,"client_id":"no-body"}"#)
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        ("invalid_frame".into(), Some("no-body".into()))
    );
    // Every known type with a field missing (or of the wrong type) is
    // `invalid_frame`, never `unknown_type`, and echoes its `ref`.
    for frame in [
        r#"{"type":"edit","room":1,"seq":1,"ref":"e1"}"#,
        r#"{"type":"delete","room":1,"ref":"e1"}"#,
        r#"{"type":"typing","ref":"e1"}"#,
        r#"{"type":"read","room":1,"ref":"e1"}"#,
        r#"{"type":"resume","ref":"e1"}"#,
        r#"{"type":"ping","ref":7}"#,
        r#"{"type":"auth","token":5,"ref":"e1"}"#,
    ] {
        ws.send_text(frame).await.unwrap();
        let (code, reference) = next_error(&mut ws).await;
        assert_eq!(code, "invalid_frame", "{frame}");
        if !frame.contains(r#""ref":7"#) {
            assert_eq!(reference.as_deref(), Some("e1"), "{frame}");
        }
    }
    ws.send(&send_frame(room.id + 99, "nowhere", Some("lost")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        ("not_found".into(), Some("lost".into()))
    );

    ws.send(&ClientFrame::Ping {
        reference: Some("p1".into()),
    })
    .await
    .unwrap();
    let pong = next_matching(&mut ws, |f| match f {
        ServerFrame::Pong { reference } => Some(reference),
        _ => None,
    })
    .await;
    assert_eq!(pong.as_deref(), Some("p1"));
    ws.send(&send_frame(room.id, "still here", Some("ok")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut ws).await, (Some("ok".into()), 1));
}

#[tokio::test]
async fn binary_frames_close_with_1003_and_oversized_frames_with_1009() {
    let app = spawn_app_with(|s| {
        s.messages.max_body_bytes = 100;
        s.realtime.max_frame_bytes = Some(1000);
    })
    .await;
    let alice = app.signup("alice").await;

    let mut ws = alice.connect().await;
    ws.send_message(Message::binary(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 1003);

    let mut ws = alice.connect().await;
    ws.send_text(format!(
        r#"{{"type":"send","room":1,"body":"{}"}}"#,
        "x".repeat(2000)
    ))
    .await
    .unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 1009);
}

#[tokio::test]
async fn resume_after_reconnect_returns_exactly_the_missed_messages_then_live_ones() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;

    let mut bob_ws = bob.connect().await;
    for n in 1..=3 {
        alice
            .client
            .post_message(room.id, &format!("seen {n}"), None)
            .await
            .unwrap();
    }
    let mut last_seen = 0;
    for _ in 0..3 {
        last_seen = next_message(&mut bob_ws).await.seq;
    }
    bob_ws.close().await;
    for n in 1..=4 {
        alice
            .client
            .post_message(room.id, &format!("missed {n}"), None)
            .await
            .unwrap();
    }

    let mut bob_ws = bob.connect().await;
    let Some(ServerFrame::Ready { rooms, .. }) = &bob_ws.ready else {
        panic!("no ready")
    };
    assert_eq!(rooms[0].last_seq, 7);
    bob_ws
        .send(&ClientFrame::Resume {
            rooms: BTreeMap::from([(room.id.to_string(), last_seen)]),
            reference: None,
        })
        .await
        .unwrap();
    let mut missed = Vec::new();
    for _ in 0..4 {
        let m = next_message(&mut bob_ws).await;
        missed.push((m.seq, m.body));
    }
    assert_eq!(
        missed,
        (1..=4)
            .map(|n| (3 + n as u64, format!("missed {n}")))
            .collect::<Vec<_>>()
    );
    alice
        .client
        .post_message(room.id, "live", None)
        .await
        .unwrap();
    let live = next_message(&mut bob_ws).await;
    assert_eq!((live.seq, live.body.as_str()), (8, "live"));
    assert_no_message(&mut bob_ws).await;
}

#[tokio::test]
async fn resume_inside_the_auth_frame_delivers_missed_messages_before_anything_live() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    for n in 1..=5 {
        alice
            .client
            .post_message(room.id, &format!("m{n}"), None)
            .await
            .unwrap();
    }
    let mut ws = app
        .connect_raw(WsAuth::Frame {
            token: alice.access_token.clone(),
            resume: Some(BTreeMap::from([(room.id.to_string(), 2)])),
        })
        .await
        .unwrap();
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(next_message(&mut ws).await.seq);
    }
    assert_eq!(seqs, [3, 4, 5]);
    assert_no_message(&mut ws).await;
}

#[tokio::test]
async fn resume_across_a_server_restart_loses_no_acknowledged_message() {
    let mut app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("durable", None).await.unwrap();
    let mut ws = alice.connect().await;
    for n in 1..=3 {
        ws.send(&send_frame(
            room.id,
            &format!("m{n}"),
            Some(&format!("c{n}")),
        ))
        .await
        .unwrap();
    }
    let mut acked = Vec::new();
    for _ in 0..3 {
        acked.push(next_ack(&mut ws).await.1);
    }
    let (_, ()) = tokio::join!(expect_close(&mut ws), app.restart());

    let page = alice
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    let stored: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(stored, acked);
    let mut ws = alice.connect().await;
    let Some(ServerFrame::Ready { rooms, .. }) = &ws.ready else {
        panic!("no ready")
    };
    assert_eq!(rooms[0].last_seq, 3);
    ws.send(&send_frame(room.id, "after restart", None))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut ws).await.1, 4);
}

#[tokio::test]
async fn a_slow_consumer_that_reads_nothing_at_all_is_dropped_after_the_write_timeout() {
    use futures::StreamExt;

    let app = spawn_app_with(|s| {
        s.realtime.queue_capacity = 64;
        s.realtime.write_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("firehose", None).await.unwrap();

    // A client with a tiny, fixed receive buffer that never reads: the server's
    // writes to it get stuck once a few megabytes are in flight.
    let mut stuck = app.connect_with_tiny_receive_buffer(&alice).await;
    stuck.next().await.expect("ready").unwrap();

    flood(&alice.client, room.id, 20, 100).await;
    // The server's side of it, seen without reading the socket: once the
    // connection is dropped, its user (who has no other) goes offline.
    tokio::time::timeout(WAIT, async {
        while alice
            .client
            .online(room.id)
            .await
            .unwrap()
            .iter()
            .any(|member| member.user.id == alice.id())
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stuck connection is dropped after the grace period");

    // Dropped, not waited for: the client finds buffered frames, then the end of
    // the stream with no close frame. (A server still holding the connection
    // would finish its write once the client reads, then send 1013.)
    let ending = tokio::time::timeout(WAIT, async {
        loop {
            match stuck.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                    return frame.map(|f| u16::from(f.code)).unwrap_or(1005)
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return 1006,
            }
        }
    })
    .await
    .expect("the stream ends");
    assert_eq!(ending, 1006);
    assert_eq!(app.readiness().await, 200);
}
