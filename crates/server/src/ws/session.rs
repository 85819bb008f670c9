//! One authenticated WebSocket connection.
//!
//! A single task owns the socket and `select!`s over: shutdown, the slow-consumer
//! signal, finished sends (acks), the hub queue, and client frames. One task (not
//! a reader and a writer) keeps an idle connection small.
//!
//! Per-room delivery invariant: for every room it follows, the session remembers
//! the last seq it delivered (`positions`). A room frame at or below it is a
//! duplicate and is dropped; one beyond the next expected seq means a gap, which
//! is filled from the store before the frame is sent. So the client sees each
//! room's messages in seq order, without gaps or duplicates, whatever the bus did.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, SinkExt, StreamExt};
use palaver_domain::model::User;
use palaver_domain::{Error, RoomId};
use palaver_protocol::close_code;
use palaver_protocol::ws::{ClientFrame, RoomPosition, ServerFrame};

use super::authenticate::{authenticate, Refused};
use super::frames::{close, error_frame, protocol_error, text};
use crate::http::AppState;
use crate::hub::{Connection, Joined, Outbound, SequencedFrame};
use crate::outgoing::QueueReceiver;
use crate::stop::StopReason;

/// Sends awaiting their commit before the session stops reading new frames:
/// backpressure for a client that sends faster than the store commits.
const MAX_IN_FLIGHT_SENDS: usize = 256;
/// Queued frames written before one flush (write coalescing).
const MAX_FRAMES_PER_FLUSH: usize = 64;
/// Page size when catching a room up from the store.
const CATCH_UP_PAGE: u32 = 200;
/// How long shutdown waits for in-flight sends to be acknowledged.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A connection forwards at most one `typing` per room this often. Clients
/// repeat every 2 s while typing (a little slower, so jitter never drops a
/// repeat), and indicators last 3 s.
const TYPING_EVERY: Duration = Duration::from_millis(1500);

pub async fn run(mut socket: WebSocket, state: AppState, token: Option<String>) {
    // Rare, one-off paths are boxed: an async state machine is as large as its
    // largest state, and every idle connection would otherwise carry them inline.
    let auth = match Box::pin(authenticate(&mut socket, &state, token)).await {
        Ok(auth) => auth,
        Err(Refused::Unauthorized(reason)) => {
            close(&mut socket, close_code::UNAUTHORIZED, reason).await;
            return;
        }
        Err(Refused::Gone) => {
            if state.shutdown.is_cancelled() {
                close(&mut socket, close_code::GOING_AWAY, "server shutting down").await;
            }
            return;
        }
    };
    // Registered before the first read, so a room joined meanwhile is announced.
    let (conn, queue) = state.hub.register(auth.user_id);
    let (user, rooms_before) = match state.services.rooms.user_with_positions(auth.user_id).await {
        Ok(found) => found,
        Err(err) => {
            state.hub.unregister(&conn);
            let (code, reason) = match err {
                Error::NotFound(_) => (close_code::UNAUTHORIZED, "unknown user"),
                _ => (close_code::GOING_AWAY, "store unavailable"),
            };
            Box::pin(close(&mut socket, code, reason)).await;
            return;
        }
    };
    let mut session = Session {
        socket,
        state,
        user,
        conn,
        queue,
        positions: HashMap::new(),
        in_flight: FuturesUnordered::new(),
        last_typing: Vec::new(),
    };
    let ended = Box::pin(session.start(rooms_before, auth.resume)).await;
    let ended = match ended {
        Ok(()) => session.serve().await,
        Err(end) => end,
    };
    session.state.hub.unregister(&session.conn);
    if let End::Close(code, reason) = ended {
        Box::pin(close(&mut session.socket, code, reason)).await;
    }
}

/// Why the session loop stopped.
enum End {
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
    /// The socket is gone or already closed.
    Gone,
}

