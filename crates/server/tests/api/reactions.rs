//! Reactions: put and taken back over REST, gRPC and every real-time
//! transport, idempotent, counted per emoji in history (with `me`), capped,
//! and gone with their message or their author's account.

use std::collections::BTreeMap;

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::grpc::proto;
use palaver_client::types::{HistoryQuery, Message, ReactionCount};

use crate::helpers::*;
use crate::live::{Via, EVERY, FRAMED};

/// (seq, user, emoji, added) of a reaction frame.
type Change = (u64, i64, String, bool);

fn reaction_change(frame: ServerFrame) -> Option<Change> {
    match frame {
        ServerFrame::ReactionAdded {
            seq,
            user_id,
            emoji,
            ..
        } => Some((seq, user_id, emoji, true)),
        ServerFrame::ReactionRemoved {
            seq,
            user_id,
            emoji,
            ..
        } => Some((seq, user_id, emoji, false)),
        _ => None,
    }
}

fn is_reaction(frame: &ServerFrame) -> bool {
    matches!(
        frame,
        ServerFrame::ReactionAdded { .. } | ServerFrame::ReactionRemoved { .. }
    )
}

fn counts(emoji: &str, count: u32, me: bool) -> ReactionCount {
    ReactionCount {
        emoji: emoji.into(),
        count,
        me,
    }
}

async fn history(user: &TestUser, room: i64) -> Vec<Message> {
    user.client
        .history(room, &HistoryQuery::default())
        .await
        .unwrap()
        .messages
}

/// The reactions of message `seq` in `user`'s history of the room.
async fn reactions_seen(user: &TestUser, room: i64, seq: u64) -> Vec<ReactionCount> {
    let messages = history(user, room).await;
    let message = messages.iter().find(|m| m.seq == seq).expect("in history");
    message.reactions.clone()
}

#[tokio::test]
async fn a_reaction_is_put_once_counted_in_history_and_taken_back_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let first = alice
        .client
        .post_message(room.id, "one", None)
        .await
        .unwrap();
    let second = alice
        .client
        .post_message(room.id, "two", None)
        .await
        .unwrap();
    let mut at_bob = bob.connect().await;

    alice.client.react(room.id, first.seq, "👍").await.unwrap();
    assert_eq!(
        next_matching(&mut at_bob, reaction_change).await,
        (first.seq, alice.id(), "👍".into(), true)
    );
    // Again: no second reaction, no second event.
    alice.client.react(room.id, first.seq, "👍").await.unwrap();
    bob.client.react(room.id, first.seq, "👍").await.unwrap();
    bob.client
        .react(room.id, first.seq, ":tada:")
        .await
        .unwrap();
    assert_eq!(
        next_matching(&mut at_bob, reaction_change).await,
        (first.seq, bob.id(), "👍".into(), true),
        "the repeated PUT told no one"
    );
    assert_eq!(
        next_matching(&mut at_bob, reaction_change).await,
        (first.seq, bob.id(), ":tada:".into(), true)
    );

    // One entry per emoji, in the order they first came; `me` per reader.
    assert_eq!(
        reactions_seen(&alice, room.id, first.seq).await,
        [counts("👍", 2, true), counts(":tada:", 1, false)]
    );
    assert_eq!(
        reactions_seen(&bob, room.id, first.seq).await,
        [counts("👍", 2, true), counts(":tada:", 1, true)]
    );
    assert!(reactions_seen(&bob, room.id, second.seq).await.is_empty());

    alice
        .client
        .unreact(room.id, first.seq, "👍")
        .await
        .unwrap();
    assert_eq!(
        next_matching(&mut at_bob, reaction_change).await,
        (first.seq, alice.id(), "👍".into(), false)
    );
    alice
        .client
        .unreact(room.id, first.seq, "👍")
        .await
        .unwrap();
    alice
        .client
        .unreact(room.id, first.seq, ":tada:")
        .await
        .unwrap();
    assert_no_frame(&mut at_bob, is_reaction).await;
    assert_eq!(
        reactions_seen(&alice, room.id, first.seq).await,
        [counts("👍", 1, false), counts(":tada:", 1, false)]
    );
}

#[tokio::test]
async fn only_one_emoji_or_a_short_name_is_a_reaction() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    let posted = alice
        .client
        .post_message(room.id, "hi", None)
        .await
        .unwrap();
    for emoji in ["👍🏽", "🇫🇷", "👨‍👩‍👧‍👦", "❤️", "1️⃣", ":+1:", ":party-parrot_2:"]
    {
        alice
            .client
            .react(room.id, posted.seq, emoji)
            .await
            .unwrap();
        alice
            .client
            .unreact(room.id, posted.seq, emoji)
            .await
            .unwrap();
    }
    for emoji in ["ok", "👍👍", "1", ":Caps:", "::", "<b>", " 👍", "👍 "] {
        assert_eq!(
            status_and_code(alice.client.react(room.id, posted.seq, emoji).await),
            (422, "invalid_input".into()),
            "{emoji:?}"
        );
    }
    assert!(reactions_seen(&alice, room.id, posted.seq).await.is_empty());
}

