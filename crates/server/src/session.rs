//! One authenticated client connection, whatever transport carries it.
//!
//! A single task owns the transport and `select!`s over: the stop signal
//! (shutdown, slow consumer), finished requests (acks), the hub queue, and
//! client frames. One task (not a reader and a writer) keeps an idle
//! connection small, and so does what that task holds: the session's state in
//! a box, the wait, and nothing of the handling, which each wakeup runs in a
//! boxed future of its own.
//!
//! - `positions.rs`: the per-room delivery state (dedupe, gaps, resume), pure;
//! - `requests.rs`: client frames → domain calls;
//! - `replay.rs`: reading what a connection missed from the store;
//! - `transport.rs`: what a transport provides (a stream in, a sink out);
//! - `pending.rs`: requests a transport holds until their answer, by reference;
//! - `quota.rs`: sessions per user and per address, all transports together.

mod pending;
mod positions;
mod quota;
mod replay;
mod requests;
mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use palaver_domain::model::User;
use palaver_domain::throttle::{ClientAddr, Limit, RateLimit, SingleThrottle};
use palaver_domain::tokens::Bearer;
use palaver_domain::{Error, RoomId, Services, UserId};
use palaver_protocol::close_code::CloseReason;
use palaver_protocol::ws::ServerFrame;

pub use self::pending::PendingAnswers;
use self::positions::{Arrival, Positions, Resume};
pub use self::quota::SessionQuota;
use self::requests::{Immediate, Requests};
pub use self::transport::{
    Inbound, Outgoing, SharedFrame, Transport, TransportKind, WriteDeadline, WriteError,
};
use crate::frames;
use crate::hub::{Connection, Hub, Joined, Outbound, SequencedFrame};
use crate::outgoing::QueueReceiver;
use crate::presence::Presence;
use crate::stop::StopReason;

/// Sends awaiting their commit before the session stops reading new frames:
/// backpressure for a client that sends faster than the store commits.
const MAX_IN_FLIGHT_SENDS: usize = 256;
/// Queued frames written before one flush (write coalescing).
const MAX_FRAMES_PER_FLUSH: usize = 64;
/// How long shutdown waits for in-flight sends to be acknowledged.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Sending a close frame, and waiting for the client's answer, each take at
/// most this long: a client that reads nothing has a full buffer, and the
/// close frame would wait behind it forever.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a session uses of the node.
#[derive(Clone)]
pub struct SessionDeps {
    pub services: Arc<Services>,
    pub hub: Arc<Hub>,
    pub presence: Presence,
    /// How long one write may wait for the client to read (`WriteDeadline`).
    pub write_timeout: Duration,
    /// Frames one connection may send.
    pub frame_rate: RateLimit,
    /// The node's sessions per user and per address.
    pub quota: Arc<SessionQuota>,
}

/// A session the node agreed to serve: its opening charged to the user's and
/// the address's budget, its place in the quota held, its connection
/// registered with the hub and its login found live. Every transport gets
/// one here before it tells its client it is connected, so each refuses in
/// its own terms (a close code, a gRPC status, a Socket.IO
/// `connect_error`…). Dropped unused, it gives its place back.
pub struct Admission {
    bearer: Bearer,
    transport: TransportKind,
    registered: Option<(Arc<Connection>, QueueReceiver<Outbound>)>,
    hub: Arc<Hub>,
    _permit: quota::SessionPermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some((conn, _)) = self.registered.take() {
            self.hub.unregister(&conn);
        }
    }
}

