//! Live sessions over either transport.
//!
//! [`Connection`] is one real-time connection, WebSocket or gRPC
//! `Realtime.Connect`, speaking the frames of docs/protocol.md. [`LiveSession`]
//! keeps one open for as long as the login lasts: when the connection drops it
//! reconnects with jittered exponential back-off, resumes every room from the
//! last seq it handed out (so nothing is skipped and nothing repeated), and
//! sends again every `send` the server has not acknowledged, under the same
//! `client_id`, which the server recognises as a retry.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use palaver_protocol::ws::{ClientFrame, ServerFrame};
use rand::Rng;
use tokio::time::Instant;

use crate::grpc::{GrpcClient, GrpcConnection};
use crate::tls::Trust;
use crate::ws::{WsAuth, WsConnection};
use crate::{ClientError, Result};

/// Which stream carries the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    Grpc,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::WebSocket => "WebSocket",
            Transport::Grpc => "gRPC",
        })
    }
}

/// One live connection.
// The WebSocket holds its rustls session inline (about 1.5 KB, over four
// times a gRPC stream): there is one per live session, so a box saves nothing.
#[allow(clippy::large_enum_variant)]
pub enum Connection {
    WebSocket(WsConnection),
    Grpc(GrpcConnection),
}

impl Connection {
    /// Connects to `base` (`http://host:port`, or `https://…` trusting the
    /// system's roots) with `token`, resuming `resume` (room → last seq seen)
    /// before anything live, and waits for `ready`.
    pub async fn open(
        base: &str,
        transport: Transport,
        token: &str,
        resume: Option<BTreeMap<i64, u64>>,
    ) -> Result<Self> {
        Self::open_with(base, transport, token, resume, &Trust::default()).await
    }

    /// [`Connection::open`], trusting `trust` over TLS.
    pub async fn open_with(
        base: &str,
        transport: Transport,
        token: &str,
        resume: Option<BTreeMap<i64, u64>>,
        trust: &Trust,
    ) -> Result<Self> {
        let resume = resume.map(|rooms| {
            rooms
                .into_iter()
                .map(|(room, seq)| (room.to_string(), seq))
                .collect()
        });
        match transport {
            Transport::WebSocket => {
                let auth = WsAuth::Frame {
                    token: token.to_owned(),
                    resume,
                };
                Ok(Connection::WebSocket(
                    WsConnection::connect_with(base, auth, trust).await?,
                ))
            }
            Transport::Grpc => {
                let client = GrpcClient::connect_with(base, trust)
                    .await?
                    .with_token(token)?;
                Ok(Connection::Grpc(client.stream(resume).await?))
            }
        }
    }

    /// The `ready` frame the connection opened with.
    pub fn ready(&self) -> Option<&ServerFrame> {
        match self {
            Connection::WebSocket(ws) => ws.ready.as_ref(),
            Connection::Grpc(grpc) => grpc.ready.as_ref(),
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        match self {
            Connection::WebSocket(ws) => ws.send(frame).await,
            Connection::Grpc(grpc) => grpc.send(frame).await,
        }
    }

    /// The next frame; the connection's end is an error (`Closed` for a
    /// WebSocket close, `Status` for a gRPC status).
    pub async fn next_frame(&mut self) -> Result<ServerFrame> {
        match self {
            Connection::WebSocket(ws) => ws.next_frame().await,
            Connection::Grpc(grpc) => grpc.next_frame().await,
        }
    }

    /// The next frame, or `None` if none arrives within `wait`.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Result<Option<ServerFrame>> {
        match tokio::time::timeout(wait, self.next_frame()).await {
            Ok(frame) => frame.map(Some),
            Err(_) => Ok(None),
        }
    }
}

/// Whether the server refused the login itself (bad, expired or revoked
/// token, ended session), not just this connection.
pub fn refused_login(err: &ClientError) -> bool {
    match err {
        ClientError::Closed { code, .. } => matches!(code, 4001 | 4002),
        // UNAUTHENTICATED
        ClientError::Status { grpc, .. } => *grpc == 16,
        ClientError::Api { status, .. } => *status == 401,
        _ => false,
    }
}