struct Session {
    socket: WebSocket,
    state: AppState,
    user: User,
    conn: Arc<Connection>,
    queue: QueueReceiver<Outbound>,
    /// Room → the last seq delivered (or known to the client) on this connection.
    positions: HashMap<RoomId, u64>,
    /// Requests awaiting the domain: each yields its reply frame, if it has one
    /// (edits, deletes and read markers answer only with errors; their success
    /// is the event every member receives).
    in_flight: FuturesUnordered<BoxFuture<'static, Option<ServerFrame>>>,
    /// When this connection last forwarded `typing` per room (rate limit);
    /// empty, and unallocated, for connections that never type.
    last_typing: Vec<(RoomId, Instant)>,
}

impl Session {
    /// Follows the user's rooms, sends `ready`, applies an initial resume.
    async fn start(
        &mut self,
        before: Vec<(RoomId, u64)>,
        resume: Option<BTreeMap<String, u64>>,
    ) -> Result<(), End> {
        let rooms = &self.state.services.rooms;
        // Follow first, then read positions: any message committed after the
        // read has a higher seq and is published after we follow, so it reaches
        // us live; anything at or below the position is history.
        for (room, _) in &before {
            self.state.hub.follow(&self.conn, *room);
        }
        let positions = rooms
            .positions(self.user.id)
            .await
            .map_err(|_| End::Close(close_code::GOING_AWAY, "store unavailable"))?;
        for (room, last_seq) in &positions {
            self.state.hub.follow(&self.conn, *room);
            self.positions.insert(*room, *last_seq);
        }
        for (room, _) in &before {
            if !self.positions.contains_key(room) {
                self.state.hub.unfollow(&self.conn, *room);
            }
        }
        let ready = ServerFrame::Ready {
            user: self.user.to_wire(),
            rooms: positions
                .iter()
                .map(|(id, last_seq)| RoomPosition {
                    id: id.0,
                    last_seq: *last_seq,
                })
                .collect(),
        };
        self.send(text(&ready)).await?;
        self.state.hub.announce(&self.conn);
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
            let step = tokio::select! {
                biased;
                reason = &mut stopped => return match reason {
                    StopReason::Shutdown => Box::pin(self.drain_for_shutdown()).await,
                    StopReason::SlowConsumer => End::Close(close_code::SLOW_CONSUMER, "slow consumer"),
                },
                Some(reply) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.answer_sends(reply).await
                }
                item = self.queue.recv() => match item {
                    Some(item) => {
                        wait_for_a_committing_batch(&self.state).await;
                        self.deliver_batch_or_drop_if_stuck(item).await
                    }
                    None => return End::Gone,
                },
                incoming = self.socket.recv(), if self.in_flight.len() < MAX_IN_FLIGHT_SENDS => {
                    self.on_incoming(incoming).await
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Waits (briefly) for in-flight sends so their acks are not lost.
    async fn drain_for_shutdown(&mut self) -> End {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(reply) = self.in_flight.next().await {
                let Some(frame) = reply else { continue };
                if self.send(text(&frame)).await.is_err() {
                    break;
                }
            }
        })
        .await;
        End::Close(close_code::GOING_AWAY, "server shutting down")
    }

