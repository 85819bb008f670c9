//! SignalR (the JSON hub protocol, what `@microsoft/signalr` and the .NET
//! client speak) at `/hubs/chat`: negotiate, then a WebSocket that is
//! authenticated before its upgrade, admitted after its handshake (so a
//! refusal is the handshake's error), and then runs the one session core
//! (`crate::session`) with `transport.rs` as its transport.
//!
//! Mapping (docs/signalr.md): a hub method or client method is a frame
//! `type` of docs/protocol.md and its one argument the frame's other
//! fields, both ways; an invocation awaiting a result is answered by its
//! completion (`transport.rs`).

mod transport;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use palaver_domain::throttle::ClientAddr;
use palaver_domain::tokens::Bearer;
use palaver_domain::Error;
use palaver_protocol::close_code::{self, CloseReason};
use palaver_protocol::signalr::{
    read_handshake, HandshakeResponse, Limits, NegotiateResponse, SignalRError,
};
use serde::Deserialize;

use self::transport::SignalRTransport;
use crate::http::error::ApiError;
use crate::http::extract::{bearer_token, AppQuery, ClientAddress};
use crate::http::websocket::realtime_upgrade;
use crate::node::AppState;
use crate::session::{self, TransportKind};

/// Records in one WebSocket message, at most: a burst's worth.
const MAX_RECORDS_PER_MESSAGE: usize = 64;

/// The token of a client that cannot set headers (the browser's WebSocket):
/// what the stock clients send as `access_token`.
#[derive(Debug, Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// The hub's routes, served beside REST under the HTTP layers.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/hubs/chat/negotiate", axum::routing::post(negotiate))
        .route("/hubs/chat", axum::routing::get(upgrade))
}

/// The token of `Authorization: Bearer`, else of `access_token`; 401 without.
fn token(headers: &HeaderMap, query: TokenQuery) -> Result<String, ApiError> {
    bearer_token(headers)
        .map(str::to_owned)
        .or(query.access_token)
        .ok_or_else(|| Error::Unauthorized("missing access token").into())
}

/// `POST /hubs/chat/negotiate?negotiateVersion=1`: version 1, WebSockets
/// as text only. Nothing is kept: the connection token is random, and the
/// WebSocket that presents it authenticates again.
async fn negotiate(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(query): AppQuery<TokenQuery>,
) -> Result<Json<NegotiateResponse>, ApiError> {
    let token = token(&headers, query)?;
    state.services.accounts.authenticate(&token).await?;
    let random = || format!("{:032x}", rand::random::<u128>());
    Ok(Json(NegotiateResponse::websockets(random(), random())))
}

/// `GET /hubs/chat?id=…`: a bad token is refused with 401 before the upgrade,
/// as at negotiate. The `id` is not checked (no state is kept for it), so a
/// client that skips negotiation connects too.
async fn upgrade(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    AppQuery(query): AppQuery<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let verified = match token(&headers, query) {
        Ok(token) => state.services.accounts.verify_token(&token).await,
        Err(refused) => return refused.into_response(),
    };
    // Whether its login is live, the session checks once it listens for its end.
    let bearer = match verified {
        Ok(bearer) => bearer,
        Err(err) => return ApiError::from(err).into_response(),
    };
    let sessions = state.sessions.clone();
    realtime_upgrade(ws, &state.settings)
        .on_upgrade(move |socket| sessions.track_future(serve(socket, state, from, bearer)))
}

/// Why a connection ends at its handshake.
enum Refusal {
    /// The handshake is not one served (`{"error":"invalid_frame: …"}`).
    Handshake(SignalRError),
    /// The session is not admitted, or the handshake came too late.
    Closing(CloseReason),
    /// The client went away.
    Gone,
}

async fn serve(mut socket: WebSocket, state: AppState, from: ClientAddr, bearer: Bearer) {
    let limits = Limits {
        max_record_bytes: state.settings.max_frame_bytes(),
        max_records: MAX_RECORDS_PER_MESSAGE,
    };
    // Boxed: a one-off path that every idle connection's future would
    // otherwise carry inline.
    let handshake = Box::pin(handshake(&mut socket, &state, &limits)).await;
    let deps = state.session_deps();
    let admitted = match handshake {
        Ok(leftover) => Box::pin(session::admit(&deps, bearer, from, TransportKind::SignalR))
            .await
            .map(|admission| (admission, leftover))
            .map_err(Refusal::Closing),
        Err(refusal) => Err(refusal),
    };
    let (admission, leftover) = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => return Box::pin(refuse(socket, refusal)).await,
    };
    if socket
        .send(Message::Text(handshake_record(&HandshakeResponse::ok())))
        .await
        .is_err()
    {
        return;
    }
    let transport = SignalRTransport::new(socket, limits, &leftover);
    // A task of its own, so the upgrade's ends (as in `ws.rs`).
    state
        .sessions
        .spawn(session::run(transport, deps, admission, None));
}

/// Reads the handshake within the authentication timeout; what followed it
/// in its message.
async fn handshake(
    socket: &mut WebSocket,
    state: &AppState,
    limits: &Limits,
) -> Result<Vec<u8>, Refusal> {
    let first_text = async {
        loop {
            match socket.recv().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Err(Refusal::Gone),
                Some(Ok(Message::Text(text))) => return Ok(text),
                Some(Ok(Message::Binary(_))) => {
                    return Err(Refusal::Closing(CloseReason::UnsupportedData))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            }
        }
    };
    let timeout = state.settings.realtime.auth_timeout;
    let received = tokio::select! {
        _ = state.shutdown.cancelled() => return Err(Refusal::Closing(CloseReason::Shutdown)),
        received = tokio::time::timeout(timeout, first_text) => received,
    };
    let text = received
        .map_err(|_| Refusal::Closing(CloseReason::Unauthorized("handshake timed out")))??;
    let (_, leftover) = read_handshake(text.as_bytes(), limits).map_err(Refusal::Handshake)?;
    Ok(leftover.to_vec())
}

/// Answers the handshake with its error, closes the WebSocket, and waits
/// (briefly) for the client's close, as `session::close` does.
async fn refuse(mut socket: WebSocket, refusal: Refusal) {
    let (error, close) = match refusal {
        Refusal::Gone => return,
        Refusal::Handshake(err) => (
            err.to_string(),
            CloseFrame {
                code: close_code::NORMAL,
                reason: Utf8Bytes::from_static("handshake refused"),
            },
        ),
        Refusal::Closing(reason) => (
            format!("{}: {}", reason.error_code(), reason.reason()),
            CloseFrame {
                code: reason.code(),
                reason: Utf8Bytes::from_static(reason.reason()),
            },
        ),
    };
    let answer = handshake_record(&HandshakeResponse::error(error));
    let sent = tokio::time::timeout(session::CLOSE_TIMEOUT, async {
        socket.send(Message::Text(answer)).await?;
        socket.send(Message::Close(Some(close))).await
    });
    if !matches!(sent.await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(session::CLOSE_TIMEOUT, async {
        while socket.next().await.is_some() {}
    })
    .await;
}

fn handshake_record(response: &HandshakeResponse) -> Utf8Bytes {
    String::from_utf8(response.encode())
        .expect("JSON records are UTF-8")
        .into()
}