#[tokio::test]
async fn a_stranger_and_a_missing_message_learn_nothing() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[]).await;
    let posted = alice
        .client
        .post_message(room.id, "hi", None)
        .await
        .unwrap();
    let stranger = status_and_code(carol.client.react(room.id, posted.seq, "👍").await);
    let no_room = status_and_code(carol.client.react(987_654, posted.seq, "👍").await);
    assert_eq!(stranger, (404, "not_found".into()));
    assert_eq!(stranger, no_room, "a stranger's answer is no room's");
    assert_eq!(
        status_and_code(carol.client.unreact(room.id, posted.seq, "👍").await),
        no_room
    );
    assert_eq!(
        status_and_code(alice.client.react(room.id, 99, "👍").await),
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn reactions_die_with_their_message_and_a_deleted_message_takes_none() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let posted = alice
        .client
        .post_message(room.id, "hi", None)
        .await
        .unwrap();
    bob.client.react(room.id, posted.seq, "👍").await.unwrap();
    alice
        .client
        .delete_message(room.id, posted.seq)
        .await
        .unwrap();

    assert!(reactions_seen(&bob, room.id, posted.seq).await.is_empty());
    assert_eq!(
        status_and_code(bob.client.react(room.id, posted.seq, "👍").await),
        (409, "conflict".into())
    );
    // Taking one back from it: nothing is there, nothing to do.
    bob.client.unreact(room.id, posted.seq, "👍").await.unwrap();
}

#[tokio::test]
async fn a_deleted_accounts_reactions_go_with_it_and_the_counts_follow() {
    for erase in [true, false] {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let posted = alice
            .client
            .post_message(room.id, "hi", None)
            .await
            .unwrap();
        alice.client.react(room.id, posted.seq, "👍").await.unwrap();
        bob.client.react(room.id, posted.seq, "👍").await.unwrap();
        bob.client.react(room.id, posted.seq, "🎉").await.unwrap();
        bob.client.delete_account(PASSWORD, erase).await.unwrap();
        assert_eq!(
            reactions_seen(&alice, room.id, posted.seq).await,
            [counts("👍", 1, true)],
            "erase: {erase}"
        );
    }
}

#[tokio::test]
async fn a_message_holds_at_most_20_emoji_and_a_user_at_most_5_of_them() {
    let app = spawn_app().await;
    let mut people = Vec::new();
    for n in 0..5 {
        people.push(app.signup(&format!("user{n}")).await);
    }
    let others: Vec<&TestUser> = people[1..].iter().collect();
    let room = app.room_with(&people[0], &others).await;
    let posted = (people[0].client)
        .post_message(room.id, "vote", None)
        .await
        .unwrap();
    let emoji = |n: usize| format!(":e{n}:");
    for (who, person) in people[..4].iter().enumerate() {
        for n in 0..5 {
            let name = emoji(who * 5 + n);
            person
                .client
                .react(room.id, posted.seq, &name)
                .await
                .unwrap();
        }
        assert_eq!(
            status_and_code(person.client.react(room.id, posted.seq, ":one-more:").await),
            (409, "conflict".into()),
            "a sixth of one user's"
        );
    }
    let last = &people[4];
    assert_eq!(
        status_and_code(last.client.react(room.id, posted.seq, ":e20:").await),
        (409, "conflict".into()),
        "a 21st emoji"
    );
    // One already there is no new emoji; and taking one back makes room.
    last.client
        .react(room.id, posted.seq, &emoji(0))
        .await
        .unwrap();
    (people[0].client)
        .unreact(room.id, posted.seq, &emoji(1))
        .await
        .unwrap();
    last.client
        .react(room.id, posted.seq, ":e20:")
        .await
        .unwrap();
    let seen = reactions_seen(last, room.id, posted.seq).await;
    assert_eq!(seen.len(), 20);
    assert_eq!(seen[0], counts(":e0:", 2, true));
}

