//! The whole path a new user takes, end to end.

use crate::helpers::*;

#[tokio::test]
async fn two_users_chat_in_real_time_with_acked_seqs() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = alice.client.create_room("general", None).await.unwrap();
    assert_eq!(room.owner_id, alice.id());
    assert_eq!(room.code.len(), 8);
    let joined = bob.client.join_room(&room.code, None).await.unwrap();
    assert_eq!(joined.id, room.id);

    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;
    alice_ws
        .send(&send_frame(room.id, "hello bob", Some("a-1")))
        .await
        .unwrap();

    let (client_id, acked_seq) = next_ack(&mut alice_ws).await;
    assert_eq!(client_id.as_deref(), Some("a-1"));
    let received = next_message(&mut bob_ws).await;
    assert_eq!(
        received,
        Received {
            room: room.id,
            seq: acked_seq,
            sender_id: alice.id(),
            body: "hello bob".into()
        }
    );
    assert_eq!(acked_seq, 1);

    // Bob answers; Alice's connection gets it with the next seq.
    bob_ws
        .send(&send_frame(room.id, "hi alice", None))
        .await
        .unwrap();
    let (_, bob_seq) = next_ack(&mut bob_ws).await;
    let at_alice = next_matching(&mut alice_ws, |f| match f {
        palaver_client::frames::ServerFrame::Message { seq, body, .. } if body == "hi alice" => {
            Some(seq)
        }
        _ => None,
    })
    .await;
    assert_eq!((bob_seq, at_alice), (2, 2));
}

#[tokio::test]
async fn a_message_posted_over_rest_reaches_websocket_members() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut bob_ws = bob.connect().await;

    let posted = alice
        .client
        .post_message(room.id, "via rest", None)
        .await
        .unwrap();
    let received = next_message(&mut bob_ws).await;
    assert_eq!(
        (received.seq, received.body.as_str()),
        (posted.seq, "via rest")
    );
}

#[tokio::test]
async fn every_connection_of_a_user_receives_the_message_including_the_senders_own() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("solo", None).await.unwrap();
    let mut tab1 = alice.connect().await;
    let mut tab2 = alice.connect().await;

    tab1.send(&send_frame(room.id, "from tab 1", None))
        .await
        .unwrap();
    assert_eq!(next_message(&mut tab2).await.body, "from tab 1");
    assert_eq!(next_message(&mut tab1).await.body, "from tab 1");
}

#[tokio::test]
async fn graceful_shutdown_closes_websockets_with_1001_after_acking() {
    let mut app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    let mut ws = alice.connect().await;
    ws.send(&send_frame(room.id, "last words", Some("lw")))
        .await
        .unwrap();
    let (_, seq) = next_ack(&mut ws).await;

    let ((code, _), ()) = tokio::join!(expect_close(&mut ws), app.shutdown());
    assert_eq!(code, 1001);
    assert_eq!(seq, 1);
}
