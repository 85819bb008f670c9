//! The baseline: a minimal broadcast server on the same stack as Palaver
//! (tokio, axum, tungstenite), speaking the same frames, with no
//! authentication and no storage. Rooms live in memory; each message gets the
//! room's next seq, is serialized once and offered to every member's bounded
//! queue. The load generator drives it exactly as it drives Palaver, so every
//! Palaver figure can be read as a ratio to this one.
//!
//! `GET /api/v1/ws?room=ROOM&user=USER` joins `ROOM` as `USER`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use futures::SinkExt;
use serde::Deserialize;
use tokio::sync::{mpsc, Mutex};

#[derive(Default)]
struct Room {
    seq: u64,
    members: Vec<mpsc::Sender<Utf8Bytes>>,
}

/// Room id → room; each room has its own lock, taken to order its messages.
#[derive(Default)]
struct Rooms(std::sync::Mutex<HashMap<i64, Arc<Mutex<Room>>>>);

impl Rooms {
    fn room(&self, id: i64) -> Arc<Mutex<Room>> {
        self.0.lock().unwrap().entry(id).or_default().clone()
    }
}

#[derive(Deserialize)]
struct Params {
    room: i64,
    user: i64,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Send {
        room: i64,
        body: String,
        client_id: Option<String>,
    },
    #[serde(other)]
    Other,
}

#[tokio::main]
async fn main() {
    let rooms = Arc::new(Rooms::default());
    let app = Router::new()
        .route("/api/v1/ws", get(upgrade))
        .with_state(rooms);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    // As Palaver does: small frames go out now, not after the peer's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.unwrap();
}

async fn upgrade(
    State(rooms): State<Arc<Rooms>>,
    Query(params): Query<Params>,
    ws: WebSocketUpgrade,
) -> Response {
    // A small read buffer, as Palaver's (its http/websocket.rs; 256 bytes
    // there, 1 KiB here so that ratios stay comparable across builds): the
    // ratio should measure what Palaver adds, not a library default
    // (snapview/tungstenite-rs#547).
    ws.read_buffer_size(1024)
        .on_upgrade(move |socket| session(socket, rooms, params))
}

async fn session(mut socket: WebSocket, rooms: Arc<Rooms>, params: Params) {
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(1024);
    let room = rooms.room(params.room);
    let last_seq = {
        let mut room = room.lock().await;
        room.members.push(tx.clone());
        room.seq
    };
    let ready = format!(
        r#"{{"type":"ready","user":{{"id":{}}},"rooms":[{{"id":{},"last_seq":{last_seq}}}]}}"#,
        params.user, params.room
    );
    if socket.send(Message::Text(ready.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(first) = out else { return };
                if socket.feed(Message::Text(first)).await.is_err() {
                    return;
                }
                while let Ok(next) = rx.try_recv() {
                    if socket.feed(Message::Text(next)).await.is_err() {
                        return;
                    }
                }
                if socket.flush().await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(Message::Text(text))) = incoming else { return };
                let Ok(ClientFrame::Send { room: room_id, body, client_id, .. }) = serde_json::from_str(text.as_str()) else {
                    continue;
                };
                if room_id != params.room {
                    continue;
                }
                let client_id = serde_json::to_string(&client_id).unwrap();
                let ack = {
                    let mut room = room.lock().await;
                    room.seq += 1;
                    let seq = room.seq;
                    let frame: Utf8Bytes = format!(
                        r#"{{"type":"message","room":{room_id},"seq":{seq},"sender_id":{},"body":{},"created_at":"","client_id":{client_id}}}"#,
                        params.user,
                        serde_json::to_string(&body).unwrap(),
                    )
                    .into();
                    room.members.retain(|member| !matches!(member.try_send(frame.clone()), Err(mpsc::error::TrySendError::Closed(_))));
                    format!(r#"{{"type":"ack","client_id":{client_id},"room":{room_id},"seq":{seq},"created_at":""}}"#)
                };
                if tx.try_send(ack.into()).is_err() {
                    return;
                }
            }
        }
    }
}
