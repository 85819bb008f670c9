//! The real-time guarantees, checked once and run over every transport that
//! carries them (the WebSocket, the gRPC `Realtime.Connect` stream,
//! Socket.IO, STOMP and SignalR): all drive the same session core, and these
//! tests hold each to it. STOMP has destinations instead of every frame: it
//! runs the checks its destinations can express.

use std::collections::BTreeMap;

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::types::HistoryQuery;

use crate::helpers::*;
use crate::live::{Via, BOTH, EVERY, FRAMED};

#[tokio::test]
async fn two_users_chat_with_acked_seqs_over_every_transport() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let mut at_alice = alice.live(&app, via, None).await;
        let mut at_bob = bob.live(&app, via, None).await;
        if let Some(ready) = at_bob.ready() {
            let ServerFrame::Ready { rooms, .. } = ready else {
                panic!("{via:?}: no ready")
            };
            assert_eq!((rooms[0].id, rooms[0].last_seq), (room.id, 0), "{via:?}");
        }

        at_alice
            .send(&send_frame(room.id, "hello bob", Some("a-1")))
            .await;
        assert_eq!(
            next_ack(&mut at_alice).await,
            (Some("a-1".into()), 1),
            "{via:?}"
        );
        let received = next_message(&mut at_bob).await;
        assert_eq!(
            (received.seq, received.sender_id, received.body.as_str()),
            (1, alice.id(), "hello bob"),
            "{via:?}"
        );
        at_bob.send(&send_frame(room.id, "hi alice", None)).await;
        assert_eq!(next_ack(&mut at_bob).await.1, 2, "{via:?}");
        assert_eq!(
            next_message(&mut at_alice).await.seq,
            1,
            "{via:?}: own copy"
        );
        assert_eq!(
            next_message(&mut at_alice).await.body,
            "hi alice",
            "{via:?}"
        );
    }
}

/// Five members of one room, each on another transport: what each sends
/// reaches every other, with the seq its sender was acknowledged with, and
/// REST history holds each once under that seq.
#[tokio::test]
async fn one_room_every_protocol_one_seq() {
    let app = spawn_app().await;
    let mut members = Vec::new();
    for via in EVERY {
        members.push(app.signup(&format!("{via:?}").to_lowercase()).await);
    }
    let (owner, others) = members.split_first().unwrap();
    let room = app
        .room_with(owner, &others.iter().collect::<Vec<_>>())
        .await;
    let mut connections = Vec::new();
    for (member, via) in members.iter().zip(EVERY) {
        connections.push((via, member.live(&app, via, None).await));
    }

    for (via, live) in &mut connections {
        let body = format!("hello over {via:?}");
        live.send(&send_frame(room.id, &body, Some(&format!("from-{via:?}"))))
            .await;
    }
    // Each connection: its own ack, and every message once.
    let mut acked = BTreeMap::new();
    let mut received_by = Vec::new();
    for (via, live) in &mut connections {
        let mut received = BTreeMap::new();
        let mut ack = None;
        while ack.is_none() || received.len() < EVERY.len() {
            match next_matching(live, Some).await {
                ServerFrame::Ack { client_id, seq, .. } => {
                    assert_eq!(client_id, Some(format!("from-{via:?}")), "{via:?}");
                    ack = Some(seq);
                }
                ServerFrame::Message { seq, body, .. } => {
                    let again = received.insert(seq, body);
                    assert!(again.is_none(), "{via:?}: seq {seq} twice");
                }
                ServerFrame::Error { code, message, .. } => panic!("{via:?}: {code}: {message}"),
                _ => {}
            }
        }
        assert_no_message(live).await;
        acked.insert(ack.unwrap(), format!("hello over {via:?}"));
        received_by.push((*via, received));
    }
    assert_eq!(acked.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    for (via, received) in received_by {
        assert_eq!(
            received, acked,
            "{via:?}: every message, with its sender's seq"
        );
    }
    let history = owner
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    let stored: BTreeMap<u64, String> = history
        .messages
        .into_iter()
        .map(|m| (m.seq, m.body))
        .collect();
    assert_eq!(stored, acked);
}

#[tokio::test]
async fn every_member_receives_every_message_once_in_seq_order() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let mut sender = alice.live(&app, via, None).await;
        let mut reader = bob.live(&app, via, None).await;
        for n in 0..50 {
            sender
                .send(&send_frame(
                    room.id,
                    &format!("m{n}"),
                    Some(&format!("c{n}")),
                ))
                .await;
        }
        let mut seqs = Vec::new();
        while seqs.len() < 50 {
            seqs.push(next_message(&mut reader).await.seq);
        }
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "{via:?}");
        assert_no_message(&mut reader).await;
    }
}