#[tokio::test]
async fn every_transport_reacts_and_every_member_hears_it() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let posted = alice
            .client
            .post_message(room.id, "hi", None)
            .await
            .unwrap();
        let mut at_alice = alice.live(&app, via, None).await;
        let mut at_bob = bob.live(&app, via, None).await;
        let react = |emoji: &str, reference: &str, remove: bool| {
            let (room, seq, emoji, reference) = (
                room.id,
                posted.seq,
                emoji.to_owned(),
                Some(reference.into()),
            );
            if remove {
                ClientFrame::Unreact {
                    room,
                    seq,
                    emoji,
                    reference,
                }
            } else {
                ClientFrame::React {
                    room,
                    seq,
                    emoji,
                    reference,
                }
            }
        };
        at_alice.send(&react("🎉", "r1", false)).await;
        let added = (posted.seq, alice.id(), "🎉".to_owned(), true);
        assert_eq!(
            next_matching(&mut at_bob, reaction_change).await,
            added,
            "{via:?}"
        );
        assert_eq!(
            next_matching(&mut at_alice, reaction_change).await,
            added,
            "{via:?}"
        );
        // A connection's requests run side by side: each waits for the
        // last one's effect (or, for one that changes nothing, a quiet spell).
        at_alice.send(&react("🎉", "r2", false)).await;
        assert_no_frame(&mut at_bob, is_reaction).await;
        at_alice.send(&react("🎉", "r3", true)).await;
        let removed = (posted.seq, alice.id(), "🎉".to_owned(), false);
        assert_eq!(
            next_matching(&mut at_bob, reaction_change).await,
            removed,
            "{via:?}: the repeated react told no one"
        );
        assert_no_frame(&mut at_bob, is_reaction).await;
        if FRAMED.contains(&via) {
            at_alice.send(&react("nope", "r4", false)).await;
            assert_eq!(
                next_error(&mut at_alice).await,
                ("invalid_input".into(), Some("r4".into())),
                "{via:?}"
            );
        }
        assert!(reactions_seen(&bob, room.id, posted.seq).await.is_empty());
    }
}

#[tokio::test]
async fn a_replayed_message_carries_its_reactions_as_its_reader_sees_them() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let posted = alice
            .client
            .post_message(room.id, "hi", None)
            .await
            .unwrap();
        alice.client.react(room.id, posted.seq, "👍").await.unwrap();
        bob.client.react(room.id, posted.seq, "👍").await.unwrap();
        alice.client.react(room.id, posted.seq, "🎉").await.unwrap();

        let resume = BTreeMap::from([(room.id.to_string(), 0)]);
        let mut at_bob = bob.live(&app, via, Some(resume)).await;
        let replayed = next_matching(&mut at_bob, |frame| match frame {
            ServerFrame::Message { seq, reactions, .. } => Some((seq, reactions)),
            _ => None,
        })
        .await;
        assert_eq!(
            replayed,
            (
                posted.seq,
                vec![counts("👍", 2, true), counts("🎉", 1, false)]
            ),
            "{via:?}"
        );
        if via == Via::Stomp {
            continue;
        }
        // A live message has none yet, and says nothing of them.
        alice
            .client
            .post_message(room.id, "more", None)
            .await
            .unwrap();
        let live = next_matching(&mut at_bob, |frame| match frame {
            ServerFrame::Message {
                seq: 2, reactions, ..
            } => Some(reactions),
            _ => None,
        })
        .await;
        assert!(live.is_empty(), "{via:?}");
    }
}

#[tokio::test]
async fn grpc_reacts_and_its_history_counts_them() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let posted = alice
        .client
        .post_message(room.id, "hi", None)
        .await
        .unwrap();
    let (alice_grpc, bob_grpc) = (alice.grpc().await, bob.grpc().await);
    let request = |emoji: &str| proto::ReactionRequest {
        room_id: room.id,
        seq: posted.seq,
        emoji: emoji.into(),
    };
    alice_grpc.messages().react(request("👍")).await.unwrap();
    bob_grpc.messages().react(request("👍")).await.unwrap();
    bob_grpc.messages().react(request(":tada:")).await.unwrap();
    bob_grpc
        .messages()
        .unreact(request(":tada:"))
        .await
        .unwrap();
    let refused = alice_grpc
        .messages()
        .react(request("no"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let page = alice_grpc
        .messages()
        .history(proto::HistoryRequest {
            room_id: room.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.messages[0].reactions,
        [proto::ReactionCount {
            emoji: "👍".into(),
            count: 2,
            me: true,
        }]
    );
}

#[tokio::test]
async fn one_connections_reactions_take_effect_in_the_order_sent() {
    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let posted = alice
            .client
            .post_message(room.id, "hi", None)
            .await
            .unwrap();
        let mut at_alice = alice.live(&app, via, None).await;
        let mut at_bob = bob.live(&app, via, None).await;
        // A toggle clicked nine times, sent without waiting: on, off, on…
        const CLICKS: usize = 9;
        for click in 0..CLICKS {
            let (room, seq, emoji, reference) = (
                room.id,
                posted.seq,
                "👍".to_owned(),
                Some(format!("t{click}")),
            );
            let frame = if click % 2 == 0 {
                ClientFrame::React {
                    room,
                    seq,
                    emoji,
                    reference,
                }
            } else {
                ClientFrame::Unreact {
                    room,
                    seq,
                    emoji,
                    reference,
                }
            };
            at_alice.send(&frame).await;
        }
        for click in 0..CLICKS {
            let (_, user, emoji, added) = next_matching(&mut at_bob, reaction_change).await;
            assert_eq!(
                (user, emoji.as_str(), added),
                (alice.id(), "👍", click % 2 == 0),
                "{via:?}: click {click} took effect out of order"
            );
        }
        assert_eq!(
            reactions_seen(&bob, room.id, posted.seq).await,
            vec![counts("👍", 1, false)],
            "{via:?}: the toggle ends where it was left"
        );
    }
}