/// Admits a session of `bearer`'s user from the client address `from`
/// over `transport`.
pub async fn admit(
    deps: &SessionDeps,
    bearer: Bearer,
    from: ClientAddr,
    transport: TransportKind,
) -> Result<Admission, CloseReason> {
    // Every transport's sessions pass here, so one budget and one quota
    // bound them all; both are charged before the store is read.
    if deps
        .services
        .activity
        .open_session(bearer.user, from)
        .is_err()
    {
        metrics::counter!("palaver_sessions_refused_total", "per" => "rate", "transport" => transport.label())
            .increment(1);
        return Err(CloseReason::OpenedTooOften);
    }
    let permit = match deps.quota.admit(bearer.user, from) {
        Ok(permit) => permit,
        Err(too_many) => {
            let per = too_many.label();
            metrics::counter!("palaver_sessions_refused_total", "per" => per, "transport" => transport.label())
                .increment(1);
            tracing::debug!(user = %bearer.user, %from, reason = too_many.reason(), "session refused");
            return Err(CloseReason::TooManySessions(too_many.reason()));
        }
    };
    // Registered before the login is checked, so its end cannot slip
    // between the check and the registration (it reaches the queue), and
    // before the first read, so a room joined meanwhile is announced.
    let registered = deps.hub.register(bearer.user, &bearer.session);
    let admission = Admission {
        bearer,
        transport,
        registered: Some(registered),
        hub: deps.hub.clone(),
        _permit: permit,
    };
    // Boxed: a rare, one-off path that every connection's future would
    // otherwise carry inline.
    match Box::pin(deps.services.accounts.is_live(&admission.bearer)).await {
        Ok(true) => Ok(admission),
        Ok(false) => Err(CloseReason::SessionEnded),
        Err(_) => Err(CloseReason::StoreUnavailable),
    }
}

/// Serves an admitted connection until either side ends it. `resume`:
/// positions sent with the authentication, replayed before live delivery.
///
/// The returned future lives as long as the connection (it is most of its
/// task), so what it holds is boxed once, here: an async function holds each
/// argument for its whole life beside whatever the argument was moved into,
/// and a transport by value would be held twice or more, each copy the size
/// of its codec state. The future itself then holds a few pointers and the
/// wait of `Session::serve`.
pub fn run<T: Transport>(
    transport: T,
    deps: SessionDeps,
    admission: Admission,
    resume: Option<BTreeMap<String, u64>>,
) -> impl std::future::Future<Output = ()> {
    let transport = WriteDeadline::new(Box::new(transport), deps.write_timeout);
    run_boxed(Box::new(Starting {
        transport,
        deps,
        admission,
        resume,
    }))
}

/// What a session starts from, boxed by [`run`].
struct Starting<T> {
    transport: WriteDeadline<Box<T>>,
    deps: SessionDeps,
    admission: Admission,
    resume: Option<BTreeMap<String, u64>>,
}

async fn run_boxed<T: Transport>(starting: Box<Starting<T>>) {
    let Starting {
        mut transport,
        deps,
        mut admission,
        resume,
    } = *starting;
    let _counted = Counted::new(admission.transport);
    let (conn, queue) = admission
        .registered
        .take()
        .expect("an admission is registered until its session runs");
    // The permit is held until the session ends.
    let user = admission.bearer.user;
    let found = Box::pin(deps.services.rooms.user_with_positions(user)).await;
    let (user, rooms_before) = match found {
        Ok(found) => found,
        Err(err) => {
            deps.hub.unregister(&conn);
            let reason = match err {
                Error::NotFound(_) => CloseReason::Unauthorized("unknown user"),
                _ => CloseReason::StoreUnavailable,
            };
            Box::pin(close(&mut transport, reason)).await;
            return;
        }
    };
    let mut session = Box::new(Session {
        requests: Requests::new(deps.services.clone(), user.id),
        frame_limit: SingleThrottle::new(Limit::FramesPerConnection.name(), deps.frame_rate),
        transport,
        deps,
        user: user.id,
        conn,
        queue,
        positions: Positions::default(),
        announced: false,
        _admission: admission,
    });
    let ended = match Box::pin(session.start(user, rooms_before, resume)).await {
        Ok(()) => session.serve().await,
        Err(end) => end,
    };
    let rooms = session.deps.hub.unregister(&session.conn);
    if session.announced {
        session.deps.presence.disconnected(session.user, rooms);
    }
    if let End::Close(reason) = ended {
        Box::pin(close(&mut session.transport, reason)).await;
    }
}