#[tokio::test]
async fn a_resumed_connection_gets_exactly_what_it_missed_then_live_messages() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let mut at_bob = bob.live(&app, via, None).await;
        alice
            .client
            .post_message(room.id, "one", None)
            .await
            .unwrap();
        assert_eq!(next_message(&mut at_bob).await.seq, 1, "{via:?}");
        drop(at_bob);

        for body in ["two", "three"] {
            alice
                .client
                .post_message(room.id, body, None)
                .await
                .unwrap();
        }
        let resume = BTreeMap::from([(room.id.to_string(), 1)]);
        let mut at_bob = bob.live(&app, via, Some(resume)).await;
        let missed = [
            next_message(&mut at_bob).await,
            next_message(&mut at_bob).await,
        ];
        assert_eq!(
            missed.map(|m| (m.seq, m.body)),
            [(2, "two".to_owned()), (3, "three".to_owned())],
            "{via:?}"
        );
        alice
            .client
            .post_message(room.id, "four", None)
            .await
            .unwrap();
        assert_eq!(next_message(&mut at_bob).await.seq, 4, "{via:?}");

        if via == Via::Stomp {
            continue; // its resume is `x-after-seq` at subscribe, checked above
        }
        // Resuming again from what it has seen sends nothing twice.
        at_bob
            .send(&ClientFrame::Resume {
                rooms: BTreeMap::from([(room.id.to_string(), 4)]),
                reference: Some("again".into()),
            })
            .await;
        assert_no_message(&mut at_bob).await;
    }
}

#[tokio::test]
async fn a_resent_client_id_is_acknowledged_with_the_original_seq_and_stored_once() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let room = alice.client.create_room("r", None).await.unwrap();
        let mut live = alice.live(&app, via, None).await;
        live.send(&send_frame(room.id, "once", Some("same"))).await;
        assert_eq!(
            next_ack(&mut live).await,
            (Some("same".into()), 1),
            "{via:?}"
        );
        live.send(&send_frame(room.id, "once", Some("same"))).await;
        assert_eq!(
            next_ack(&mut live).await,
            (Some("same".into()), 1),
            "{via:?}"
        );
        let page = alice
            .client
            .history(room.id, &HistoryQuery::default())
            .await
            .unwrap();
        assert_eq!(page.messages.len(), 1, "{via:?}");
    }
}

#[tokio::test]
async fn a_stranger_to_a_room_can_neither_send_to_it_nor_resume_it_nor_see_it() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let mallory = app.signup("mallory").await;
        let room = alice.client.create_room("private", None).await.unwrap();
        alice
            .client
            .post_message(room.id, "secret", None)
            .await
            .unwrap();
        let mut live = mallory.live(&app, via, None).await;
        if let Some(ready) = live.ready() {
            let ServerFrame::Ready { rooms, .. } = ready else {
                panic!("no ready")
            };
            assert!(rooms.is_empty(), "{via:?}");
        }

        live.send(&send_frame(room.id, "let me in", Some("m1")))
            .await;
        assert_eq!(
            next_error(&mut live).await,
            ("not_found".into(), Some("m1".into())),
            "{via:?}"
        );
        if via == Via::Stomp {
            // An ERROR ends a STOMP connection.
            assert_eq!(live.ended().await, "not_found");
            live = mallory.live(&app, via, None).await;
        } else {
            live.send(&ClientFrame::Resume {
                rooms: BTreeMap::from([(room.id.to_string(), 0)]),
                reference: Some("r1".into()),
            })
            .await;
            assert_eq!(
                next_error(&mut live).await,
                ("not_found".into(), Some("r1".into())),
                "{via:?}"
            );
        }
        live.send(&ClientFrame::Typing {
            room: room.id,
            reference: Some("t1".into()),
        })
        .await;
        assert_eq!(next_error(&mut live).await.0, "not_found", "{via:?}");
        if via == Via::Stomp {
            assert_eq!(live.ended().await, "not_found");
            live = mallory.live(&app, via, None).await;
        }
        alice
            .client
            .post_message(room.id, "more secrets", None)
            .await
            .unwrap();
        assert_no_message(&mut live).await;
    }
}

