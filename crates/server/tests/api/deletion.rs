//! Deleting an account: what stays (its messages, under a tombstone), what
//! ends (memberships, logins, sockets), what is refused (the last owner of a
//! room with members), and the username held back afterwards.

use palaver_client::frames::ServerFrame;
use palaver_client::types::{HistoryQuery, UserRef};
use palaver_protocol::close_code;
use reqwest::Method;

use crate::helpers::*;

async fn history(user: &TestUser, room: i64) -> Vec<palaver_client::types::Message> {
    user.client
        .history(room, &HistoryQuery::default())
        .await
        .unwrap()
        .messages
}

#[tokio::test]
async fn a_deleted_account_leaves_its_messages_under_a_tombstone_and_ends_everything() {
    let app = spawn_app().await;
    let bob = app.signup("bob").await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&bob, &[&alice]).await;
    alice
        .client
        .post_message(room.id, "hello from alice", None)
        .await
        .unwrap();
    let mut bob_ws = bob.connect().await;
    let mut alice_ws = alice.connect().await;

    alice.client.delete_account(PASSWORD, false).await.unwrap();

    let deleted = next_matching(&mut bob_ws, |frame| match frame {
        ServerFrame::UserDeleted {
            room,
            user_id,
            erased,
        } => Some((room, user_id, erased)),
        ServerFrame::MemberLeft { .. } => panic!("member_left before user_deleted"),
        _ => None,
    })
    .await;
    assert_eq!(deleted, (room.id, alice.id(), false));
    let left = next_matching(&mut bob_ws, |frame| match frame {
        ServerFrame::MemberLeft { room, user_id } => Some((room, user_id)),
        _ => None,
    })
    .await;
    assert_eq!(left, (room.id, alice.id()));
    assert_eq!(
        expect_close(&mut alice_ws).await.0,
        close_code::SESSION_ENDED
    );

    // The history keeps the message; its sender is the tombstone.
    let messages = history(&bob, room.id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].sender_id, alice.id());
    assert_eq!(messages[0].body, "hello from alice");
    assert!(!messages[0].deleted);
    let tombstone = bob.client.user(alice.id()).await.unwrap();
    assert!(tombstone.deleted);
    assert_eq!(tombstone.username, None);
    assert_eq!(tombstone.display_name, "Deleted user");
    let members = bob.client.members(room.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user.id).collect::<Vec<_>>(),
        [bob.id()]
    );

    // The account is gone for every purpose.
    assert_eq!(status_and_code(alice.client.me().await).0, 401);
    assert_eq!(
        status_and_code(app.client.login("alice", PASSWORD).await).0,
        401
    );
    assert_eq!(
        status_and_code(app.client.refresh(&alice.refresh_token).await).0,
        401
    );
    let found = bob.client.search_users("", None, None).await.unwrap();
    assert_eq!(
        found.users.iter().map(|u| u.id).collect::<Vec<_>>(),
        [bob.id()],
        "the tombstone is found by nobody (not even as \"Deleted user\")"
    );
    let found = bob
        .client
        .search_users("deleted", None, None)
        .await
        .unwrap();
    assert!(found.users.is_empty(), "{found:?}");
    assert_eq!(
        status_and_code(bob.client.direct_room(UserRef::Id(alice.id())).await).0,
        404
    );
    assert_eq!(
        status_and_code(bob.client.invite(room.id, UserRef::Id(alice.id())).await).0,
        404
    );
    // Its name is held back (30 days by default).
    assert_eq!(
        status_and_code(app.client.register("alice", PASSWORD, None).await),
        (409, "conflict".into())
    );
    assert_eq!(
        status_and_code(app.client.register("ALICE", PASSWORD, None).await).0,
        409
    );
}

#[tokio::test]
async fn erase_blanks_the_accounts_messages_and_keeps_every_seq() {
    let app = spawn_app().await;
    let bob = app.signup("bob").await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&bob, &[&alice]).await;
    for (who, body) in [(&alice, "one"), (&bob, "two"), (&alice, "three")] {
        who.client.post_message(room.id, body, None).await.unwrap();
    }
    let mut bob_ws = bob.connect().await;

    alice.client.delete_account(PASSWORD, true).await.unwrap();

    let erased = next_matching(&mut bob_ws, |frame| match frame {
        ServerFrame::UserDeleted { erased, .. } => Some(erased),
        _ => None,
    })
    .await;
    assert!(erased);
    let messages = history(&bob, room.id).await;
    let shown: Vec<_> = messages
        .iter()
        .map(|m| (m.seq, m.sender_id, m.body.as_str(), m.deleted))
        .collect();
    assert_eq!(
        shown,
        [
            (1, alice.id(), "", true),
            (2, bob.id(), "two", false),
            (3, alice.id(), "", true),
        ]
    );
    // The room goes on from where it was.
    let next = bob
        .client
        .post_message(room.id, "four", None)
        .await
        .unwrap();
    assert_eq!(next.seq, 4);
}

#[tokio::test]
async fn the_only_owner_of_a_room_with_members_must_hand_it_over_first() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let team = alice.client.create_room("Team", None).await.unwrap();
    bob.client.join_room(&team.code, None).await.unwrap();
    let solo = alice.client.create_room("Solo", None).await.unwrap();

    let refused = alice
        .client
        .request(Method::DELETE, "/api/v1/users/me")
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "last_owner");
    assert_eq!(
        body["error"]["rooms"],
        serde_json::json!([{ "id": team.id, "name": "Team" }]),
        "only the room with other members is named: {body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("Team"));
    // Nothing changed.
    alice.client.me().await.unwrap();
    assert_eq!(bob.client.members(team.id).await.unwrap().len(), 2);

    alice
        .client
        .transfer_ownership(team.id, bob.id())
        .await
        .unwrap();
    alice.client.delete_account(PASSWORD, false).await.unwrap();

    let members = bob.client.members(team.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, "owner");
    // The room only alice was in went with her.
    assert_eq!(
        status_and_code(bob.client.join_room(&solo.code, None).await).0,
        404
    );
}

#[tokio::test]
async fn a_wrong_password_deletes_nothing() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    assert_eq!(
        status_and_code(alice.client.delete_account("not the password", false).await),
        (403, "forbidden".into())
    );
    alice.client.me().await.unwrap();
    app.client.login("alice", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn a_direct_room_stays_with_the_other_person() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let dm = bob
        .client
        .direct_room(UserRef::Id(alice.id()))
        .await
        .unwrap();
    alice.client.post_message(dm.id, "bye", None).await.unwrap();

    alice.client.delete_account(PASSWORD, false).await.unwrap();

    let messages = history(&bob, dm.id).await;
    assert_eq!(messages[0].body, "bye");
    let members = bob.client.members(dm.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user.id).collect::<Vec<_>>(),
        [bob.id()]
    );
}

#[tokio::test]
async fn the_username_hold_is_configurable() {
    let app =
        spawn_app_with(|settings| settings.accounts.username_hold = std::time::Duration::ZERO)
            .await;
    let alice = app.signup("alice").await;
    alice.client.delete_account(PASSWORD, false).await.unwrap();
    let again = app.client.register("alice", PASSWORD, None).await.unwrap();
    assert_ne!(again.id, alice.id(), "a new account, not the old one");
    assert!(!again.deleted);
    app.client.login("alice", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn only_a_signed_in_caller_can_ask() {
    let app = spawn_app().await;
    let anonymous = app
        .client
        .request(Method::DELETE, "/api/v1/users/me")
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