    async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, axum::Error>>,
    ) -> Result<(), End> {
        let msg = match incoming {
            None => return Err(End::Gone),
            Some(Err(err)) => return Err(read_error(err)),
            Some(Ok(msg)) => msg,
        };
        match msg {
            Message::Text(text) => self.on_text(text).await,
            Message::Binary(_) => Err(End::Close(
                close_code::UNSUPPORTED_DATA,
                "binary frames are not supported",
            )),
            Message::Close(_) => Err(End::Gone),
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn on_text(&mut self, raw: Utf8Bytes) -> Result<(), End> {
        let frame = match serde_json::from_str::<ClientFrame>(raw.as_str()) {
            Ok(frame) => frame,
            Err(err) => {
                return self
                    .send(text(&frame_parse_error(raw.as_str(), &err)))
                    .await
            }
        };
        match frame {
            ClientFrame::Send {
                room,
                body,
                client_id,
                reply_to,
            } => {
                let services = self.state.services.clone();
                let sender = self.user.id;
                self.in_flight.push(
                    async move {
                        let posted = services
                            .messages
                            .post(sender, RoomId(room), body, client_id.clone(), reply_to)
                            .await;
                        Some(match posted {
                            Ok(posted) => ServerFrame::Ack {
                                client_id: posted.message.client_id,
                                room,
                                seq: posted.message.seq,
                                created_at: posted.message.created_at.to_rfc3339(),
                            },
                            Err(err) => error_frame(&err, client_id),
                        })
                    }
                    .boxed(),
                );
                Ok(())
            }
            ClientFrame::Edit {
                room,
                seq,
                body,
                reference,
            } => {
                let (services, user) = (self.state.services.clone(), self.user.id);
                self.answer_errors_only(reference, async move {
                    services
                        .messages
                        .edit(user, RoomId(room), seq, body)
                        .await
                        .map(drop)
                });
                Ok(())
            }
            ClientFrame::Delete {
                room,
                seq,
                reference,
            } => {
                let (services, user) = (self.state.services.clone(), self.user.id);
                self.answer_errors_only(reference, async move {
                    services.messages.delete(user, RoomId(room), seq).await
                });
                Ok(())
            }
            ClientFrame::Typing { room, reference } => {
                let room = RoomId(room);
                let now = Instant::now();
                match self.last_typing.iter_mut().find(|(r, _)| *r == room) {
                    Some((_, at)) if now.duration_since(*at) < TYPING_EVERY => return Ok(()),
                    Some((_, at)) => *at = now,
                    None => self.last_typing.push((room, now)),
                }
                let (services, user) = (self.state.services.clone(), self.user.id);
                self.answer_errors_only(reference, async move {
                    services.activity.typing(user, room).await
                });
                Ok(())
            }
            ClientFrame::Read {
                room,
                seq,
                reference,
            } => {
                let (services, user) = (self.state.services.clone(), self.user.id);
                self.answer_errors_only(reference, async move {
                    services
                        .rooms
                        .mark_read(user, RoomId(room), seq)
                        .await
                        .map(drop)
                });
                Ok(())
            }
            ClientFrame::Resume { rooms, reference } => {
                Box::pin(self.resume(rooms, reference)).await
            }
            ClientFrame::Ping { reference } => {
                self.send(text(&ServerFrame::Pong { reference })).await
            }
            ClientFrame::Auth { .. } => {
                self.send(text(&protocol_error(
                    "already_authenticated",
                    "this connection is already authenticated",
                    None,
                )))
                .await
            }
        }
    }

    /// Runs a request whose success the client learns from the event it
    /// causes; only a refusal is answered, by an error frame naming `reference`.
    fn answer_errors_only(
        &mut self,
        reference: Option<String>,
        work: impl std::future::Future<Output = palaver_domain::Result<()>> + Send + 'static,
    ) {
        self.in_flight
            .push(async move { work.await.err().map(|err| error_frame(&err, reference)) }.boxed());
    }

    /// Sends what the client missed in each named room: seqs after the client's
    /// position up to what this connection has already delivered. Later
    /// messages follow live, so nothing is sent twice.
    async fn resume(
        &mut self,
        rooms: BTreeMap<String, u64>,
        reference: Option<String>,
    ) -> Result<(), End> {
        for (key, seen) in rooms {
            let room = match key.parse::<i64>() {
                Ok(id) if self.positions.contains_key(&RoomId(id)) => RoomId(id),
                _ => {
                    let err = Error::NotFound("room");
                    self.send(text(&error_frame(&err, reference.clone())))
                        .await?;
                    continue;
                }
            };
            let delivered = self.positions[&room];
            if seen >= delivered {
                // The client is ahead of this connection (another tab saw more).
                self.positions.insert(room, seen);
                continue;
            }
            self.send_range(room, seen, delivered).await?;
            self.socket.flush().await.map_err(|_| End::Gone)?;
        }
        Ok(())
    }

    /// `deliver_batch`, unless the connection was cut off as a slow consumer and
    /// the write stays stuck past the grace period: a client that reads nothing
    /// would otherwise hold the session (and its socket) forever. A client that is
    /// merely slow finishes the write and then gets its 1013 close frame.
    async fn deliver_batch_or_drop_if_stuck(&mut self, first: Outbound) -> Result<(), End> {
        let conn = self.conn.clone();
        let grace = Duration::from_millis(self.state.settings.ws_stuck_write_grace_ms);
        tokio::select! {
            biased;
            delivered = self.deliver_batch(first) => delivered,
            _ = async {
                conn.stop.raised_for(StopReason::SlowConsumer).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::info!(conn = self.conn.id, "slow consumer stuck past the grace period; dropped");
                Err(End::Gone)
            }
        }
    }

    /// Writes a finished send's answer, every other answer already finished,
    /// and what the hub has already queued, then flushes once. The sender's
    /// own copy of its message is usually queued by then (the writer acks,
    /// then publishes), so ack and copy leave in one write, not two.
    async fn answer_sends(&mut self, first: Option<ServerFrame>) -> Result<(), End> {
        let mut reply = first;
        loop {
            if let Some(frame) = reply {
                self.feed(text(&frame)).await?;
            }
            match self.in_flight.next().now_or_never() {
                Some(Some(next)) => reply = next,
                _ => break,
            }
        }
        match self.queue.try_recv() {
            Ok(item) => self.deliver_batch_or_drop_if_stuck(item).await,
            Err(_) => self.socket.flush().await.map_err(|_| End::Gone),
        }
    }

    /// Writes the first queued item and up to `MAX_FRAMES_PER_FLUSH` more that
    /// are already waiting, then flushes once.
    async fn deliver_batch(&mut self, first: Outbound) -> Result<(), End> {
        self.deliver(first).await?;
        for _ in 1..MAX_FRAMES_PER_FLUSH {
            match self.queue.try_recv() {
                Ok(item) => self.deliver(item).await?,
                Err(_) => break,
            }
        }
        self.socket.flush().await.map_err(|_| End::Gone)
    }

    async fn deliver(&mut self, item: Outbound) -> Result<(), End> {
        match item {
            Outbound::Sequenced(frame) => self.deliver_sequenced(frame).await,
            Outbound::Frame(json) => self.feed(Message::Text((*json).clone())).await,
            Outbound::Joined(joined) => {
                let Joined { room, last_seq } = *joined;
                if let std::collections::hash_map::Entry::Vacant(entry) = self.positions.entry(room)
                {
                    entry.insert(last_seq);
                    // Messages committed between the join and our following the
                    // room reached the hub before us: read them from the store.
                    Box::pin(self.catch_up(room, None)).await?;
                }
                Ok(())
            }
            Outbound::Left(room) => {
                self.positions.remove(&room);
                Ok(())
            }
        }
    }

    async fn deliver_sequenced(&mut self, frame: Arc<SequencedFrame>) -> Result<(), End> {
        let Some(delivered) = self.positions.get_mut(&frame.room) else {
            // Not (or no longer) following: a late frame from before a leave, or
            // one racing ahead of our `Joined` (which catches up from the store).
            return Ok(());
        };
        if frame.seq <= *delivered {
            return Ok(());
        }
        if frame.seq == *delivered + 1 {
            // The common case, with one map lookup.
            *delivered = frame.seq;
            return self.feed(Message::Text(frame.json.clone())).await;
        }
        Box::pin(self.catch_up(frame.room, Some(frame.seq - 1))).await?;
        if self.positions.get(&frame.room) == Some(&(frame.seq - 1)) {
            self.positions.insert(frame.room, frame.seq);
            self.feed(Message::Text(frame.json.clone())).await?;
        }
        Ok(())
    }

    /// Delivers stored messages after the room's position (up to `through`, or
    /// to the newest), advancing the position.
    async fn catch_up(&mut self, room: RoomId, through: Option<u64>) -> Result<(), End> {
        loop {
            let Some(&after) = self.positions.get(&room) else {
                return Ok(());
            };
            if through.is_some_and(|t| after >= t) {
                return Ok(());
            }
            let page = match self
                .state
                .services
                .messages
                .catch_up(self.user.id, room, after, CATCH_UP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(Error::NotFound(_)) => {
                    self.positions.remove(&room);
                    return Ok(());
                }
                Err(err) => {
                    tracing::warn!(%err, %room, "catch-up failed; will retry on the next message");
                    return Ok(());
                }
            };
            let full = page.len() == CATCH_UP_PAGE as usize;
            for message in page {
                if through.is_some_and(|t| message.seq > t) {
                    return Ok(());
                }
                self.positions.insert(room, message.seq);
                self.feed(Message::Text(message.to_frame_json().into()))
                    .await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Re-sends stored messages in `(after, through]` without moving the position.
    async fn send_range(&mut self, room: RoomId, mut after: u64, through: u64) -> Result<(), End> {
        while after < through {
            let limit = (through - after).min(CATCH_UP_PAGE as u64) as u32;
            let page = match self
                .state
                .services
                .messages
                .catch_up(self.user.id, room, after, limit)
                .await
            {
                Ok(page) => page,
                Err(err) => return self.send(text(&error_frame(&err, None))).await,
            };
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            for message in page {
                self.feed(Message::Text(message.to_frame_json().into()))
                    .await?;
            }
        }
        Ok(())
    }

    async fn feed(&mut self, msg: Message) -> Result<(), End> {
        self.socket.feed(msg).await.map_err(|_| End::Gone)
    }

    async fn send(&mut self, msg: Message) -> Result<(), End> {
        self.socket.send(msg).await.map_err(|_| End::Gone)
    }
}

/// Before a write of delivered frames: a batch being committed is published
/// within about a millisecond, and one scheduler turn usually lets its frames
/// join this write, which costs the core far less than a write of its own (a
/// write carried one commit's frames before: docs/benchmarks.md, eighth
/// session). With the writer idle (light load) there is nothing to wait for.
/// Acks never wait for it: they leave as soon as their commit is done.
async fn wait_for_a_committing_batch(state: &AppState) {
    if state.services.messages.committing() {
        tokio::task::yield_now().await;
    }
}

/// Oversized frames close with 1009; any other read error means the peer is gone.
fn read_error(err: axum::Error) -> End {
    match err.into_inner().downcast::<tungstenite::Error>() {
        Ok(err) if matches!(*err, tungstenite::Error::Capacity(_)) => {
            End::Close(close_code::MESSAGE_TOO_BIG, "frame too large")
        }
        _ => End::Gone,
    }
}

/// An error frame for text that is not a valid client frame, echoing the
/// frame's `client_id` or `ref` when it can be read.
fn frame_parse_error(raw: &str, err: &serde_json::Error) -> ServerFrame {
    let value = serde_json::from_str::<serde_json::Value>(raw).ok();
    let reference = value.as_ref().and_then(|v| {
        v.get("client_id")
            .or_else(|| v.get("ref"))
            .and_then(|r| r.as_str())
            .map(str::to_owned)
    });
    let known_type = value
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(|t| t.as_str())
        .is_some_and(|t| ["auth", "send", "resume", "ping"].contains(&t));
    match &value {
        None => protocol_error("malformed_frame", "frame is not valid JSON", reference),
        Some(v) if !v.is_object() || v.get("type").is_none() => protocol_error(
            "malformed_frame",
            "frame must be a JSON object with a \"type\"",
            reference,
        ),
        Some(_) if !known_type => protocol_error(
            "unknown_type",
            "unknown frame type; expected send, resume or ping",
            reference,
        ),
        Some(_) => protocol_error("invalid_frame", err.to_string(), reference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(raw: &str) -> (String, Option<String>) {
        let err = serde_json::from_str::<ClientFrame>(raw).unwrap_err();
        match frame_parse_error(raw, &err) {
            ServerFrame::Error {
                code, reference, ..
            } => (code, reference),
            other => panic!("not an error frame: {other:?}"),
        }
    }

    #[test]
    fn classifies_bad_frames_and_echoes_references() {
        assert_eq!(parse_error("{nope").0, "malformed_frame");
        assert_eq!(parse_error("[1,2]").0, "malformed_frame");
        assert_eq!(
            parse_error(r#"{"type":"dance","ref":"r1"}"#),
            ("unknown_type".into(), Some("r1".into()))
        );
        assert_eq!(
            parse_error(r#"{"type":"send","client_id":"c9"}"#),
            ("invalid_frame".into(), Some("c9".into()))
        );
    }
}