#[tokio::test]
async fn one_resume_naming_many_foreign_rooms_gets_one_answer_over_every_transport() {
    for via in FRAMED {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let room = alice.client.create_room("mine", None).await.unwrap();
        alice
            .client
            .post_message(room.id, "missed", None)
            .await
            .unwrap();
        let mut live = alice.live(&app, via, None).await;
        // As many as one frame carries (the frame-size limit).
        let mut rooms: BTreeMap<String, u64> = (100_000..101_200)
            .map(|id: i64| (id.to_string(), 0))
            .collect();
        rooms.insert(room.id.to_string(), 0);
        live.send(&ClientFrame::Resume {
            rooms,
            reference: Some("r1".into()),
        })
        .await;
        live.send(&ClientFrame::Ping {
            reference: Some("p1".into()),
        })
        .await;
        // Everything up to the pong answers the resume.
        let mut answers = Vec::new();
        loop {
            match live.next_frame().await.expect("frames arrive") {
                ServerFrame::Pong { .. } => break,
                ServerFrame::Presence { .. } => {}
                frame => answers.push(frame),
            }
        }
        let errors: Vec<_> = answers
            .iter()
            .filter_map(|frame| match frame {
                ServerFrame::Error {
                    code,
                    message,
                    reference,
                    ..
                } => Some((code.as_str(), message.as_str(), reference.as_deref())),
                _ => None,
            })
            .collect();
        assert_eq!(errors.len(), 1, "{via:?}: {errors:?}");
        let (code, _, reference) = errors[0];
        assert_eq!((code, reference), ("not_found", Some("r1")), "{via:?}");
        assert!(
            answers
                .iter()
                .any(|f| matches!(f, ServerFrame::Message { body, .. } if body == "missed")),
            "{via:?}: the room that is hers is still replayed: {answers:?}"
        );
    }
}

#[tokio::test]
async fn edits_deletes_typing_and_read_markers_reach_the_other_members() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let mut at_alice = alice.live(&app, via, None).await;
        let mut at_bob = bob.live(&app, via, None).await;
        at_alice.send(&send_frame(room.id, "tpyo", Some("a"))).await;
        let seq = next_ack(&mut at_alice).await.1;
        // STOMP has no destination to edit or delete: those go over REST,
        // and reach the STOMP member all the same.
        let framed = FRAMED.contains(&via);
        if framed {
            at_alice
                .send(&ClientFrame::Edit {
                    room: room.id,
                    seq,
                    body: "typo".into(),
                    reference: Some("e".into()),
                })
                .await;
        } else {
            alice
                .client
                .edit_message(room.id, seq, "typo")
                .await
                .unwrap();
        }
        let edited = next_matching(&mut at_bob, |f| match f {
            ServerFrame::MessageEdited { seq, body, .. } => Some((seq, body)),
            _ => None,
        })
        .await;
        assert_eq!(edited, (seq, "typo".into()), "{via:?}");
        at_alice
            .send(&ClientFrame::Typing {
                room: room.id,
                reference: None,
            })
            .await;
        let typer = next_matching(&mut at_bob, |f| match f {
            ServerFrame::Typing { user_id, .. } => Some(user_id),
            _ => None,
        })
        .await;
        assert_eq!(typer, alice.id(), "{via:?}");
        at_bob
            .send(&ClientFrame::Read {
                room: room.id,
                seq,
                reference: None,
            })
            .await;
        let read = next_matching(&mut at_alice, |f| match f {
            ServerFrame::Read { user_id, seq, .. } => Some((user_id, seq)),
            _ => None,
        })
        .await;
        assert_eq!(read, (bob.id(), seq), "{via:?}");
        if framed {
            at_alice
                .send(&ClientFrame::Delete {
                    room: room.id,
                    seq,
                    reference: None,
                })
                .await;
        } else {
            alice.client.delete_message(room.id, seq).await.unwrap();
        }
        let deleted = next_matching(&mut at_bob, |f| match f {
            ServerFrame::MessageDeleted { seq, .. } => Some(seq),
            _ => None,
        })
        .await;
        assert_eq!(deleted, seq, "{via:?}");
    }
}