/// Where a session gets the access token for each connection it opens: a
/// fixed token, or something that refreshes it (as the CLI does).
pub trait TokenSource: Send {
    fn access_token(&mut self) -> BoxFuture<'_, Result<String>>;
}

impl TokenSource for String {
    fn access_token(&mut self) -> BoxFuture<'_, Result<String>> {
        let token = self.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// Reconnect delays: doubling from `first` up to `max`, each drawn from
/// half to one and a half of its nominal value, so clients dropped together
/// do not come back together.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        nominal.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
    }

    /// Back to `first`, after a connection succeeded.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

/// What [`LiveSession::next_event`] reports.
#[derive(Debug)]
pub enum LiveEvent {
    /// A frame from the server. Messages the session already handed out are
    /// not repeated; an `error` for a send ends that send's retries (unless
    /// it asks to wait, `retry_after_ms`: then the session resends it after that).
    Frame(ServerFrame),
    /// The connection ended; the session reconnects after `retry_in`.
    Disconnected {
        error: ClientError,
        retry_in: Duration,
    },
    /// Connected again, every room resumed and unacknowledged sends sent
    /// again; `ready` is the new connection's first frame.
    Reconnected { ready: ServerFrame },
}

/// A send the server has not acknowledged yet.
struct Unacked {
    client_id: String,
    frame: ClientFrame,
    /// Set by a `rate_limited` / `overloaded` answer: resend at this time.
    retry_at: Option<Instant>,
}

/// A live connection that outlives network failures; see the module comment.
///
/// `next_event` is cancel-safe: a `select!` may drop it at any await and call
/// it again, and nothing is lost (a send may then go out twice, which its
/// `client_id` makes harmless).
pub struct LiveSession {
    base: String,
    transport: Transport,
    trust: Trust,
    tokens: Box<dyn TokenSource>,
    connection: Option<Connection>,
    /// The first connection's `ready`.
    ready: ServerFrame,
    /// Per room, the newest seq handed out.
    positions: BTreeMap<i64, u64>,
    unacked: Vec<Unacked>,
    /// The current connection has not had `unacked` sent on it yet.
    resend_pending: bool,
    backoff: Backoff,
    reconnect_at: Option<Instant>,
    /// `not_found` answers still to come for rooms resumed but left meanwhile.
    stale_resumes: usize,
    /// The signed-in user, whose own leaving ends a room's position.
    me: i64,
    /// Makes generated client ids unique across sessions and processes.
    id_prefix: String,
    sent: u64,
}

impl LiveSession {
    /// Connects. Rooms in `resume` continue after the given seq; every other
    /// room starts at its newest message (earlier ones are history, for REST).
    pub async fn connect(
        base: &str,
        transport: Transport,
        tokens: Box<dyn TokenSource>,
        resume: BTreeMap<i64, u64>,
    ) -> Result<Self> {
        Self::connect_with(base, transport, tokens, resume, Trust::default()).await
    }

    /// [`LiveSession::connect`], trusting `trust` over TLS, on every
    /// connection it opens (a REST [`Client`](crate::Client)'s is
    /// [`Client::trust`](crate::Client::trust)).
    pub async fn connect_with(
        base: &str,
        transport: Transport,
        mut tokens: Box<dyn TokenSource>,
        resume: BTreeMap<i64, u64>,
        trust: Trust,
    ) -> Result<Self> {
        let token = tokens.access_token().await?;
        let connection =
            Connection::open_with(base, transport, &token, Some(resume.clone()), &trust).await?;
        let ready = connection
            .ready()
            .cloned()
            .ok_or_else(|| ClientError::Protocol("no ready frame".into()))?;
        let mut session = Self {
            base: base.trim_end_matches('/').to_owned(),
            transport,
            trust,
            tokens,
            connection: Some(connection),
            ready: ready.clone(),
            positions: resume,
            unacked: Vec::new(),
            resend_pending: false,
            stale_resumes: 0,
            me: match &ready {
                ServerFrame::Ready { user, .. } => user.id,
                _ => 0,
            },
            backoff: Backoff::default(),
            reconnect_at: None,
            id_prefix: format!("{:016x}", rand::thread_rng().gen::<u64>()),
            sent: 0,
        };
        session.start_rooms_at(&ready);
        Ok(session)
    }