/// Sends a close frame, then reads until the client answers (or briefly
/// times out): closing the TCP socket with unread input would reset it, and a
/// reset can destroy the close frame before the client reads it.
pub async fn close<T: Transport>(transport: &mut T, reason: CloseReason) {
    let sent = tokio::time::timeout(CLOSE_TIMEOUT, transport.send(Outgoing::Close(reason)));
    if !matches!(sent.await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while transport.next().await.is_some() {}
    })
    .await;
}

/// A session counted in `palaver_connections{transport}` while it lives.
struct Counted(metrics::Gauge);

impl Counted {
    fn new(kind: TransportKind) -> Self {
        let gauge = metrics::gauge!("palaver_connections", "transport" => kind.label());
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// What woke an idle session.
enum Event {
    /// A request finished, with its answer if it has one.
    Answered(Option<Outgoing>),
    /// The hub queued something for the client.
    Queued(Outbound),
    /// The client sent something, or left (`None`).
    Incoming(Option<Inbound>),
}

/// Why the session loop stopped.
enum End {
    /// Close the connection for this reason.
    Close(CloseReason),
    /// The client is gone or already closed.
    Gone,
}

struct Session<T> {
    transport: WriteDeadline<Box<T>>,
    deps: SessionDeps,
    /// Who is connected; the rest of their record is needed only for `ready`.
    user: UserId,
    conn: Arc<Connection>,
    queue: QueueReceiver<Outbound>,
    positions: Positions,
    requests: Requests,
    frame_limit: SingleThrottle,
    /// Counted by presence, so its end is counted too.
    announced: bool,
    /// Its place in the session quota, given back when the session ends.
    _admission: Admission,
}

impl<T: Transport> Session<T> {
    /// Follows the user's rooms, sends `ready`, applies an initial resume.
    async fn start(
        &mut self,
        user: User,
        before: Vec<(RoomId, u64)>,
        resume: Option<BTreeMap<String, u64>>,
    ) -> Result<(), End> {
        let hub = self.deps.hub.clone();
        // Follow first, then read positions: any message committed after the
        // read has a higher seq and is published after we follow, so it reaches
        // us live; anything at or below the position is history.
        for (room, _) in &before {
            hub.follow(&self.conn, *room);
        }
        let positions = self
            .deps
            .services
            .rooms
            .positions(self.user)
            .await
            .map_err(|_| End::Close(CloseReason::StoreUnavailable))?;
        for (room, last_seq) in &positions {
            hub.follow(&self.conn, *room);
            self.positions.follow(*room, *last_seq);
        }
        for (room, _) in &before {
            if !self.positions.follows(*room) {
                hub.unfollow(&self.conn, *room);
            }
        }
        for frame in frames::ready(&user, &positions) {
            self.send(Outgoing::Frame(frame)).await?;
        }
        self.deps.presence.connected(self.user, self.conn.rooms());
        self.announced = true;
        if let Some(rooms) = resume {
            self.resume(rooms, None).await?;
        }
        Ok(())
    }

    async fn serve(&mut self) -> End {
        // Polled on every wakeup: an atomic load, no lock (see stop.rs).
        let conn = self.conn.clone();
        let stopped = conn.stop.raised();
        tokio::pin!(stopped);
        loop {
            let event = tokio::select! {
                biased;
                reason = &mut stopped => return match reason {
                    StopReason::Shutdown => Box::pin(self.drain_for_shutdown()).await,
                    StopReason::SlowConsumer => End::Close(CloseReason::SlowConsumer),
                    StopReason::SessionEnded => End::Close(CloseReason::SessionEnded),
                },
                reply = self.requests.next(), if !self.requests.is_empty() => {
                    Event::Answered(reply)
                }
                item = self.queue.recv() => match item {
                    Some(item) => Event::Queued(item),
                    None => return End::Gone,
                },
                incoming = self.transport.next(), if self.requests.len() < MAX_IN_FLIGHT_SENDS => {
                    Event::Incoming(incoming)
                }
            };
            // Boxed: an idle connection's task then holds this wait and no
            // more. Inline, the task would be as large as the largest state
            // of any handling (writes under way, frames being built): about
            // 5 KiB per connection, idle or not, against one short-lived
            // allocation per wakeup.
            if let Err(end) = Box::pin(self.handle(event)).await {
                return end;
            }
        }
    }

    async fn handle(&mut self, event: Event) -> Result<(), End> {
        match event {
            Event::Answered(reply) => self.answer_requests(reply).await,
            Event::Queued(item) => {
                if self.writer_is_committing() {
                    tokio::task::yield_now().await;
                }
                self.deliver_batch(item).await
            }
            Event::Incoming(incoming) => self.on_incoming(incoming).await,
        }
    }

    /// Waits (briefly) for in-flight sends so their acks are not lost.
    async fn drain_for_shutdown(&mut self) -> End {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while !self.requests.is_empty() {
                let Some(answer) = self.requests.next().await else {
                    continue;
                };
                if self.send(answer).await.is_err() {
                    break;
                }
            }
        })
        .await;
        End::Close(CloseReason::Shutdown)
    }

