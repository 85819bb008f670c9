//! WebSocket transport (`GET /api/v1/ws`): authenticate, then run a session
//! that feeds the domain with client frames and the socket with hub events.

mod authenticate;
mod frames;
mod session;

use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use crate::http::extract::bearer_token;
use crate::http::AppState;

#[derive(Debug, Deserialize)]
pub struct WsParams {
    access_token: Option<String>,
}

/// tungstenite zero-fills its read buffer up to this size before *every* read
/// (snapview/tungstenite-rs#547): with the 128 KiB default that is a 128 KiB
/// memset per socket poll and 128 KiB of RSS per idle connection. Chat frames
/// are small; a larger frame grows the buffer on demand (tungstenite reserves
/// the frame's length once its header is read), up to the frame limit.
const READ_BUFFER_BYTES: usize = 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    ws: WebSocketUpgrade,
) -> Response {
    // A token in the header or query is checked after the upgrade, so every
    // client (browsers included) learns of a bad token the same way: close 4001.
    let token = bearer_token(&headers)
        .map(str::to_owned)
        .or(params.access_token);
    let max_frame = state.settings.max_frame_bytes;
    let sessions = state.sessions.clone();
    ws.max_message_size(max_frame)
        .max_frame_size(max_frame)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| sessions.track_future(session::run(socket, state, token)))
}