    /// With reconnect delays other than the default (250 ms doubling to 30 s).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The first connection's `ready` frame: the user and their rooms.
    pub fn ready(&self) -> &ServerFrame {
        &self.ready
    }

    /// Per room, the newest seq this session has handed out (or started at).
    pub fn positions(&self) -> &BTreeMap<i64, u64> {
        &self.positions
    }

    /// Whether a connection is open now.
    pub fn connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Sends `frame`. A `send` gets a `client_id` if it has none, and is
    /// kept until its `ack` arrives, to be sent again on a new connection;
    /// its client id is returned. Other frames (typing, read, edit, …) go out
    /// once, if a connection is open.
    pub async fn send(&mut self, mut frame: ClientFrame) -> Option<String> {
        let client_id = match &mut frame {
            ClientFrame::Send { client_id, .. } => {
                let id = client_id.get_or_insert_with(|| {
                    self.sent += 1;
                    format!("{}-{}", self.id_prefix, self.sent)
                });
                Some(id.clone())
            }
            _ => None,
        };
        if let Some(id) = &client_id {
            self.unacked.push(Unacked {
                client_id: id.clone(),
                frame: frame.clone(),
                retry_at: None,
            });
        }
        if let Some(connection) = &mut self.connection {
            if connection.send(&frame).await.is_err() {
                // The read side reports why; `next_event` reconnects.
                self.drop_connection();
            }
        }
        client_id
    }

    /// Sends not acknowledged yet, by client id, oldest first.
    pub fn unacknowledged(&self) -> impl Iterator<Item = &str> {
        self.unacked.iter().map(|u| u.client_id.as_str())
    }

    /// The next event. Fails only when the server refuses the login itself
    /// (a fresh token from the source is refused too): reconnecting cannot
    /// help then.
    pub async fn next_event(&mut self) -> Result<LiveEvent> {
        loop {
            if self.connection.is_none() {
                if let Some(at) = self.reconnect_at {
                    tokio::time::sleep_until(at).await;
                }
                // The next attempt waits unless this one succeeds.
                let retry_in = self.backoff.delay();
                self.reconnect_at = Some(Instant::now() + retry_in);
                match self.reconnect().await {
                    Ok(ready) => {
                        self.backoff.reset();
                        self.reconnect_at = None;
                        return Ok(LiveEvent::Reconnected { ready });
                    }
                    Err(error) if refused_login(&error) => return Err(error),
                    Err(error) => return Ok(LiveEvent::Disconnected { error, retry_in }),
                }
            }
            if self.resend_pending {
                self.resend(|_| true).await;
                self.resend_pending = false;
                continue;
            }
            let due = self.unacked.iter().filter_map(|u| u.retry_at).min();
            let connection = self.connection.as_mut().expect("connected above");
            let frame = tokio::select! {
                frame = connection.next_frame() => Some(frame),
                _ = sleep_until_some(due) => None,
            };
            let Some(frame) = frame else {
                let now = Instant::now();
                self.resend(|u| u.retry_at.is_some_and(|at| at <= now))
                    .await;
                continue;
            };
            match frame {
                Ok(frame) => {
                    if let Some(frame) = self.on_frame(frame) {
                        return Ok(LiveEvent::Frame(frame));
                    }
                }
                Err(error) => {
                    // A login refused mid-stream (an expired token) may work
                    // again with a fresh one: try at once, once.
                    let retry_in = if refused_login(&error) {
                        Duration::ZERO
                    } else {
                        self.backoff.delay()
                    };
                    self.connection = None;
                    self.reconnect_at = Some(Instant::now() + retry_in);
                    return Ok(LiveEvent::Disconnected { error, retry_in });
                }
            }
        }
    }

