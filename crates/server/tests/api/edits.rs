//! Editing, deleting and replying to messages.

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::types::HistoryQuery;

use crate::helpers::*;

fn edited(frame: ServerFrame) -> Option<(u64, String)> {
    match frame {
        ServerFrame::MessageEdited { seq, body, .. } => Some((seq, body)),
        _ => None,
    }
}

fn deleted(frame: ServerFrame) -> Option<u64> {
    match frame {
        ServerFrame::MessageDeleted { seq, .. } => Some(seq),
        _ => None,
    }
}

#[tokio::test]
async fn only_the_sender_edits_and_every_member_sees_the_new_body() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut bob_ws = bob.connect().await;
    let posted = alice
        .client
        .post_message(room.id, "helo", None)
        .await
        .unwrap();
    next_message(&mut bob_ws).await;

    let fixed = alice
        .client
        .edit_message(room.id, posted.seq, "hello")
        .await
        .unwrap();
    assert_eq!(fixed.body, "hello");
    assert!(fixed.edited_at.is_some());
    assert_eq!(
        next_matching(&mut bob_ws, edited).await,
        (posted.seq, "hello".into())
    );
    let history = bob
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.messages[0].body, "hello");
    assert!(history.messages[0].edited_at.is_some());

    // Someone else's message, a stranger, a missing seq, an empty body.
    assert_eq!(
        status_of(
            bob.client
                .edit_message(room.id, posted.seq, "mine now")
                .await
        ),
        403
    );
    assert_eq!(
        status_of(carol.client.edit_message(room.id, posted.seq, "x").await),
        404
    );
    assert_eq!(
        status_of(alice.client.edit_message(room.id, 99, "x").await),
        404
    );
    assert_eq!(
        status_of(alice.client.edit_message(room.id, posted.seq, "").await),
        422
    );

    // Over WebSocket: success is the event itself; a refusal names the ref.
    let mut alice_ws = alice.connect().await;
    alice_ws
        .send(&ClientFrame::Edit {
            room: room.id,
            seq: posted.seq,
            body: "hello, bob".into(),
            reference: Some("e1".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        next_matching(&mut bob_ws, edited).await,
        (posted.seq, "hello, bob".into())
    );
    bob_ws
        .send(&ClientFrame::Edit {
            room: room.id,
            seq: posted.seq,
            body: "hijack".into(),
            reference: Some("e2".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut bob_ws).await,
        ("forbidden".into(), Some("e2".into()))
    );
}

#[tokio::test]
async fn a_deleted_message_keeps_its_seq_without_a_body() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await; // the owner
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let first = alice
        .client
        .post_message(room.id, "one", None)
        .await
        .unwrap();
    let second = bob.client.post_message(room.id, "two", None).await.unwrap();
    let mut bob_ws = bob.connect().await;

    // A plain member cannot delete someone else's message...
    assert_eq!(
        status_of(bob.client.delete_message(room.id, first.seq).await),
        403
    );
    // ...the sender can, and so can the owner.
    alice
        .client
        .delete_message(room.id, first.seq)
        .await
        .unwrap();
    assert_eq!(next_matching(&mut bob_ws, deleted).await, first.seq);
    alice
        .client
        .delete_message(room.id, second.seq)
        .await
        .unwrap();
    assert_eq!(next_matching(&mut bob_ws, deleted).await, second.seq);
    // Again: nothing changes, no error.
    alice
        .client
        .delete_message(room.id, first.seq)
        .await
        .unwrap();
    assert_eq!(
        status_of(alice.client.delete_message(room.id, 42).await),
        404
    );
    assert_eq!(
        status_of(alice.client.edit_message(room.id, first.seq, "back").await),
        409
    );

    let history = bob
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    let shown: Vec<_> = history
        .messages
        .iter()
        .map(|m| (m.seq, m.deleted, m.body.as_str()))
        .collect();
    assert_eq!(shown, [(1, true, ""), (2, true, "")]);
    // Seqs go on after deleted ones.
    let third = bob
        .client
        .post_message(room.id, "three", None)
        .await
        .unwrap();
    assert_eq!(third.seq, 3);

    bob_ws
        .send(&ClientFrame::Delete {
            room: room.id,
            seq: 3,
            reference: Some("d1".into()),
        })
        .await
        .unwrap();
    assert_eq!(next_matching(&mut bob_ws, deleted).await, 3);
}

#[tokio::test]
async fn a_reply_names_an_existing_message_of_the_same_room() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let other = app.room_with(&bob, &[]).await;
    let question = alice
        .client
        .post_message(room.id, "tea?", None)
        .await
        .unwrap();
    let mut alice_ws = alice.connect().await;

    let answer = bob
        .client
        .post_reply(room.id, "yes please", None, Some(question.seq))
        .await
        .unwrap();
    assert_eq!(answer.reply_to, Some(question.seq));
    let live = next_matching(&mut alice_ws, |frame| match frame {
        ServerFrame::Message { seq, reply_to, .. } => Some((seq, reply_to)),
        _ => None,
    })
    .await;
    assert_eq!(live, (answer.seq, Some(question.seq)));
    let history = alice
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.messages[1].reply_to, Some(question.seq));
    assert_eq!(history.messages[0].reply_to, None);

    // A seq that does not exist in this room (it does in none, or only elsewhere).
    let err = bob
        .client
        .post_reply(room.id, "huh", None, Some(99))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
    assert!(err.to_string().contains("message to reply to"), "{err}");
    bob.client.post_message(other.id, "x", None).await.unwrap();
    bob.client.post_message(other.id, "y", None).await.unwrap();
    assert_eq!(
        status_of(bob.client.post_reply(room.id, "z", None, Some(3)).await),
        404
    );
    // A stranger learns nothing, whatever the reply_to.
    let carol = app.signup("carol").await;
    assert_eq!(
        status_of(carol.client.post_reply(room.id, "z", None, Some(99)).await),
        404
    );
    assert_eq!(
        status_of(carol.client.post_reply(room.id, "z", None, Some(1)).await),
        404
    );
}
