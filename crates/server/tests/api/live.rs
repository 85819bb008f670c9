//! One real-time connection over any of the five transports, so the
//! conformance checks (`realtime.rs`) are written once and run on each. The
//! WebSocket and gRPC connections are the client library's; Socket.IO,
//! STOMP and SignalR are minimal clients here (`live/`) that turn each
//! protocol's own requests, replies and endings back into the frames of
//! protocol.md.

mod signalr;
mod socketio;
pub mod stomp;

use std::collections::BTreeMap;
use std::time::Duration;

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::live::Connection;
use palaver_client::{ClientError, Transport, WsAuth};
use serde_json::{json, Value};

use crate::helpers::{ReadFrames, TestApp, TestUser, WAIT};

pub use signalr::SignalRClient;
pub use socketio::SocketIoClient;
pub use stomp::StompClient;

/// A raw WebSocket, as the minimal clients speak over it.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The transports the client library drives (and so `LiveSession`).
pub const BOTH: [Transport; 2] = [Transport::WebSocket, Transport::Grpc];

/// A real-time transport of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    WebSocket,
    Grpc,
    SocketIo,
    Stomp,
    SignalR,
}

/// Every real-time transport.
pub const EVERY: [Via; 5] = [
    Via::WebSocket,
    Via::Grpc,
    Via::SocketIo,
    Via::Stomp,
    Via::SignalR,
];

/// The transports that carry every frame of protocol.md both ways (STOMP
/// carries messages, typing and read markers to destinations, and has no
/// `ready`, `edit`, `delete`, `resume` or `ping`).
pub const FRAMED: [Via; 4] = [Via::WebSocket, Via::Grpc, Via::SocketIo, Via::SignalR];

/// A client's connection, with the tests' expectations about it.
pub enum Live {
    Library(Connection),
    SocketIo(SocketIoClient),
    Stomp(StompClient),
    SignalR(SignalRClient),
}

impl TestUser {
    /// A real-time connection over `via`, resuming `resume` from the start.
    pub async fn live(
        &self,
        app: &TestApp,
        via: Via,
        resume: Option<BTreeMap<String, u64>>,
    ) -> Live {
        self.try_live(app, via, resume)
            .await
            .unwrap_or_else(|code| panic!("{via:?} refused: {code}"))
    }

    /// A real-time connection over `via`, or the machine code it was
    /// refused with.
    pub async fn try_live(
        &self,
        app: &TestApp,
        via: Via,
        resume: Option<BTreeMap<String, u64>>,
    ) -> Result<Live, String> {
        let token = &self.access_token;
        Ok(match via {
            Via::WebSocket => {
                let auth = WsAuth::Frame {
                    token: token.clone(),
                    resume,
                };
                let ws = app.connect_raw(auth).await.map_err(|e| code_of(&e))?;
                Live::Library(Connection::WebSocket(ws))
            }
            Via::Grpc => {
                let stream = self.grpc().await.stream(resume).await;
                Live::Library(Connection::Grpc(stream.map_err(|e| code_of(&e))?))
            }
            Via::SocketIo | Via::Stomp | Via::SignalR => {
                let mut rooms = Vec::new();
                if via == Via::Stomp {
                    let listed = self.client.rooms().await.map_err(|e| e.to_string())?;
                    rooms.extend(listed.iter().map(|r| r.room.id));
                }
                Live::connect(app, via, Some(token), &rooms, resume).await?
            }
        })
    }
}

/// The machine code of a refused WebSocket or gRPC connection.
fn code_of(err: &ClientError) -> String {
    match err {
        ClientError::Closed { code, .. } => close_code_meaning(*code),
        other => other
            .code()
            .map_or_else(|| other.to_string(), str::to_owned),
    }
}

/// What a WebSocket close code means, in machine codes.
fn close_code_meaning(code: u16) -> String {
    match code {
        1001 => "shutting_down".into(),
        1009 => "frame_too_large".into(),
        1013 => "slow_consumer".into(),
        4001 => "unauthorized".into(),
        4002 => "session_ended".into(),
        4500 => "too_many_sessions".into(),
        other => format!("close {other}"),
    }
}

