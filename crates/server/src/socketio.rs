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
    let service = tower::ServiceBuilder::new()
        .map_request(owned_head::<axum::body::Body>)
        .service(service);
    axum::Router::new().route_service("/socket.io/", service)
}

/// socketioxide keeps the upgrade request's head for the socket's life, and
/// hyper parsed its URI and header values as slices of the connection's read
/// buffer, which one kept slice holds whole (16 KiB per idle socket). They are
/// copied into allocations of their own first.
fn owned_head<B>(request: axum::http::Request<B>) -> axum::http::Request<B> {
    use axum::extract::OriginalUri;
    use axum::http::{HeaderMap, HeaderValue, Uri};

    let copy_uri = |uri: &Uri| Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone());
    let (mut parts, body) = request.into_parts();
    parts.uri = copy_uri(&parts.uri);
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let mut copied =
            HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copied.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copied);
    }
    parts.headers = headers;
    if let Some(OriginalUri(uri)) = parts.extensions.get::<OriginalUri>() {
        let copied = OriginalUri(copy_uri(uri));
        parts.extensions.insert(copied);
    }
    axum::http::Request::from_parts(parts, body)
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

#[cfg(test)]
mod tests {
    use axum::extract::OriginalUri;
    use axum::http::{HeaderValue, Request, Uri};
    use bytes::Bytes;

    use super::owned_head;

    #[test]
    fn the_kept_head_holds_no_slice_of_the_connections_read_buffer() {
        // As hyper parses a head: every part a slice of one buffer.
        let buffer = Bytes::from(b"/socket.io/?EIO=4&transport=websocket io=1; x=2".to_vec());
        let inside = |bytes: &[u8]| {
            let range = buffer.as_ptr_range();
            range.contains(&bytes.as_ptr())
        };
        let uri = Uri::from_maybe_shared(buffer.slice(0..37)).unwrap();
        let mut request = Request::builder().uri(uri.clone()).body(()).unwrap();
        let mut cookie = HeaderValue::from_maybe_shared(buffer.slice(38..)).unwrap();
        cookie.set_sensitive(true);
        request.headers_mut().insert("cookie", cookie);
        request.extensions_mut().insert(OriginalUri(uri));
        assert!(inside(request.headers()["cookie"].as_bytes()));

        let kept = owned_head(request);
        let cookie = &kept.headers()["cookie"];
        assert_eq!(cookie.as_bytes(), b"io=1; x=2");
        assert!(cookie.is_sensitive());
        assert!(!inside(cookie.as_bytes()));
        assert_eq!(kept.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert!(!inside(kept.uri().path().as_bytes()));
        assert!(!inside(kept.uri().query().unwrap().as_bytes()));
        let OriginalUri(original) = kept.extensions().get::<OriginalUri>().unwrap();
        assert_eq!(original, "/socket.io/?EIO=4&transport=websocket");
        assert!(!inside(original.path().as_bytes()));
    }
}
