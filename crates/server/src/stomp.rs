//! STOMP 1.2 (1.1, 1.0) over WebSocket at `/stomp` and `/ws/chat`: read the
//! `CONNECT` frame, authenticate and admit its session, then run the one
//! session core (`crate::session`) with `transport.rs` as its transport.
//!
//! The frames are `palaver_protocol::stomp`'s; the destinations and what
//! they carry are docs/stomp.md's.

mod transport;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use palaver_domain::throttle::ClientAddr;
use palaver_protocol::close_code::CloseReason;
use palaver_protocol::stomp::{Command, Decoder, Frame, HeartBeat, HeartBeats, Limits, Version};

use self::transport::{close_error, StompTransport};
use crate::http::cookies;
use crate::http::extract::{bearer_of, bearer_token, ClientAddress};
use crate::http::websocket::realtime_upgrade;
use crate::node::AppState;
use crate::session::{self, TransportKind};

/// Header lines in one frame: the spec's and a client's own, with room.
const MAX_HEADERS: usize = 64;
/// A command or header line: room for an access token.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// How often the server is willing to send heart-beats and wants them, in
/// milliseconds (a client may ask for less often; never more often).
const HEART_BEAT: HeartBeat = HeartBeat {
    can_send_ms: 10_000,
    wants_ms: 10_000,
};

/// The STOMP endpoint, with the Spring design's path as an alias.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/stomp", axum::routing::get(upgrade))
        .route("/ws/chat", axum::routing::get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let tokens = UpgradeTokens {
        bearer: bearer_token(&headers).map(str::to_owned),
        cookie: cookies::realtime_token(&headers, &state.settings.http.cors_origins),
    };
    let sessions = state.sessions.clone();
    // Echoes the newest version the client offers; a client that offers
    // none (stomp.py) is served all the same.
    realtime_upgrade(ws, &state.settings)
        .protocols(Version::ALL.map(Version::subprotocol))
        .on_upgrade(move |socket| sessions.track_future(serve(socket, state, from, tokens)))
}

/// Tokens the upgrade request carried, used when `CONNECT` has none.
struct UpgradeTokens {
    bearer: Option<String>,
    cookie: Option<String>,
}

/// What a `CONNECT` frame agreed on.
#[derive(Debug)]
struct Connected {
    token: Option<String>,
    version: Version,
    heart_beat: HeartBeat,
    heart_beats: HeartBeats,
}

/// Why the connection ends before any session.
enum Refused {
    /// An `ERROR` frame to send, then close.
    Error(Frame),
    /// The socket went away, or the server is shutting down.
    Gone,
}

async fn serve(mut socket: WebSocket, state: AppState, from: ClientAddr, tokens: UpgradeTokens) {
    let limits = Limits {
        max_frame_bytes: state.settings.max_frame_bytes(),
        max_headers: MAX_HEADERS,
        max_line_bytes: MAX_LINE_BYTES,
    };
    let mut decoder = Decoder::new(limits);
    // Boxed: a rare, one-off path that every idle connection's future would
    // otherwise carry inline.
    let connected = Box::pin(read_connect(&mut socket, &mut decoder, &state)).await;
    let connect = match connected {
        Ok(connect) => connect,
        Err(Refused::Error(frame)) => return refuse(socket, decoder, &state, frame).await,
        Err(Refused::Gone) => return,
    };
    let verified = match connect.token.clone().or(tokens.bearer).or(tokens.cookie) {
        Some(token) => Box::pin(state.services.accounts.verify_token(&token))
            .await
            .map_err(|_| "invalid or expired access token"),
        None => Err("no token: neither in CONNECT nor a sign-in cookie from an allowed origin"),
    };
    let bearer = match verified {
        Ok(bearer) => bearer,
        Err(reason) => {
            let frame = close_error(CloseReason::Unauthorized(reason));
            return refuse(socket, decoder, &state, frame).await;
        }
    };
    decoder.set_version(connect.version);
    let answer = Frame::new(Command::Connected)
        .with_header("version", connect.version.as_str())
        .with_header("heart-beat", connect.heart_beat.header_value())
        .with_header("server", concat!("palaver/", env!("CARGO_PKG_VERSION")));
    let user = bearer.user;
    let mut transport = StompTransport::new(
        socket,
        decoder,
        state.services.clone(),
        user,
        answer,
        connect.heart_beats,
    );
    let deps = state.session_deps();
    match Box::pin(session::admit(&deps, bearer, from, TransportKind::Stomp)).await {
        Ok(admission) => {
            // A task of its own, so the upgrade's ends (as in `ws.rs`).
            state
                .sessions
                .spawn(session::run(transport, deps, admission, None));
        }
        Err(reason) => session::close(&mut transport, reason).await,
    }
}