    async fn on_incoming(&mut self, incoming: Option<Inbound>) -> Result<(), End> {
        if let Some(refused) = self.over_frame_limit(&incoming) {
            return self.send(Outgoing::Frame(refused)).await;
        }
        let frame = match incoming {
            None => return Err(End::Gone),
            Some(Inbound::Frame(frame)) => frame,
            Some(Inbound::Invalid(err)) => {
                return self.send(Outgoing::Frame(frames::frame_error(err))).await
            }
            Some(Inbound::Unsupported) => return Err(End::Close(CloseReason::UnsupportedData)),
            Some(Inbound::TooLarge) => return Err(End::Close(CloseReason::FrameTooLarge)),
        };
        match self.requests.start(frame) {
            Immediate::Nothing => Ok(()),
            Immediate::Reply(frame) => self.send(Outgoing::Frame(frame)).await,
            Immediate::Done(reference) => self.send(Outgoing::Done(reference)).await,
            Immediate::Resume { rooms, reference } => Box::pin(self.resume(rooms, reference)).await,
        }
    }

    /// The `rate_limited` answer to a frame past this connection's frame
    /// limit (the frame itself is dropped); `None` when it may go on.
    fn over_frame_limit(&self, incoming: &Option<Inbound>) -> Option<ServerFrame> {
        if !matches!(incoming, Some(Inbound::Frame(_) | Inbound::Invalid(_))) {
            return None;
        }
        let refused = self.frame_limit.check().err()?;
        let reference = match incoming {
            Some(Inbound::Frame(frame)) => frame.reference().map(str::to_owned),
            Some(Inbound::Invalid(err)) => err.reference.clone(),
            _ => None,
        };
        Some(frames::error(&refused, reference))
    }

    /// Sends what the client missed in each named room: seqs after the client's
    /// position up to what this connection has already delivered. Later
    /// messages follow live, so nothing is sent twice.
    async fn resume(
        &mut self,
        rooms: BTreeMap<String, u64>,
        reference: Option<String>,
    ) -> Result<(), End> {
        // One answer for every room that is not the client's, however many
        // the frame names: a frame must not buy a flood of answers. It says
        // what a single unknown room would (`not_found`), no more.
        let mut unknown = false;
        for (key, seen) in rooms {
            // A room is named by its id as the server writes it: `"013"` or
            // `"+13"` would name room 13 again under another key.
            let resumed = match key.parse::<i64>().map(RoomId) {
                Ok(room) if room.0.to_string() == key => (room, self.positions.resume(room, seen)),
                _ => (RoomId(0), Resume::NotFollowed),
            };
            match resumed {
                (_, Resume::NotFollowed) => unknown = true,
                (_, Resume::UpToDate) => {}
                (room, Resume::Replay { after, through }) => {
                    self.replay(room, after, through).await?;
                    self.flush().await?;
                }
            }
        }
        if unknown {
            let err = frames::error(&Error::NotFound("room"), reference);
            self.send(Outgoing::Frame(err)).await?;
        } else if let Some(reference) = reference {
            self.send(Outgoing::Done(reference)).await?;
        }
        Ok(())
    }

