//! Building and sending frames: the only place that turns domain values and
//! errors into WebSocket messages.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use palaver_domain::Error;
use palaver_protocol::ws::ServerFrame;

/// The WebSocket form of a domain error.
pub fn error_frame(err: &Error, reference: Option<String>) -> ServerFrame {
    ServerFrame::Error {
        code: err.code().into(),
        message: err.to_string(),
        reference,
    }
}

pub fn protocol_error(
    code: &str,
    message: impl Into<String>,
    reference: Option<String>,
) -> ServerFrame {
    ServerFrame::Error {
        code: code.into(),
        message: message.into(),
        reference,
    }
}

pub fn text(frame: &ServerFrame) -> Message {
    Message::Text(Utf8Bytes::from(frame.to_json()))
}

/// Sends a close frame, then reads until the peer answers (or briefly times
/// out): closing the TCP socket with unread input would reset it, and a reset
/// can destroy the close frame before the client reads it.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    // Bounded: a client that reads nothing has a full buffer, and the close
    // frame would wait behind it forever.
    let sent = tokio::time::timeout(
        Duration::from_secs(2),
        socket.send(Message::Close(Some(frame))),
    );
    if !matches!(sent.await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
