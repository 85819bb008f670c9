//! Mentions: `@username` of a member, told to them alone on every
//! transport, counted in their room list until read, listed by
//! `GET /users/me/mentions` (and gRPC), gone with the message; a name that is
//! not a member's is just text. On both stores.

use palaver_client::frames::ServerFrame;
use palaver_client::grpc::proto;
use palaver_client::types::mentions::{MentionPage, MentionQuery};
use palaver_client::types::Message;

use crate::helpers::*;
use crate::live::{Live, Via, EVERY};

async fn post(user: &TestUser, room: i64, body: &str) -> Message {
    user.client.post_message(room, body, None).await.unwrap()
}

async fn mentions(user: &TestUser, cursor: Option<&str>, limit: Option<u32>) -> MentionPage {
    let query = MentionQuery {
        cursor: cursor.map(str::to_owned),
        limit,
    };
    user.client.mentions(&query).await.unwrap()
}

/// (room, seq) of each mention listed, in order.
fn listed(page: &MentionPage) -> Vec<(i64, u64)> {
    (page.mentions.iter())
        .map(|mention| (mention.message.room_id, mention.message.seq))
        .collect()
}

/// The caller's unread mentions in `room`, from their room list.
async fn unread_mentions(user: &TestUser, room: i64) -> u64 {
    let rooms = user.client.rooms().await.unwrap();
    (rooms.iter().find(|summary| summary.room.id == room))
        .expect("the room is in the list")
        .unread_mentions
}

fn mentioned(frame: ServerFrame) -> Option<(i64, u64, i64)> {
    match frame {
        ServerFrame::Mentioned {
            room,
            seq,
            sender_id,
        } => Some((room, seq, sender_id)),
        _ => None,
    }
}

#[tokio::test]
async fn the_member_named_is_told_on_every_transport_and_no_one_else() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let carol = app.signup("carol").await;
        let room = app.room_with(&alice, &[&bob]).await;
        // Carol shares another room with alice, not this one.
        app.room_with(&carol, &[&alice]).await;
        let mut at_bob = bob.live(&app, via, None).await;
        let mut at_carol = carol.live(&app, via, None).await;
        let mut at_alice = alice.live(&app, via, None).await;

        let sent = post(&alice, room.id, "@Bob and @carol, meet @alice").await;
        assert_eq!(
            next_matching(&mut at_bob, mentioned).await,
            (room.id, sent.seq, alice.id()),
            "{via:?}"
        );
        // Carol is not a member: her name is just text. Alice named herself.
        assert_no_frame(&mut at_carol, |f| {
            matches!(f, ServerFrame::Mentioned { .. })
        })
        .await;
        assert_no_frame(&mut at_alice, |f| {
            matches!(f, ServerFrame::Mentioned { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn a_mention_reaches_every_connection_of_the_member_whatever_they_follow() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    // A STOMP client following none of the room's topics (the room muted)
    // still hears of the mention on its user destination.
    let mut muted = Live::connect(&app, Via::Stomp, Some(&bob.access_token), &[], None)
        .await
        .unwrap();
    let mut ws = bob.connect().await;
    let sent = post(&alice, room.id, "ping @bob").await;
    assert_eq!(next_matching(&mut ws, mentioned).await.1, sent.seq);
    assert_eq!(next_matching(&mut muted, mentioned).await.1, sent.seq);
}

#[tokio::test]
async fn the_room_list_counts_unread_mentions_until_the_marker_passes_them() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let first = post(&alice, room.id, "@bob one").await;
    post(&alice, room.id, "no one").await;
    let second = post(&alice, room.id, "@bob @bob two, @carol").await;
    assert_eq!(unread_mentions(&bob, room.id).await, 2);
    assert_eq!(unread_mentions(&alice, room.id).await, 0);

    bob.client.mark_read(room.id, first.seq).await.unwrap();
    assert_eq!(unread_mentions(&bob, room.id).await, 1);
    bob.client.mark_read(room.id, second.seq).await.unwrap();
    assert_eq!(unread_mentions(&bob, room.id).await, 0);

    // Read or not, they stay listed; carol, not a member, has none.
    assert_eq!(
        listed(&mentions(&bob, None, None).await),
        [(room.id, second.seq), (room.id, first.seq)]
    );
    assert!(mentions(&carol, None, None).await.mentions.is_empty());
}

#[tokio::test]
async fn mentions_page_newest_first_and_bad_pages_are_refused() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let one = app.room_with(&alice, &[&bob]).await;
    let two = app.room_with(&alice, &[&bob]).await;
    let a = post(&alice, one.id, "@bob a").await;
    let b = post(&alice, two.id, "@bob b").await;
    let c = post(&alice, one.id, "@bob c").await;

    let page = mentions(&bob, None, Some(2)).await;
    assert_eq!(listed(&page), [(one.id, c.seq), (two.id, b.seq)]);
    assert_eq!(page.mentions[1].room_name, two.name);
    let next = page.next.expect("a second page");
    let rest = mentions(&bob, Some(&next), Some(2)).await;
    assert_eq!(listed(&rest), [(one.id, a.seq)]);
    assert!(rest.next.is_none());

    for (cursor, limit) in [(Some("nonsense"), None), (None, Some(0)), (None, Some(101))] {
        let query = MentionQuery {
            cursor: cursor.map(str::to_owned),
            limit,
        };
        assert_eq!(
            status_and_code(bob.client.mentions(&query).await),
            (422, "invalid_input".into()),
            "{cursor:?} {limit:?}"
        );
    }
}

#[tokio::test]
async fn a_deleted_message_a_left_room_and_an_edit_change_what_is_mentioned() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let kept = post(&alice, room.id, "@bob stays").await;
    let doomed = post(&alice, room.id, "@bob goes").await;
    alice
        .client
        .delete_message(room.id, doomed.seq)
        .await
        .unwrap();
    assert_eq!(
        listed(&mentions(&bob, None, None).await),
        [(room.id, kept.seq)]
    );
    assert_eq!(unread_mentions(&bob, room.id).await, 1);

    // Mentions are made when a message is posted: an edit adds none.
    let plain = post(&alice, room.id, "no one yet").await;
    alice
        .client
        .edit_message(room.id, plain.seq, "now @bob")
        .await
        .unwrap();
    assert_eq!(unread_mentions(&bob, room.id).await, 1);

    // A room left is no longer read from.
    let other = app.room_with(&alice, &[&bob]).await;
    post(&alice, other.id, "@bob over here").await;
    bob.client.leave(other.id).await.unwrap();
    assert_eq!(
        listed(&mentions(&bob, None, None).await),
        [(room.id, kept.seq)]
    );
}

