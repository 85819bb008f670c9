//! The edges every real-time transport shares, each in its own terms: a
//! client that does not authenticate within `--ws-auth-timeout-ms` is let
//! go, and a frame over `--max-frame-bytes` ends the connection. (The
//! WebSocket's and gRPC's own are in `websocket.rs` and `grpc.rs`.)

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::live::stomp::{frame_text, parse};
use crate::live::Socket;

async fn raw_socket(app: &TestApp, path: &str) -> Socket {
    let url = format!("{}{path}", app.base_url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Every text message the server writes until it closes the socket.
async fn texts_until_closed(socket: &mut Socket) -> Vec<String> {
    let mut texts = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => texts.push(text.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the server closes the socket in time");
    texts
}

#[tokio::test]
async fn a_client_that_does_not_authenticate_in_time_is_let_go_on_every_transport() {
    let app = spawn_app_with(|s| s.realtime.auth_timeout = Duration::from_millis(300)).await;
    let alice = app.signup("alice").await;

    // Socket.IO: the Engine.IO session opens; no namespace connect follows.
    let mut socketio = raw_socket(&app, "/socket.io/?EIO=4&transport=websocket").await;
    let texts = texts_until_closed(&mut socketio).await;
    assert!(
        texts[0].starts_with('0'),
        "the Engine.IO open packet: {texts:?}"
    );
    assert!(
        texts.iter().all(|t| !t.starts_with("40")),
        "never connected: {texts:?}"
    );

    // STOMP: no CONNECT.
    let mut stomp = raw_socket(&app, "/stomp").await;
    let texts = texts_until_closed(&mut stomp).await;
    let error = parse(texts.concat().trim_end_matches('\0'));
    assert_eq!(
        (error.command.as_str(), error.header("message")),
        ("ERROR", Some("unauthorized"))
    );

    // SignalR: the socket opens with a good token; no handshake follows.
    let path = format!("/hubs/chat?id=x&access_token={}", alice.access_token);
    let mut signalr = raw_socket(&app, &path).await;
    let texts = texts_until_closed(&mut signalr).await;
    let answer: serde_json::Value =
        serde_json::from_str(texts[0].trim_end_matches('\u{1e}')).unwrap();
    assert_eq!(answer["error"], "unauthorized: handshake timed out");
}

/// A `send` whose body alone is over the frame limit.
fn oversized_send(room: i64) -> serde_json::Value {
    json!({"room": room, "body": "x".repeat(4000), "client_id": "big"})
}

#[tokio::test]
async fn a_frame_over_the_limit_ends_the_connection_on_every_transport() {
    let app = spawn_app_with(|s| s.realtime.max_frame_bytes = Some(2000)).await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();

    // Socket.IO: the Engine.IO packet is over the payload limit.
    let mut socketio = raw_socket(&app, "/socket.io/?EIO=4&transport=websocket").await;
    let auth = json!({ "token": alice.access_token });
    socketio
        .send(Message::Text(format!("40{auth}").into()))
        .await
        .unwrap();
    let packet = format!("42{}", json!(["send", oversized_send(room.id)]));
    socketio.send(Message::Text(packet.into())).await.unwrap();
    let texts = texts_until_closed(&mut socketio).await;
    assert!(
        texts.iter().all(|t| !t.contains("\"ack\"")),
        "nothing acknowledged: {texts:?}"
    );

    // STOMP: ERROR frame_too_large, then the close.
    let mut stomp = raw_socket(&app, "/stomp").await;
    let connect = frame_text(
        "CONNECT",
        &[("accept-version", "1.2"), ("passcode", &alice.access_token)],
        "",
    );
    stomp.send(Message::Text(connect.into())).await.unwrap();
    let destination = format!("/app/message/roomId/{}", room.id);
    let body = oversized_send(room.id).to_string();
    let send = frame_text("SEND", &[("destination", &destination)], &body);
    stomp.send(Message::Text(send.into())).await.unwrap();
    let texts = texts_until_closed(&mut stomp).await;
    let frames: Vec<_> = texts
        .concat()
        .split('\0')
        .map(|raw| raw.trim_start_matches(['\r', '\n']).to_owned())
        .filter(|raw| !raw.is_empty())
        .collect();
    let error = parse(frames.last().unwrap());
    assert_eq!(
        (error.command.as_str(), error.header("message")),
        ("ERROR", Some("frame_too_large"))
    );

    // SignalR: a Close message naming the reason.
    let path = format!("/hubs/chat?id=x&access_token={}", alice.access_token);
    let mut signalr = raw_socket(&app, &path).await;
    let handshake = format!("{}\u{1e}", json!({"protocol": "json", "version": 1}));
    signalr.send(Message::Text(handshake.into())).await.unwrap();
    let invocation = json!({"type": 1, "target": "send", "arguments": [oversized_send(room.id)]});
    signalr
        .send(Message::Text(format!("{invocation}\u{1e}").into()))
        .await
        .unwrap();
    let texts = texts_until_closed(&mut signalr).await;
    let close = texts
        .concat()
        .split('\u{1e}')
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .find(|r| r["type"] == 7)
        .expect("a Close message");
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .starts_with("frame_too_large"),
        "{close}"
    );

    let history = alice
        .client
        .history(room.id, &Default::default())
        .await
        .unwrap();
    assert!(history.messages.is_empty(), "nothing oversized stored");
}
