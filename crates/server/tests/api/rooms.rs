//! Rooms: create, join by code, list, members, leave, and privacy.

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::types::HistoryQuery;
use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn joining_checks_the_password_and_is_idempotent() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = alice
        .client
        .create_room("secret club", Some("open sesame"))
        .await
        .unwrap();
    assert!(room.has_password);

    assert_eq!(status_of(bob.client.join_room(&room.code, None).await), 403);
    assert_eq!(
        status_of(bob.client.join_room(&room.code, Some("wrong")).await),
        403
    );
    assert_eq!(status_of(bob.client.join_room("ZZZZZZZZ", None).await), 404);
    assert_eq!(
        status_of(bob.client.join_room("not a code", None).await),
        404
    );

    let joined = bob
        .client
        .join_room(&room.code.to_lowercase(), Some("open sesame"))
        .await
        .unwrap();
    assert_eq!(joined.id, room.id);
    // Already a member: fine, no password needed again.
    bob.client.join_room(&room.code, None).await.unwrap();

    let members = alice.client.members(room.id).await.unwrap();
    let roles: Vec<_> = members
        .iter()
        .map(|m| (m.user.username.as_deref().unwrap(), m.role.as_str()))
        .collect();
    assert_eq!(roles, [("alice", "owner"), ("bob", "member")]);
}

#[tokio::test]
async fn room_list_carries_last_seq_and_last_message_newest_activity_first() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let quiet = alice.client.create_room("quiet", None).await.unwrap();
    let busy = alice.client.create_room("busy", None).await.unwrap();
    alice
        .client
        .post_message(quiet.id, "old news", None)
        .await
        .unwrap();
    alice
        .client
        .post_message(busy.id, "one", None)
        .await
        .unwrap();
    alice
        .client
        .post_message(busy.id, "two", None)
        .await
        .unwrap();

    let rooms = alice.client.rooms().await.unwrap();
    let summary: Vec<_> = rooms
        .iter()
        .map(|r| {
            (
                r.room.name.as_str(),
                r.last_seq,
                r.last_message.as_ref().map(|m| m.body.as_str()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("busy", 2, Some("two")), ("quiet", 1, Some("old news"))]
    );
    assert_eq!(rooms[0].role, "owner");
}

#[tokio::test]
async fn a_non_member_learns_nothing_about_a_room() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let eve = app.signup("eve").await;
    let room = alice.client.create_room("private", None).await.unwrap();
    alice
        .client
        .post_message(room.id, "secret", None)
        .await
        .unwrap();
    let missing = room.id + 1000;

    // Every answer about the real room equals the answer about a missing one.
    for id in [room.id, missing] {
        let get = eve.client.room(id).await.unwrap_err();
        assert_eq!((get.status(), get.code()), (Some(404), Some("not_found")));
        assert_eq!(status_of(eve.client.members(id).await), 404);
        assert_eq!(
            status_of(eve.client.history(id, &HistoryQuery::default()).await),
            404
        );
        assert_eq!(
            status_of(eve.client.post_message(id, "let me in", None).await),
            404
        );
        assert_eq!(status_of(eve.client.leave(id).await), 404);
    }
    let real = eve
        .client
        .request(Method::GET, &format!("/api/v1/rooms/{}", room.id))
        .send()
        .await
        .unwrap();
    let fake = eve
        .client
        .request(Method::GET, &format!("/api/v1/rooms/{missing}"))
        .send()
        .await
        .unwrap();
    assert_eq!(real.text().await.unwrap(), fake.text().await.unwrap());

    // Over WebSocket: no delivery, and sends and resumes are refused the same way.
    let mut eve_ws = eve.connect().await;
    eve_ws
        .send(&send_frame(room.id, "hi", Some("e1")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut eve_ws).await,
        ("not_found".into(), Some("e1".into()))
    );
    eve_ws
        .send(&ClientFrame::Resume {
            rooms: [(room.id.to_string(), 0)].into(),
            reference: Some("r1".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut eve_ws).await,
        ("not_found".into(), Some("r1".into()))
    );
    alice
        .client
        .post_message(room.id, "still secret", None)
        .await
        .unwrap();
    assert_no_message(&mut eve_ws).await;
    // Nothing eve tried was stored.
    let page = alice
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
}

#[tokio::test]
async fn leaving_stops_delivery_at_once_and_closes_the_room_to_the_leaver() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut bob_ws = bob.connect().await;
    let mut alice_ws = alice.connect().await;

    bob.client.leave(room.id).await.unwrap();
    let left = next_matching(&mut alice_ws, |f| match f {
        ServerFrame::MemberLeft { room, user_id } => Some((room, user_id)),
        _ => None,
    })
    .await;
    assert_eq!(left, (room.id, bob.id()));
    alice
        .client
        .post_message(room.id, "after bob left", None)
        .await
        .unwrap();
    assert_no_message(&mut bob_ws).await;
    assert_eq!(status_of(bob.client.room(room.id).await), 404);
    assert_eq!(status_of(bob.client.leave(room.id).await), 404);
}

#[tokio::test]
async fn joining_from_one_connection_starts_delivery_on_every_connection_of_the_user() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = alice.client.create_room("later", None).await.unwrap();
    alice
        .client
        .post_message(room.id, "before bob", None)
        .await
        .unwrap();
    let mut bob_ws = bob.connect().await;

    bob.client.join_room(&room.code, None).await.unwrap();
    let joined = next_matching(&mut bob_ws, |f| match f {
        ServerFrame::MemberJoined { room, user_id } => Some((room, user_id)),
        _ => None,
    })
    .await;
    assert_eq!(joined, (room.id, bob.id()));
    alice
        .client
        .post_message(room.id, "welcome bob", None)
        .await
        .unwrap();
    let received = next_message(&mut bob_ws).await;
    assert_eq!((received.seq, received.body.as_str()), (2, "welcome bob"));
}

#[tokio::test]
async fn room_names_are_validated() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let err = alice.client.create_room("   ", None).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("invalid_input"))
    );
    let err = alice
        .client
        .create_room(&"x".repeat(101), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
}

#[tokio::test]
async fn a_room_created_while_connected_is_live_on_the_creators_connections_at_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let mut alice_ws = alice.connect().await;

    let room = alice.client.create_room("fresh", None).await.unwrap();
    let joined = next_matching(&mut alice_ws, |f| match f {
        ServerFrame::MemberJoined { room, user_id } => Some((room, user_id)),
        _ => None,
    })
    .await;
    assert_eq!(joined, (room.id, alice.id()));
    bob.client.join_room(&room.code, None).await.unwrap();
    bob.client
        .post_message(room.id, "hello creator", None)
        .await
        .unwrap();
    let received = next_message(&mut alice_ws).await;
    assert_eq!((received.seq, received.body.as_str()), (1, "hello creator"));
}