#[tokio::test]
async fn a_connection_that_does_not_read_is_cut_off_as_a_slow_consumer() {
    for via in EVERY {
        let app = spawn_app_with(|s| s.realtime.queue_capacity = 4).await;
        let alice = app.signup("alice").await;
        let room = alice.client.create_room("firehose", None).await.unwrap();
        let mut lazy = alice.live(&app, via, None).await;
        // Far more than the transport's buffers plus a 4-frame queue hold,
        // while the lazy connection reads nothing.
        flood(&alice.client, room.id, 20, 150).await;
        assert_eq!(lazy.ended().await, "slow_consumer", "{via:?}");
        let page = alice
            .client
            .history(
                room.id,
                &HistoryQuery {
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.messages[0].seq, 3000, "{via:?}: every ack stored");
    }
}

#[tokio::test]
async fn signing_out_ends_the_logins_connections() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let mut live = alice.live(&app, via, None).await;
        alice.client.logout(&alice.refresh_token).await.unwrap();
        assert_eq!(live.ended().await, "session_ended", "{via:?}");
    }
}

#[tokio::test]
async fn stopping_the_server_ends_connections_as_going_away() {
    for via in EVERY {
        let mut app = spawn_app().await;
        let alice = app.signup("alice").await;
        let mut live = alice.live(&app, via, None).await;
        app.shutdown().await;
        assert_eq!(live.ended().await, "shutting_down", "{via:?}");
    }
}

/// `palaver_client::LiveSession` across a server restart: it reconnects by
/// itself, resumes the room after the last message it handed out (no gap, no
/// repeat), and sends again what was sent while it was disconnected.
#[tokio::test]
async fn a_live_session_reconnects_resumes_and_resends_over_either_transport() {
    use palaver_client::{LiveEvent, LiveSession};
    for transport in BOTH {
        let mut app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let mut live = LiveSession::connect(
            &app.base_url,
            transport,
            Box::new(alice.access_token.clone()),
            BTreeMap::new(),
        )
        .await
        .expect("live session connects");
        bob.client.post_message(room.id, "m1", None).await.unwrap();
        loop {
            match next_event(&mut live).await {
                LiveEvent::Frame(ServerFrame::Message { seq, .. }) => {
                    assert_eq!(seq, 1, "{transport:?}");
                    break;
                }
                LiveEvent::Frame(_) => {}
                other => panic!("{transport:?}: {other:?} before the first message"),
            }
        }

        app.restart().await;
        loop {
            if let LiveEvent::Disconnected { .. } = next_event(&mut live).await {
                break;
            }
        }
        bob.client.post_message(room.id, "m2", None).await.unwrap();
        bob.client.post_message(room.id, "m3", None).await.unwrap();
        let sent = live
            .send(send_frame(room.id, "from alice", None))
            .await
            .expect("a send gets a client id");
        assert_eq!(live.unacknowledged().collect::<Vec<_>>(), [sent.as_str()]);

        let (mut reconnected, mut acked, mut bodies) = (false, false, Vec::new());
        while bodies.len() < 3 || !acked {
            match next_event(&mut live).await {
                LiveEvent::Reconnected { .. } => reconnected = true,
                LiveEvent::Frame(ServerFrame::Message { seq, body, .. }) => {
                    bodies.push((seq, body))
                }
                LiveEvent::Frame(ServerFrame::Ack { client_id, seq, .. }) => {
                    assert_eq!((client_id.as_deref(), seq), (Some(sent.as_str()), 4));
                    acked = true;
                }
                LiveEvent::Frame(_) => {}
                LiveEvent::Disconnected { error, .. } => {
                    // The restarted server may not be listening on the first try.
                    eprintln!("{transport:?}: reconnect attempt failed: {error}");
                }
            }
        }
        assert!(reconnected, "{transport:?}");
        assert_eq!(
            bodies,
            [
                (2, "m2".to_owned()),
                (3, "m3".to_owned()),
                (4, "from alice".to_owned())
            ],
            "{transport:?}: resumed after seq 1, the queued send stored once"
        );
        assert_eq!(live.unacknowledged().count(), 0, "{transport:?}");
        assert_eq!(live.positions().get(&room.id), Some(&4), "{transport:?}");
        let history = bob
            .client
            .history(room.id, &HistoryQuery::default())
            .await
            .unwrap();
        assert_eq!(
            history.messages.len(),
            4,
            "{transport:?}: no duplicate stored"
        );
    }
}

async fn next_event(live: &mut palaver_client::LiveSession) -> palaver_client::LiveEvent {
    tokio::time::timeout(WAIT, live.next_event())
        .await
        .expect("an event in time")
        .expect("the login holds")
}