/// Sends `error` and closes, before any session.
async fn refuse(socket: WebSocket, decoder: Decoder, state: &AppState, error: Frame) {
    let heart_beats = HeartBeats {
        server_sends_every_ms: None,
        client_sends_every_ms: None,
    };
    let answer = Frame::new(Command::Connected);
    let mut transport = StompTransport::new(
        socket,
        decoder,
        state.services.clone(),
        palaver_domain::UserId(0),
        answer,
        heart_beats,
    );
    transport.refuse(error).await;
}

/// Reads the `CONNECT` (or `STOMP`) frame within the authentication timeout.
async fn read_connect(
    socket: &mut WebSocket,
    decoder: &mut Decoder,
    state: &AppState,
) -> Result<Connected, Refused> {
    let deadline = tokio::time::Instant::now() + state.settings.realtime.auth_timeout;
    let frame = loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => break frame,
            Ok(None) => {}
            Err(err) => return Err(Refused::Error(err.to_frame(None))),
        }
        let received = tokio::select! {
            _ = state.shutdown.cancelled() => {
                return Err(Refused::Error(close_error(CloseReason::Shutdown)))
            }
            received = tokio::time::timeout_at(deadline, socket.recv()) => received,
        };
        match received {
            Err(_) => {
                let reason = CloseReason::Unauthorized("authentication timed out");
                return Err(Refused::Error(close_error(reason)));
            }
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                return Err(Refused::Gone)
            }
            Ok(Some(Ok(Message::Text(text)))) => decoder.feed(text.as_bytes()),
            Ok(Some(Ok(Message::Binary(bytes)))) => decoder.feed(&bytes),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
        }
    };
    read_connect_frame(&frame).map_err(Refused::Error)
}

/// What a first frame says, or the `ERROR` refusing it.
fn read_connect_frame(frame: &Frame) -> Result<Connected, Frame> {
    if !matches!(frame.command, Command::Connect | Command::Stomp) {
        return Err(Frame::error(
            "unauthorized",
            "the first frame must be CONNECT or STOMP",
            frame.header("receipt"),
        ));
    }
    let version = Version::negotiate(frame.header("accept-version")).map_err(|err| {
        err.to_frame(None)
            .with_header("version", Version::SUPPORTED)
    })?;
    let client = palaver_protocol::stomp::HeartBeat::parse(frame.header("heart-beat"))
        .map_err(|err| err.to_frame(None))?;
    let (heart_beat, heart_beats) = HEART_BEAT.answer(client);
    let header_token = frame
        .header("Authorization")
        .and_then(bearer_of)
        .map(str::to_owned);
    let token = header_token.or_else(|| {
        frame
            .header("passcode")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
    });
    Ok(Connected {
        token,
        version,
        heart_beat,
        heart_beats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(headers: &[(&str, &str)]) -> Frame {
        headers
            .iter()
            .fold(Frame::new(Command::Connect), |frame, (name, value)| {
                frame.with_header(*name, *value)
            })
    }

    #[test]
    fn the_token_comes_from_authorization_or_passcode() {
        let by_header = read_connect_frame(&connect(&[
            ("accept-version", "1.1,1.2"),
            ("Authorization", "Bearer abc"),
            ("passcode", "other"),
        ]))
        .unwrap();
        assert_eq!(by_header.token.as_deref(), Some("abc"));
        assert_eq!(by_header.version, Version::V1_2);
        let by_passcode =
            read_connect_frame(&connect(&[("login", "alice"), ("passcode", "xyz")])).unwrap();
        assert_eq!(by_passcode.token.as_deref(), Some("xyz"));
        assert_eq!(by_passcode.version, Version::V1_0);
        assert_eq!(read_connect_frame(&connect(&[])).unwrap().token, None);
    }

    #[test]
    fn heart_beats_are_agreed_never_faster_than_the_server_allows() {
        let agreed = read_connect_frame(&connect(&[("heart-beat", "1000,1000")])).unwrap();
        assert_eq!(agreed.heart_beat.header_value(), "10000,10000");
        assert_eq!(agreed.heart_beats.server_sends_every_ms, Some(10_000));
        let none = read_connect_frame(&connect(&[])).unwrap();
        assert_eq!(none.heart_beat.header_value(), "0,0");
    }

    #[test]
    fn a_first_frame_that_is_not_connect_is_refused_in_stomp_terms() {
        let refused = read_connect_frame(&Frame::new(Command::Send).with_header("receipt", "r1"))
            .unwrap_err();
        assert_eq!(refused.command, Command::Error);
        assert_eq!(refused.header("message"), Some("unauthorized"));
        assert_eq!(refused.header("receipt-id"), Some("r1"));
        let refused = read_connect_frame(&connect(&[("accept-version", "2.0")])).unwrap_err();
        assert_eq!(refused.header("message"), Some("invalid_frame"));
        assert_eq!(refused.header("version"), Some(Version::SUPPORTED));
        let refused = read_connect_frame(&connect(&[("heart-beat", "x")])).unwrap_err();
        assert_eq!(refused.header("message"), Some("invalid_frame"));
    }
}