    /// Closes the connection; `next_event` opens a new one (after a back-off delay).
    pub fn disconnect(&mut self) {
        self.drop_connection();
    }

    /// Forgets a connection that failed to send; the next attempt waits a
    /// back-off delay, so a link that fails at once is not retried in a loop.
    fn drop_connection(&mut self) {
        self.connection = None;
        self.resend_pending = false;
        self.reconnect_at = Some(Instant::now() + self.backoff.delay());
    }

    async fn reconnect(&mut self) -> Result<ServerFrame> {
        let token = self.tokens.access_token().await?;
        let connection = Connection::open_with(
            &self.base,
            self.transport,
            &token,
            Some(self.positions.clone()),
            &self.trust,
        )
        .await?;
        let ready = connection
            .ready()
            .cloned()
            .ok_or_else(|| ClientError::Protocol("no ready frame".into()))?;
        if let ServerFrame::Ready { rooms, .. } = &ready {
            // Rooms left while disconnected: the server answers their resume
            // with `not_found` (no ref), which means nothing to the caller.
            let before = self.positions.len();
            self.positions
                .retain(|room, _| rooms.iter().any(|r| r.id == *room));
            self.stale_resumes = before - self.positions.len();
        }
        self.start_rooms_at(&ready);
        self.connection = Some(connection);
        self.resend_pending = !self.unacked.is_empty();
        for unacked in &mut self.unacked {
            unacked.retry_at = None;
        }
        Ok(ready)
    }

    /// Rooms in `ready` this session has no position for start at their newest seq.
    fn start_rooms_at(&mut self, ready: &ServerFrame) {
        if let ServerFrame::Ready { rooms, .. } = ready {
            for room in rooms {
                self.positions.entry(room.id).or_insert(room.last_seq);
            }
        }
    }

    /// Sends again the unacknowledged sends `which` picks, in their order.
    async fn resend(&mut self, which: impl Fn(&Unacked) -> bool) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        let mut failed = false;
        for unacked in self.unacked.iter_mut().filter(|u| which(u)) {
            unacked.retry_at = None;
            if connection.send(&unacked.frame).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            self.drop_connection();
        }
    }

    /// Updates the session's state for `frame`; `None` for a message it
    /// already handed out.
    fn on_frame(&mut self, frame: ServerFrame) -> Option<ServerFrame> {
        match &frame {
            ServerFrame::Message { room, seq, .. } => {
                let last = self.positions.entry(*room).or_insert(0);
                if *seq <= *last {
                    return None;
                }
                *last = *seq;
            }
            ServerFrame::Ack {
                client_id: Some(id),
                ..
            } => self.unacked.retain(|u| u.client_id != *id),
            ServerFrame::Error {
                code,
                reference: None,
                ..
            } if code == "not_found" && self.stale_resumes > 0 => {
                self.stale_resumes -= 1;
                return None;
            }
            ServerFrame::Error {
                reference: Some(id),
                retry_after_ms,
                ..
            } => match retry_after_ms {
                Some(wait) => {
                    let at = Instant::now() + Duration::from_millis(*wait);
                    if let Some(unacked) = self.unacked.iter_mut().find(|u| u.client_id == *id) {
                        unacked.retry_at = Some(at);
                    }
                }
                None => self.unacked.retain(|u| u.client_id != *id),
            },
            ServerFrame::RoomDeleted { room, .. } => {
                self.positions.remove(room);
            }
            ServerFrame::MemberLeft { room, user_id }
            | ServerFrame::MemberRemoved { room, user_id, .. }
                if *user_id == self.me =>
            {
                self.positions.remove(room);
            }
            _ => {}
        }
        Some(frame)
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
