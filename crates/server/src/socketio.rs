//! Socket.IO (protocol v5, what `socket.io-client` 4.x speaks) at
//! `/socket.io/`: socketioxide does the protocol; a connection is admitted
//! and authenticated in the namespace's connect middleware, so a refusal is a
//! `connect_error` whose message is the machine code, then runs the one
//! session core (`crate::session`) with `transport.rs` as its transport.
//!
//! Mapping (docs/socketio.md): an event name is a frame `type` of
//! docs/protocol.md and its one argument the frame's other fields, both
//! ways; a request sent with an acknowledgement callback is answered through
//! it (`transport.rs`).

mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, TransportType};

use self::transport::SocketIoTransport;
use crate::http::cookies;
use crate::http::extract::client_address;
use crate::node::AppState;
use crate::session::{self, Admission, TransportKind};

/// What the client sends as `auth` in its handshake.
#[derive(Debug, Default, Deserialize)]
struct Handshake {
    /// An access token; without one, the sign-in cookie of an allowed origin.
    #[serde(default)]
    token: Option<String>,
    /// Room id → the last seq the client saw: replayed before anything live.
    #[serde(default)]
    resume: Option<BTreeMap<String, u64>>,
}

/// What the connect middleware hands the connect handler.
struct Opening {
    admission: Admission,
    resume: Option<BTreeMap<String, u64>>,
}

/// One socket's opening, between the middleware and the handler (socket
/// extensions hold only `Clone` values).
#[derive(Clone)]
struct OpeningSlot(Arc<Mutex<Option<Opening>>>);

/// A refused handshake: its `connect_error` message is the machine code.
#[derive(Debug)]
struct Refusal(&'static str);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// What a Socket.IO packet adds to a frame's JSON: its type, ack id and
/// event name (`42<id>["<event>",…]`).
const PACKET_ENVELOPE_BYTES: usize = 64;

/// The Socket.IO endpoint, served beside REST under the HTTP layers.
pub fn routes(state: &AppState) -> axum::Router<AppState> {
    let settings = &state.settings;
    let (service, io) = SocketIo::builder()
        .req_path("/socket.io")
        // The WebSocket only: long-polling would keep a session's state
        // between requests that the connection limits do not see.
        .transports([TransportType::Websocket])
        .max_payload(settings.max_frame_bytes() as u64)
        // `max_payload` bounds long-polling bodies only: the WebSocket's own
        // limits bound a packet here (the frame's fields, its event name and
        // ack id around them).
        .ws_max_message_size(settings.max_frame_bytes() + PACKET_ENVELOPE_BYTES)
        .ws_max_frame_size(settings.max_frame_bytes() + PACKET_ENVELOPE_BYTES)
        // engine.io's WebSocket is tungstenite's too: the same small read
        // buffer as every other WebSocket here (its default is 4 KiB, held by
        // every idle socket).
        .ws_read_buffer_size(crate::http::websocket::READ_BUFFER_BYTES)
        .max_buffer_size(settings.realtime.queue_capacity)
        .connect_timeout(settings.realtime.auth_timeout)
        .build_svc();
    let admitting = state.clone();
    let serving = state.clone();
    io.ns(
        "/",
        (move |socket: SocketRef| {
            let state = serving.clone();
            async move { serve(socket, state) }
        })
        .with(
            move |socket: SocketRef, TryData(handshake): TryData<Handshake>| {
                let state = admitting.clone();
                async move { admit(&socket, &state, handshake.unwrap_or_default()).await }
            },
        ),
    );
    axum::Router::new().route_service("/socket.io/", service)
}

/// Authenticates the handshake and admits its session, or refuses it.
async fn admit(socket: &SocketRef, state: &AppState, handshake: Handshake) -> Result<(), Refusal> {
    let parts = socket.req_parts();
    let token = match handshake.token {
        Some(token) => token,
        None => cookies::realtime_token(&parts.headers, &state.settings.http.cors_origins)
            .ok_or(Refusal("unauthorized"))?,
    };
    let bearer = state
        .services
        .accounts
        .verify_token(&token)
        .await
        .map_err(|_| Refusal("unauthorized"))?;
    let from = client_address(parts, state).ok_or(Refusal("internal"))?;
    let admission = session::admit(&state.session_deps(), bearer, from, TransportKind::SocketIo)
        .await
        .map_err(|reason| Refusal(reason.error_code()))?;
    socket
        .extensions
        .insert(OpeningSlot(Arc::new(Mutex::new(Some(Opening {
            admission,
            resume: handshake.resume,
        })))));
    Ok(())
}

/// Runs the admitted socket's session until either side ends it.
fn serve(socket: SocketRef, state: AppState) {
    let opening = socket
        .extensions
        .remove::<OpeningSlot>()
        .and_then(|slot| slot.0.lock().take());
    let Some(Opening { admission, resume }) = opening else {
        // The middleware admits every socket that reaches here.
        tracing::error!("a Socket.IO connection without its admission");
        let _ = socket.disconnect();
        return;
    };
    let transport = SocketIoTransport::attach(socket);
    let deps = state.session_deps();
    state
        .sessions
        .spawn(session::run(transport, deps, admission, resume));
}
