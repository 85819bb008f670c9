//! The STOMP endpoint's edges, with a raw WebSocket (the stock clients'
//! journeys are in `clients.rs`): what one connection's subscriptions may
//! make the node write.

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::live::stomp::{frame_text, parse, Frame};
use crate::live::Socket;

/// A client frame as a WebSocket message.
fn frame(command: &str, headers: &[(&str, &str)], body: &str) -> Message {
    Message::Text(frame_text(command, headers, body).into())
}

/// The next frame the server wrote (one per WebSocket message).
async fn next_frame(socket: &mut Socket) -> Frame {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let text = text.as_str().trim_start_matches(['\r', '\n']);
        if text.is_empty() {
            continue; // a heart-beat
        }
        return parse(text.strip_suffix('\0').expect("frames end with NUL"));
    }
}

/// A STOMP connection of `token`'s user, past `CONNECTED`.
async fn connect(app: &TestApp, token: &str) -> Socket {
    let url = format!("{}/stomp", app.base_url.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let connect = frame(
        "CONNECT",
        &[
            ("accept-version", "1.2"),
            ("host", "x"),
            ("passcode", token),
        ],
        "",
    );
    socket.send(connect).await.unwrap();
    let connected = next_frame(&mut socket).await;
    assert_eq!(connected.command, "CONNECTED", "{connected:?}");
    socket
}

/// Subscribes and waits for the subscription's receipt.
async fn subscribe(socket: &mut Socket, id: &str, destination: &str) {
    let receipt = format!("sub-{id}");
    let subscribe = frame(
        "SUBSCRIBE",
        &[
            ("id", id),
            ("destination", destination),
            ("receipt", &receipt),
        ],
        "",
    );
    socket.send(subscribe).await.unwrap();
    let answer = next_frame(socket).await;
    assert_eq!(
        (answer.command.as_str(), answer.header("receipt-id")),
        ("RECEIPT", Some(receipt.as_str())),
        "{answer:?}"
    );
}

/// Every frame up to the receipt of a frame sent now: what was already
/// on its way to the client.
async fn frames_until_receipt(socket: &mut Socket, receipt: &str) -> Vec<Frame> {
    let extend = frame(
        "SEND",
        &[("destination", "/app/extendOnline"), ("receipt", receipt)],
        "{}",
    );
    socket.send(extend).await.unwrap();
    let mut frames = Vec::new();
    loop {
        let next = next_frame(socket).await;
        if next.command == "RECEIPT" && next.header("receipt-id") == Some(receipt) {
            return frames;
        }
        frames.push(next);
    }
}

#[tokio::test]
async fn stomp_a_destination_is_followed_once_per_connection() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    let mut socket = connect(&app, &alice.access_token).await;
    let destination = format!("/topic/message/roomId/{}", room.id);
    subscribe(&mut socket, "s1", &destination).await;

    // Another id for the same destination would make every message of the
    // room go out twice on this connection: refused, as STOMP refuses.
    let again = frame(
        "SUBSCRIBE",
        &[
            ("id", "s2"),
            ("destination", &destination),
            ("receipt", "r2"),
        ],
        "",
    );
    socket.send(again).await.unwrap();
    let refused = next_frame(&mut socket).await;
    assert_eq!(
        (
            refused.command.as_str(),
            refused.header("message"),
            refused.header("receipt-id")
        ),
        ("ERROR", Some("invalid_frame"), Some("r2")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn stomp_a_frame_goes_once_to_each_kind_of_destination() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let first = app.room_with(&alice, &[&bob]).await;
    let second = app.room_with(&alice, &[&bob]).await;
    let mut socket = connect(&app, &alice.access_token).await;
    for (id, room) in [("o1", first.id), ("o2", second.id)] {
        subscribe(
            &mut socket,
            id,
            &format!("/topic/onlineStatus/roomId/{room}"),
        )
        .await;
    }
    subscribe(
        &mut socket,
        "m1",
        &format!("/topic/message/roomId/{}", first.id),
    )
    .await;
    subscribe(&mut socket, "rooms", "/user/topic/rooms").await;

    // Bob comes online: one `presence` frame, which belongs to every
    // onlineStatus destination, is one MESSAGE.
    let _bob_online = bob.connect().await;
    let is_bobs_presence = |frame: &Frame| {
        frame.command == "MESSAGE"
            && frame.json()["type"] == "presence"
            && frame.json()["user_id"] == bob.id()
    };
    let online = loop {
        let next = next_frame(&mut socket).await;
        if is_bobs_presence(&next) {
            break next;
        }
    };
    assert_eq!(online.header("subscription"), Some("o1"));
    let after = frames_until_receipt(&mut socket, "after-presence").await;
    assert!(!after.iter().any(is_bobs_presence), "{after:?}");

    // A message belongs to its room's topic and to the room list: one MESSAGE each.
    let sent = bob.client.post_message(first.id, "hi", None).await.unwrap();
    let mut subscriptions = Vec::new();
    while subscriptions.len() < 2 {
        let next = next_frame(&mut socket).await;
        if next.command == "MESSAGE" && next.json()["type"] == "message" {
            assert_eq!(next.json()["seq"], sent.seq);
            subscriptions.push(next.header("subscription").unwrap().to_owned());
        }
    }
    subscriptions.sort();
    assert_eq!(subscriptions, ["m1", "rooms"]);
    let after = frames_until_receipt(&mut socket, "after-message").await;
    assert!(
        !after
            .iter()
            .any(|f| f.command == "MESSAGE" && f.json()["type"] == "message"),
        "{after:?}"
    );
}