    /// Asked before a write of delivered frames: a batch being committed is
    /// published within about a millisecond, and one scheduler turn usually
    /// lets its frames join this write, which costs the core far less than a
    /// write of its own. With the writer idle (light load) there is nothing to
    /// wait for. Acks never wait for it: they leave as soon as their commit is done.
    fn writer_is_committing(&self) -> bool {
        self.deps.services.messages.committing()
    }

    /// Writes a finished request's answer, every other answer already
    /// finished, and what the hub has already queued, then flushes once. The
    /// sender's own copy of its message is usually queued by then (the writer
    /// acks, then publishes), so ack and copy leave in one write, not two.
    async fn answer_requests(&mut self, first: Option<Outgoing>) -> Result<(), End> {
        let mut reply = first;
        loop {
            if let Some(answer) = reply {
                self.feed(answer).await?;
            }
            match self.requests.next_finished() {
                Some(next) => reply = next,
                None => break,
            }
        }
        match self.queue.try_recv() {
            Ok(item) => self.deliver_batch(item).await,
            Err(_) => self.flush().await,
        }
    }

    /// Writes the first queued item and up to `MAX_FRAMES_PER_FLUSH` more that
    /// are already waiting, then flushes once.
    ///
    /// The first item, when a message, is the write's oldest: its time from
    /// the hub to the socket is the `palaver_delivery_seconds` sample (one
    /// per write, not per frame, to keep the hot path's cost down).
    async fn deliver_batch(&mut self, first: Outbound) -> Result<(), End> {
        let oldest = match &first {
            Outbound::Sequenced(frame) => Some(frame.reached_hub),
            _ => None,
        };
        self.deliver(first).await?;
        for _ in 1..MAX_FRAMES_PER_FLUSH {
            match self.queue.try_recv() {
                Ok(item) => self.deliver(item).await?,
                Err(_) => break,
            }
        }
        self.flush().await?;
        if let Some(reached_hub) = oldest {
            metrics::histogram!("palaver_delivery_seconds").record(reached_hub.elapsed());
        }
        Ok(())
    }

    async fn deliver(&mut self, item: Outbound) -> Result<(), End> {
        match item {
            Outbound::Sequenced(frame) => self.deliver_sequenced(frame).await,
            Outbound::Frame(frame) => {
                self.feed(Outgoing::Encoded(SharedFrame::Other(frame)))
                    .await
            }
            Outbound::Joined(joined) => {
                let Joined { room, last_seq } = *joined;
                if self.positions.joined(room, last_seq) {
                    // Messages committed between the join and our following the
                    // room reached the hub before us: read them from the store.
                    Box::pin(self.catch_up(room, None)).await?;
                }
                Ok(())
            }
            Outbound::Left(room) => {
                self.positions.left(room);
                Ok(())
            }
        }
    }

    async fn deliver_sequenced(&mut self, frame: Arc<SequencedFrame>) -> Result<(), End> {
        match self.positions.arrive(frame.room, frame.seq) {
            Arrival::Deliver => {
                self.feed(Outgoing::Encoded(SharedFrame::Sequenced(frame)))
                    .await
            }
            Arrival::Duplicate | Arrival::NotFollowed => Ok(()),
            Arrival::Gap { through, .. } => {
                Box::pin(self.catch_up(frame.room, Some(through))).await?;
                // Still a gap if the store could not fill it: the next
                // message tries again.
                if self.positions.arrive(frame.room, frame.seq) == Arrival::Deliver {
                    self.feed(Outgoing::Encoded(SharedFrame::Sequenced(frame)))
                        .await?;
                }
                Ok(())
            }
        }
    }

    async fn feed(&mut self, item: Outgoing) -> Result<(), End> {
        let fed = self.transport.feed(item).await;
        fed.map_err(|err| self.write_failed(err))
    }

    async fn flush(&mut self) -> Result<(), End> {
        let flushed = self.transport.flush().await;
        flushed.map_err(|err| self.write_failed(err))
    }

    async fn send(&mut self, item: Outgoing) -> Result<(), End> {
        let sent = self.transport.send(item).await;
        sent.map_err(|err| self.write_failed(err))
    }

