//! Read markers and unread counts.

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::types::RoomSummary;

use crate::helpers::*;

fn read_event(frame: ServerFrame) -> Option<(i64, u64)> {
    match frame {
        ServerFrame::Read { user_id, seq, .. } => Some((user_id, seq)),
        _ => None,
    }
}

async fn summary(user: &TestUser, room: i64) -> RoomSummary {
    user.client
        .rooms()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.room.id == room)
        .expect("the room is listed")
}

#[tokio::test]
async fn markers_only_move_forward_and_drive_unread_counts() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    for n in 1..=3 {
        alice
            .client
            .post_message(room.id, &format!("m{n}"), None)
            .await
            .unwrap();
    }
    let before = summary(&bob, room.id).await;
    assert_eq!((before.last_read_seq, before.unread_count), (0, 3));
    // One's own messages are never unread.
    assert_eq!(summary(&alice, room.id).await.unread_count, 0);

    let mut alice_ws = alice.connect().await;
    let mut bob_other_tab = bob.connect().await;
    let marker = bob.client.mark_read(room.id, 2).await.unwrap();
    assert_eq!(marker.last_read_seq, 2);
    assert_eq!(
        next_matching(&mut alice_ws, read_event).await,
        (bob.id(), 2)
    );
    assert_eq!(
        next_matching(&mut bob_other_tab, read_event).await,
        (bob.id(), 2)
    );
    assert_eq!(summary(&bob, room.id).await.unread_count, 1);

    // Backwards: nothing moves; beyond the newest: capped at it.
    assert_eq!(
        bob.client
            .mark_read(room.id, 1)
            .await
            .unwrap()
            .last_read_seq,
        2
    );
    assert_eq!(
        bob.client
            .mark_read(room.id, 99)
            .await
            .unwrap()
            .last_read_seq,
        3
    );
    // Only the moves were announced: 2, then 3.
    assert_eq!(
        next_matching(&mut alice_ws, read_event).await,
        (bob.id(), 3)
    );
    let after = summary(&bob, room.id).await;
    assert_eq!((after.last_read_seq, after.unread_count), (3, 0));

    let markers = alice.client.read_markers(room.id).await.unwrap();
    let markers: Vec<_> = markers
        .iter()
        .map(|m| (m.user_id, m.last_read_seq))
        .collect();
    assert_eq!(markers, [(alice.id(), 0), (bob.id(), 3)]);

    // Over WebSocket.
    alice
        .client
        .post_message(room.id, "m4", None)
        .await
        .unwrap();
    bob_other_tab
        .send(&ClientFrame::Read {
            room: room.id,
            seq: 4,
            reference: None,
        })
        .await
        .unwrap();
    assert_eq!(
        next_matching(&mut alice_ws, read_event).await,
        (bob.id(), 4)
    );
}

#[tokio::test]
async fn deleted_messages_are_not_unread_and_strangers_see_no_markers() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let gone = alice
        .client
        .post_message(room.id, "oops", None)
        .await
        .unwrap();
    alice
        .client
        .post_message(room.id, "kept", None)
        .await
        .unwrap();
    alice
        .client
        .delete_message(room.id, gone.seq)
        .await
        .unwrap();
    assert_eq!(summary(&bob, room.id).await.unread_count, 1);

    assert_eq!(status_of(carol.client.read_markers(room.id).await), 404);
    assert_eq!(status_of(carol.client.mark_read(room.id, 1).await), 404);
    let mut carol_ws = carol.connect().await;
    carol_ws
        .send(&ClientFrame::Read {
            room: room.id,
            seq: 1,
            reference: Some("r1".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut carol_ws).await,
        ("not_found".into(), Some("r1".into()))
    );
}
