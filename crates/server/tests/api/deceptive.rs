//! Input that deceives a reader (direction overrides, control characters,
//! names made of invisible characters) is refused on every transport, naming
//! the field, and nothing of it is stored.

use palaver_client::frames::ClientFrame;
use palaver_client::types::HistoryQuery;
use palaver_client::ClientError;

use crate::helpers::*;

/// The status, code and message of a call that must fail with an API error.
fn refusal(result: Result<impl std::fmt::Debug, ClientError>) -> (u16, String, String) {
    match result.expect_err("expected an API error") {
        ClientError::Api {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn a_body_with_a_direction_override_is_refused_over_rest_and_websocket_and_nothing_is_stored()
{
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;
    let reversed = "see invoice\u{202E}fdp.exe";

    let (status, code, message) = refusal(alice.client.post_message(room.id, reversed, None).await);
    assert_eq!((status, code.as_str()), (422, "invalid_input"));
    assert!(message.starts_with("body"), "{message}");
    assert!(message.contains("override"), "{message}");
    let (status, code, _) = refusal(
        alice
            .client
            .post_message(room.id, "\u{1b}[2J\u{1b}]0;pwned\u{7}", None)
            .await,
    );
    assert_eq!((status, code.as_str()), (422, "invalid_input"));

    alice_ws
        .send(&send_frame(room.id, reversed, Some("rlo")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut alice_ws).await,
        ("invalid_input".into(), Some("rlo".into()))
    );
    alice_ws
        .send(&send_frame(room.id, "\u{2067}never closed", Some("rli")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut alice_ws).await,
        ("invalid_input".into(), Some("rli".into()))
    );

    // A message kept, then an edit that would slip the override in.
    alice_ws
        .send(&send_frame(room.id, "plain", Some("plain")))
        .await
        .unwrap();
    let (_, seq) = next_ack(&mut alice_ws).await;
    assert_eq!(next_message(&mut bob_ws).await.seq, seq);
    let (status, code, _) = refusal(alice.client.edit_message(room.id, seq, reversed).await);
    assert_eq!((status, code.as_str()), (422, "invalid_input"));
    alice_ws
        .send(&ClientFrame::Edit {
            room: room.id,
            seq,
            body: reversed.into(),
            reference: Some("edit".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut alice_ws).await,
        ("invalid_input".into(), Some("edit".into()))
    );

    // Nothing refused reached anyone, nor the history.
    assert_no_message(&mut bob_ws).await;
    let page = bob
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["plain"]);
    assert!(page.messages[0].edited_at.is_none());
}

#[tokio::test]
async fn right_to_left_text_and_emoji_sequences_are_stored_as_sent() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice
        .client
        .create_room("שלום \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", None)
        .await
        .unwrap();
    let body = "\u{200F}שלום!\u{200F} \u{2067}עולם\u{2069}\n\tمرحبا \u{1F1EB}\u{1F1F7}";
    let sent = alice
        .client
        .post_message(room.id, body, None)
        .await
        .unwrap();
    assert_eq!(sent.body, body);
    assert_eq!(alice.client.room(room.id).await.unwrap().name, room.name);
}

#[tokio::test]
async fn names_that_deceive_are_refused_naming_the_field_and_nothing_changes() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("den", None).await.unwrap();

    for (name, reason) in [
        ("den\u{202E}gnp.exe", "direction controls"),
        ("\u{2066}den", "direction controls"),
        ("\u{200F}den", "direction controls"),
        ("\u{200B}\u{200D}\u{3164}", "visible"),
        ("\u{E0041}\u{E0042}", "visible"),
        ("den\u{2028}lobby", "separators"),
        ("den\u{1b}[2J", "control characters"),
    ] {
        let (status, code, message) = refusal(alice.client.create_room(name, None).await);
        assert_eq!((status, code.as_str()), (422, "invalid_input"), "{name:?}");
        assert!(message.starts_with("name"), "{name:?}: {message}");
        assert!(message.contains(reason), "{name:?}: {message}");
        let (status, _, message) =
            refusal(alice.client.update_room(room.id, Some(name), None).await);
        assert_eq!(status, 422, "{name:?}");
        assert!(message.starts_with("name"), "{name:?}: {message}");
        let (status, _, message) = refusal(alice.client.update_display_name(name).await);
        assert_eq!(status, 422, "{name:?}");
        assert!(message.starts_with("display_name"), "{name:?}: {message}");
        let (status, _, message) = refusal(
            app.client
                .register("mallory", "correct horse battery", Some(name))
                .await,
        );
        assert_eq!(status, 422, "{name:?}");
        assert!(message.starts_with("display_name"), "{name:?}: {message}");
    }

    let rooms = alice.client.rooms().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].room.name, "den");
    assert_eq!(alice.client.me().await.unwrap().display_name, "alice");
}