impl Live {
    /// A connection over Socket.IO, STOMP or SignalR with `token` (or
    /// none), following `rooms` where the protocol follows rooms one by
    /// one (STOMP) and resuming `resume`; or the machine code it was
    /// refused with.
    pub async fn connect(
        app: &TestApp,
        via: Via,
        token: Option<&str>,
        rooms: &[i64],
        resume: Option<BTreeMap<String, u64>>,
    ) -> Result<Live, String> {
        Ok(match via {
            Via::SocketIo => Live::SocketIo(SocketIoClient::connect(app, token, resume).await?),
            Via::Stomp => Live::Stomp(StompClient::connect(app, token, rooms, resume).await?),
            Via::SignalR => Live::SignalR(SignalRClient::connect(app, token, resume).await?),
            Via::WebSocket | Via::Grpc => unreachable!("the client library connects {via:?}"),
        })
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        match self {
            Live::Library(connection) => connection.send(frame).await,
            Live::SocketIo(client) => client.send(frame).await,
            Live::Stomp(client) => client.send(frame).await,
            Live::SignalR(client) => client.send(frame).await,
        }
        .expect("frame sent")
    }

    /// The session's `ready` (STOMP has none).
    pub fn ready(&self) -> Option<&ServerFrame> {
        match self {
            Live::Library(connection) => Some(connection.ready().expect("ready received")),
            Live::SocketIo(client) => client.ready(),
            Live::Stomp(_) => None,
            Live::SignalR(client) => client.ready(),
        }
    }

    /// How the server ended the connection, in one vocabulary: the machine
    /// code a gRPC status, Socket.IO `close` event, STOMP `ERROR` or SignalR
    /// Close message carries, or what a WebSocket close code means.
    pub async fn ended(&mut self) -> String {
        let err = tokio::time::timeout(WAIT, async {
            loop {
                if let Err(err) = self.next_frame().await {
                    return err;
                }
            }
        })
        .await
        .expect("the server ends the connection in time");
        match (self, err) {
            (_, ClientError::Status { code, .. }) => code,
            (Live::Library(_), ClientError::Closed { code, .. }) => close_code_meaning(code),
            (_, ClientError::Closed { reason, .. }) => reason,
            (_, other) => panic!("ended by {other}"),
        }
    }
}

impl ReadFrames for Live {
    async fn next_frame(&mut self) -> palaver_client::Result<ServerFrame> {
        match self {
            Live::Library(connection) => connection.next_frame().await,
            Live::SocketIo(client) => client.next_frame().await,
            Live::Stomp(client) => client.next_frame().await,
            Live::SignalR(client) => client.next_frame().await,
        }
    }

    async fn next_frame_within(
        &mut self,
        wait: Duration,
    ) -> palaver_client::Result<Option<ServerFrame>> {
        let Live::Library(connection) = self else {
            return match tokio::time::timeout(wait, self.next_frame()).await {
                Ok(frame) => frame.map(Some),
                Err(_) => Ok(None),
            };
        };
        connection.next_frame_within(wait).await
    }
}

/// A client frame as Socket.IO and SignalR carry it: the event or method
/// its `type` names, its other fields as the one argument, and the
/// reference an answer names it by.
fn request_parts(frame: &ClientFrame) -> (String, Value, Option<String>) {
    let mut fields = json!(frame);
    let kind = fields["type"].as_str().unwrap().to_owned();
    fields.as_object_mut().unwrap().remove("type");
    (kind, fields, frame.reference().map(str::to_owned))
}

/// The frame a successful reply to a `kind` request named `reference`
/// stands in for: the `ack` of a `send`, the `pong` of a `ping` (the reply
/// carries no reference: the callback or invocation is the reference); the
/// others succeed silently, as on the WebSocket.
fn answered(kind: &str, mut reply: Value, reference: Option<String>) -> Option<ServerFrame> {
    match kind {
        "send" => reply["type"] = json!("ack"),
        "ping" => {
            assert_eq!(
                reply,
                json!({"type": "pong"}),
                "a pong, and nothing of the server's"
            );
            reply["ref"] = json!(reference);
        }
        _ => return None,
    }
    Some(serde_json::from_value(reply).expect("a reply with the frame's fields"))
}