    /// A write failed: the client is gone, or reads too little for its
    /// frames to leave (then it is dropped without a close frame, which could
    /// not leave either).
    fn write_failed<E>(&self, err: WriteError<E>) -> End {
        if let WriteError::Stalled = err {
            note_stalled(self.conn.id);
        }
        End::Gone
    }
}

/// A client dropped for reading too little: counted in
/// `palaver_write_timeouts_total`, logged only at `debug`, as one line per
/// stalled client would let a crowd of them flood the log.
fn note_stalled(conn: u64) {
    metrics::counter!("palaver_write_timeouts_total").increment(1);
    tracing::debug!(conn, "write made no progress in time; connection dropped");
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::channel::mpsc;
    use palaver_bus::LocalBus;
    use palaver_domain::messages::WriterConfig;
    use palaver_domain::passwords::HashCost;
    use palaver_domain::tokens::{AccessTokens, TokenSettings};
    use palaver_domain::Limits;
    use palaver_protocol::ws::ClientFrame;
    use palaver_store::{ManagedStore, SqliteStore, StoreOptions};

    use super::*;

    fn localhost() -> palaver_domain::throttle::ClientAddr {
        palaver_domain::throttle::ClientAddr::new(std::net::Ipv4Addr::LOCALHOST.into())
    }
    use crate::delivery::LocalDelivery;

    /// A transport of two channels: what a test sends in, what the session sends out.
    struct Channels {
        inbound: mpsc::UnboundedReceiver<Inbound>,
        outgoing: mpsc::UnboundedSender<Outgoing>,
    }

    impl futures::Stream for Channels {
        type Item = Inbound;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
            self.inbound.poll_next_unpin(cx)
        }
    }

    impl futures::Sink<Outgoing> for Channels {
        type Error = mpsc::SendError;
        fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.outgoing.poll_ready(cx)
        }
        fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
            self.outgoing.start_send(item)
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.outgoing).poll_flush(cx)
        }
        fn poll_close(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.outgoing).poll_close(cx)
        }
    }

    /// What the session sent next.
    async fn next_item(out: &mut mpsc::UnboundedReceiver<Outgoing>) -> Outgoing {
        tokio::time::timeout(Duration::from_secs(10), out.next())
            .await
            .expect("the session answers in time")
            .expect("the session is still running")
    }

    /// What the session sent next, as a frame (encoded ones decoded).
    async fn next_frame(out: &mut mpsc::UnboundedReceiver<Outgoing>) -> ServerFrame {
        match next_item(out).await {
            Outgoing::Frame(frame) => frame,
            Outgoing::Encoded(frame) => serde_json::from_str(frame.json().as_str()).unwrap(),
            Outgoing::Done(reference) => panic!("done: {reference}"),
            Outgoing::Close(reason) => panic!("closed: {reason:?}"),
        }
    }

    /// Log lines written at `level` and above while `log` runs.
    fn logged(level: tracing::Level, log: impl FnOnce()) -> String {
        let lines = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(move || Lines(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let lines = lines.lock().unwrap();
        String::from_utf8(lines.clone()).unwrap()
    }

    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_client_is_logged_below_info() {
        assert_eq!(logged(tracing::Level::INFO, || note_stalled(7)), "");
        let debug = logged(tracing::Level::DEBUG, || note_stalled(7));
        assert!(debug.contains("write made no progress"), "{debug}");
    }

    #[tokio::test]
    async fn the_session_core_runs_over_any_stream_and_sink() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db"), &StoreOptions::default())
            .await
            .unwrap();
        let store: Arc<dyn ManagedStore> = Arc::new(store);
        let hub = Arc::new(Hub::new(64));
        let (presence, inbox) = Presence::channel();
        let delivery = Arc::new(LocalDelivery::new(hub.clone(), presence.remote()));
        let cheap = HashCost {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        let (services, _writer) = Services::start(
            store.clone().as_store(),
            Arc::new(LocalBus::new(delivery)),
            AccessTokens::shared_secret(
                b"a test secret that is long enough for HS256",
                TokenSettings {
                    issuer: "palaver".into(),
                    audience: "palaver".into(),
                    ttl_secs: 900,
                },
            ),
            Arc::new(palaver_domain::mail::NoMailer),
            cheap,
            Limits::default(),
            WriterConfig::default(),
        )
        .unwrap();
        let services = Arc::new(services);
        let _presence_task = inbox.spawn(
            "node".into(),
            false,
            Duration::from_secs(5),
            hub.clone(),
            services.clone(),
        );
        let alice = services
            .accounts
            .register("alice", "correct horse 1".into(), None, None, localhost())
            .await
            .unwrap();
        let room = services.rooms.create(alice.id, "r", None).await.unwrap();
        let login = services
            .accounts
            .login("alice", "correct horse 1", localhost(), None)
            .await
            .unwrap();
        let bearer = services
            .accounts
            .authenticate(&login.access_token)
            .await
            .unwrap();

        let (to_session, inbound) = mpsc::unbounded();
        let (outgoing, mut from_session) = mpsc::unbounded();
        let deps = SessionDeps {
            services,
            hub,
            presence,
            write_timeout: Duration::from_secs(1),
            frame_rate: RateLimit(None),
            quota: Arc::new(SessionQuota::new(8, 8)),
        };
        let admission = admit(&deps, bearer, localhost(), TransportKind::WebSocket)
            .await
            .unwrap();
        let session = tokio::spawn(run(Channels { inbound, outgoing }, deps, admission, None));

        let ServerFrame::Ready { rooms, .. } = next_frame(&mut from_session).await else {
            panic!("no ready first")
        };
        assert_eq!((rooms[0].id, rooms[0].last_seq), (room.id.0, 0));
        to_session
            .unbounded_send(Inbound::Frame(ClientFrame::Send {
                room: room.id.0,
                body: "hi".into(),
                client_id: Some("c1".into()),
                reply_to: None,
                attachments: Vec::new(),
            }))
            .unwrap();
        // Her own `presence` may come first: she shares the room with herself.
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match next_frame(&mut from_session).await {
                ServerFrame::Presence { .. } => {}
                frame => seen.push(frame),
            }
        }
        assert!(seen.iter().any(|f| matches!(f,
            ServerFrame::Ack { seq: 1, client_id: Some(c), .. } if c == "c1")));
        assert!(seen.iter().any(|f| matches!(f,
            ServerFrame::Message { seq: 1, body, .. } if body == "hi")));

        let bad = ClientFrame::parse(r#"{"type":"read","ref":"r1"}"#).unwrap_err();
        to_session.unbounded_send(Inbound::Invalid(bad)).unwrap();
        assert!(matches!(
            next_frame(&mut from_session).await,
            ServerFrame::Error { code, .. } if code == "invalid_frame"
        ));

        // A request named by a ref that succeeds with no frame of its own is
        // done all the same, for transports whose clients await an answer.
        for (reference, frame) in [
            (
                "t1",
                format!(r#"{{"type":"typing","room":{},"ref":"t1"}}"#, room.id.0),
            ),
            (
                "t2",
                format!(r#"{{"type":"typing","room":{},"ref":"t2"}}"#, room.id.0),
            ),
            (
                "m1",
                format!(
                    r#"{{"type":"resume","rooms":{{"{}":1}},"ref":"m1"}}"#,
                    room.id.0
                ),
            ),
        ] {
            let frame = ClientFrame::parse(&frame).unwrap();
            to_session.unbounded_send(Inbound::Frame(frame)).unwrap();
            loop {
                match next_item(&mut from_session).await {
                    Outgoing::Done(done) => break assert_eq!(done, reference),
                    Outgoing::Encoded(_) => {} // her own typing, or presence
                    other => panic!("{reference}: {other:?}"),
                }
            }
        }

        // The client goes away: the session ends by itself.
        drop(to_session);
        tokio::time::timeout(Duration::from_secs(10), session)
            .await
            .expect("the session ends when its stream does")
            .unwrap();
    }
}
