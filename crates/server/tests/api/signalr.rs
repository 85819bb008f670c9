//! The SignalR endpoint's edges, with a raw WebSocket (the stock client's
//! journey is in `clients.rs`): refusals before the upgrade, at the
//! handshake, and the Close message that ends a session.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::live::Socket;

fn hub_url(app: &TestApp, token: &str) -> String {
    let ws = app.base_url.replacen("http", "ws", 1);
    format!("{ws}/hubs/chat?id=anything&access_token={token}")
}

/// The records of the next text message, as JSON.
async fn records(socket: &mut Socket) -> Vec<Value> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            let body = text
                .as_str()
                .strip_suffix('\u{1e}')
                .expect("records end with 0x1E");
            return body
                .split('\u{1e}')
                .map(|r| serde_json::from_str(r).unwrap())
                .collect();
        }
    }
}

/// The close code the socket ends with.
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// Opens the hub's WebSocket and sends `handshake`; the handshake's answer.
async fn handshake(app: &TestApp, token: &str, handshake: Value) -> (Socket, Value) {
    let (mut socket, _) = tokio_tungstenite::connect_async(hub_url(app, token))
        .await
        .unwrap();
    let text = format!("{handshake}\u{1e}");
    socket.send(Message::Text(text.into())).await.unwrap();
    let answer = records(&mut socket).await.remove(0);
    (socket, answer)
}

/// The handshake the stock clients send.
fn json_v1() -> Value {
    json!({"protocol": "json", "version": 1})
}

#[tokio::test]
async fn signalr_refuses_in_its_own_terms_and_closes_with_a_close_message() {
    let app = spawn_app_with(|s| s.realtime.max_sessions_per_user = 1).await;
    let alice = app.signup("alice").await;

    // A bad token never reaches the upgrade.
    match tokio_tungstenite::connect_async(hub_url(&app, "not-a-token")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("a bad token was upgraded: {:?}", other.map(|_| ())),
    }

    // Only the JSON protocol is served.
    let messagepack = json!({"protocol": "messagepack", "version": 1});
    let (_, answer) = handshake(&app, &alice.access_token, messagepack).await;
    assert_eq!(
        answer,
        json!({"error": "invalid_frame: Requested protocol 'messagepack' is not available."})
    );

    // Admitted: `{}`, then `ready`, the first client method invoked.
    let (mut first, answer) = handshake(&app, &alice.access_token, json_v1()).await;
    assert_eq!(answer, json!({}));
    let ready = records(&mut first).await.remove(0);
    assert_eq!(
        (ready["type"].as_u64(), ready["target"].as_str()),
        (Some(1), Some("ready"))
    );
    assert_eq!(ready["arguments"][0]["user"]["id"], json!(alice.id()));
    // The recorder is shared by every test of this process, and others
    // hold SignalR sessions too: this one is counted among them.
    assert!(
        app.metric(r#"palaver_connections{transport="signalr"}"#)
            .await
            >= 1.0
    );

    // The session cap holds across transports: a second session is refused
    // at its handshake, then closed with the code of the same reason.
    let (mut second, answer) = handshake(&app, &alice.access_token, json_v1()).await;
    let error = answer["error"].as_str().unwrap();
    assert!(error.starts_with("too_many_sessions: "), "{error}");
    assert_eq!(close_code(&mut second).await, 4500);

    // The login ends: a Close message says so, not to reconnect, then the
    // WebSocket closes.
    alice.client.logout_all().await.unwrap();
    let close = loop {
        let records = records(&mut first).await;
        if let Some(close) = records.into_iter().find(|r| r["type"] == 7) {
            break close;
        }
    };
    assert_eq!(
        close,
        json!({"type": 7, "error": "session_ended: session ended"})
    );
    assert_eq!(close_code(&mut first).await, 4002);
}

#[tokio::test]
async fn signalr_invocations_refused_by_the_transport_count_against_the_frame_budget() {
    let app = spawn_app_with(|s| {
        s.limits.set(
            palaver_domain::throttle::Limit::FramesPerConnection,
            "3/h".parse().unwrap(),
        )
    })
    .await;
    let alice = app.signup("alice").await;
    let (mut socket, answer) = handshake(&app, &alice.access_token, json_v1()).await;
    assert_eq!(answer, json!({}));

    // Five invocations the transport refuses (the token came with the
    // connection), in one message: the session answers them, so its budget
    // counts them.
    let message: String = (1..=5)
        .map(|n| {
            let call = json!({"type": 1, "invocationId": n.to_string(), "target": "auth", "arguments": [{}]});
            format!("{call}\u{1e}")
        })
        .collect();
    socket.send(Message::Text(message.into())).await.unwrap();
    let mut completions = Vec::new();
    while completions.len() < 5 {
        for record in records(&mut socket).await {
            if record["type"] == 3 {
                let error = record["error"].as_str().unwrap();
                let code = error.split(':').next().unwrap().to_owned();
                completions.push((record["invocationId"].as_str().unwrap().to_owned(), code));
            }
        }
    }
    let expected = [
        ("1", "already_authenticated"),
        ("2", "already_authenticated"),
        ("3", "already_authenticated"),
        ("4", "rate_limited"),
        ("5", "rate_limited"),
    ]
    .map(|(id, code)| (id.to_owned(), code.to_owned()));
    assert_eq!(completions, expected);
}
