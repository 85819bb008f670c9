//! The Socket.IO endpoint's edges, with a raw WebSocket speaking Engine.IO
//! v4 / Socket.IO v5 (the stock client's journey is in `clients.rs`).

use futures::{SinkExt, StreamExt};
use palaver_domain::throttle::Limit;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::live::Socket;

/// The next Engine.IO text packet (pings answered on the way).
async fn next_packet(socket: &mut Socket) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a packet in time")
            .expect("the socket is open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        if text.as_str() == "2" {
            socket.send(Message::Text("3".into())).await.unwrap();
            continue;
        }
        return text.as_str().to_owned();
    }
}

/// A Socket.IO socket of `token`'s user in the main namespace.
async fn connect(app: &TestApp, token: &str) -> Socket {
    let ws = app.base_url.replacen("http", "ws", 1);
    let url = format!("{ws}/socket.io/?EIO=4&transport=websocket");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_packet(&mut socket).await.starts_with('0'), "no open");
    let auth = serde_json::json!({ "token": token });
    socket
        .send(Message::Text(format!("40{auth}").into()))
        .await
        .unwrap();
    loop {
        let packet = next_packet(&mut socket).await;
        assert!(!packet.starts_with("44"), "refused: {packet}");
        if packet.starts_with("40") {
            return socket;
        }
    }
}

#[tokio::test]
async fn socketio_refused_events_count_against_the_frame_budget() {
    let app = spawn_app_with(|s| {
        s.limits
            .set(Limit::FramesPerConnection, "3/h".parse().unwrap())
    })
    .await;
    let alice = app.signup("alice").await;
    let mut socket = connect(&app, &alice.access_token).await;

    // Five events whose argument is not an object, each with an
    // acknowledgement: the session answers them, so its budget counts them.
    for id in 1..=5 {
        let event = format!(r#"42{id}["ping",3]"#);
        socket.send(Message::Text(event.into())).await.unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 5 {
        let packet = next_packet(&mut socket).await;
        let Some(ack) = packet.strip_prefix("43") else {
            continue;
        };
        let start = ack.find('[').unwrap();
        let id: u32 = ack[..start].parse().unwrap();
        let body: Vec<Value> = serde_json::from_str(&ack[start..]).unwrap();
        let code = body[0]["error"]["code"].as_str().unwrap().to_owned();
        answers.push((id, code));
    }
    let expected = [
        (1, "invalid_frame"),
        (2, "invalid_frame"),
        (3, "invalid_frame"),
        (4, "rate_limited"),
        (5, "rate_limited"),
    ]
    .map(|(id, code)| (id, code.to_owned()));
    assert_eq!(answers, expected);
}