#[tokio::test]
async fn erasing_an_account_takes_the_mentions_it_made_and_a_deleted_room_its_own() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&bob, &[&alice, &carol]).await;
    post(&alice, room.id, "@bob from alice").await;
    let from_carol = post(&carol, room.id, "@bob from carol").await;
    alice.client.delete_account(PASSWORD, true).await.unwrap();
    assert_eq!(
        listed(&mentions(&bob, None, None).await),
        [(room.id, from_carol.seq)]
    );
    assert_eq!(unread_mentions(&bob, room.id).await, 1);

    let doomed = app.room_with(&carol, &[&bob]).await;
    post(&carol, doomed.id, "@bob in a room about to go").await;
    carol.client.delete_room(doomed.id).await.unwrap();
    assert_eq!(
        listed(&mentions(&bob, None, None).await),
        [(room.id, from_carol.seq)]
    );
}

#[tokio::test]
async fn grpc_lists_mentions_and_counts_them_as_rest_does() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let sent = post(&alice, room.id, "hey @bob").await;
    let grpc = bob.grpc().await;
    let list = grpc
        .messages()
        .mentions(proto::MentionsRequest {
            cursor: None,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.mentions.len(), 1);
    let message = list.mentions[0].message.as_ref().unwrap();
    assert_eq!((message.room_id, message.seq), (room.id, sent.seq));
    assert_eq!(list.mentions[0].room_name, room.name);
    assert!(list.next.is_none());
    let rooms = grpc.rooms().list_rooms(proto::Empty {}).await.unwrap();
    let summary = (rooms.into_inner().rooms.into_iter())
        .find(|summary| summary.room.as_ref().unwrap().id == room.id)
        .unwrap();
    assert_eq!(summary.unread_mentions, 1);
    let bad = grpc
        .messages()
        .mentions(proto::MentionsRequest {
            cursor: Some("x".into()),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
