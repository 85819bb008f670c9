//! WebSocket transport (`GET /api/v1/ws`): authenticate, then hand the
//! socket to a session (`crate::session`) as its transport.

mod authenticate;
mod socket;

use axum::extract::ws::WebSocket;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use palaver_domain::throttle::ClientAddr;
use palaver_protocol::close_code::CloseReason;
use serde::Deserialize;

use self::authenticate::{authenticate, Refused};
use self::socket::WsTransport;
use crate::http::cookies;
use crate::http::extract::{bearer_token, ClientAddress};
use crate::node::AppState;
use crate::session;

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

/// The WebSocket's routes, served beside REST under the HTTP layers.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/api/v1/ws", axum::routing::get(upgrade))
}

pub async fn upgrade(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    ws: WebSocketUpgrade,
) -> Response {
    // A token in the header or query is checked after the upgrade, so every
    // client (browsers included) learns of a bad token the same way: close 4001.
    let token = bearer_token(&headers)
        .map(str::to_owned)
        .or(params.access_token);
    // A browser sends its cookies to any page's WebSocket: only our own and
    // the listed origins may sign in with them.
    let cookie_token = cookies::read(&headers, cookies::ACCESS)
        .filter(|_| cookies::origin_allowed(&headers, &state.settings.cors_origins));
    let max_frame = state.settings.max_frame_bytes;
    let sessions = state.sessions.clone();
    ws.max_message_size(max_frame)
        .max_frame_size(max_frame)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            sessions.track_future(serve(socket, state, from, token, cookie_token))
        })
}

async fn serve(
    mut socket: WebSocket,
    state: AppState,
    from: ClientAddr,
    token: Option<String>,
    cookie_token: Option<String>,
) {
    // Boxed: a rare, one-off path that every idle connection's future would
    // otherwise carry inline.
    let authenticated = Box::pin(authenticate(&mut socket, &state, token, cookie_token)).await;
    let mut transport = WsTransport::new(socket);
    match authenticated {
        Ok(auth) => {
            let deps = state.session_deps();
            session::run(transport, deps, auth.bearer, from, auth.resume).await
        }
        Err(Refused::Unauthorized(reason)) => {
            session::close(&mut transport, CloseReason::Unauthorized(reason)).await
        }
        Err(Refused::Gone) => {
            if state.shutdown.is_cancelled() {
                session::close(&mut transport, CloseReason::Shutdown).await
            }
        }
    }
}
