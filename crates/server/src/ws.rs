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
use crate::http::websocket::realtime_upgrade;
use crate::node::AppState;
use crate::session;

pub use self::authenticate::{read_first_frame, FirstFrame};

/// The upgrade's query: the token of a client that cannot set headers.
#[derive(Debug, Deserialize)]
pub struct WsParams {
    pub access_token: Option<String>,
}

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
    let cookie_token = cookies::realtime_token(&headers, &state.settings.http.cors_origins);
    let sessions = state.sessions.clone();
    realtime_upgrade(ws, &state.settings).on_upgrade(move |socket| {
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
            let kind = session::TransportKind::WebSocket;
            match Box::pin(session::admit(&deps, auth.bearer, from, kind)).await {
                Ok(admission) => {
                    // A task of its own: the upgrade's task (axum's state for
                    // the upgrade, the authentication's) ends here instead of
                    // staying under the session for the connection's life.
                    let run = session::run(transport, deps, admission, auth.resume);
                    state.sessions.spawn(run);
                }
                Err(reason) => session::close(&mut transport, reason).await,
            }
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
