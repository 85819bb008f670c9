//! A STOMP connection as a session transport.
//!
//! In: each client frame becomes at most one client frame of the session
//! (`SEND` to `/app/message/…` a `send`, to `/app/typing` a `typing`…).
//! What the session need not see (a `SUBSCRIBE`, a `DISCONNECT`) becomes a
//! `ping` whose `ref` names its receipt, so the session answers every frame
//! in order and counts it against the connection's frame budget. A
//! `SUBSCRIBE` to a room is first checked in the domain: not a member,
//! `not_found`; with `x-after-seq` it becomes the session's `resume`.
//!
//! Out: the session's frames are routed to the subscriptions whose topic
//! they belong to (`MESSAGE` frames with a JSON body), the rest dropped. A
//! frame goes at most once to each kind of destination (its room's topic,
//! `/user/topic/rooms`…), and a connection follows a destination once, so
//! however many subscriptions a client opens, one frame of the session is
//! at most two `MESSAGE`s (a `message` on its room's topic and on
//! `/user/topic/rooms`); an
//! answer naming a frame that asked for a receipt is its `RECEIPT`; an
//! `error` is an `ERROR` whose `message` is the machine code, after which
//! the connection closes, as STOMP requires.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::future::BoxFuture;
use futures::{Sink, Stream};
use palaver_domain::{RoomId, Services, UserId};
use palaver_protocol::close_code::{self, CloseReason};
use palaver_protocol::stomp::{
    Command, Decoder, Frame, HeartBeats, SendTarget, StompError, Topic, Version,
};
use palaver_protocol::ws::{ClientFrame, FrameError, ServerFrame};
use serde::Deserialize;
use tokio::time::{Instant, Sleep};

use crate::http::websocket::too_large;
use crate::session::{self, Inbound, Outgoing, PendingAnswers};

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 256;
/// Frames awaiting their receipt, at most (the session has at most 256
/// sends in flight; the rest answer at once).
const MAX_PENDING_RECEIPTS: usize = 512;
/// A client silent for this many of its promised heart-beat intervals is gone.
const SILENCE_FACTOR: u32 = 2;

/// What a pending reference is answered with.
#[derive(Debug)]
struct Pending {
    /// The `receipt` header of the frame, when it asked for one.
    receipt: Option<String>,
    /// The frame was a `DISCONNECT`: close once it is answered.
    disconnect: bool,
}

/// One subscription: its client-chosen id and what it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subscription {
    id: String,
    topic: Topic,
}

/// A `SUBSCRIBE` to a room waiting for the domain to say whether the user
/// is a member.
struct MembershipCheck {
    check: BoxFuture<'static, Result<(), palaver_domain::Error>>,
    subscription: Subscription,
    after_seq: Option<u64>,
    receipt: Option<String>,
}

pub struct StompTransport {
    socket: WebSocket,
    decoder: Decoder,
    version: Version,
    services: Arc<Services>,
    user: UserId,
    /// The `CONNECTED` frame, sent when the session says it is ready.
    connected: Option<Frame>,
    subscriptions: Vec<Subscription>,
    checking: Option<MembershipCheck>,
    /// What answers each reference; a resent `client_id` queues several.
    pending: PendingAnswers<Pending>,
    next_message_id: u64,
    /// WebSocket messages accepted by the sink, not yet handed to the socket.
    outbox: VecDeque<Message>,
    /// Sends an EOL when nothing else left for this long.
    heart_beat: Option<(Duration, Pin<Box<Sleep>>)>,
    /// Ends the connection when the client is silent for this long.
    silence: Option<(Duration, Pin<Box<Sleep>>)>,
    /// Set once the close is under way: nothing more is read or written,
    /// and the stream ends when the client closes or the grace runs out.
    closing: Option<Pin<Box<Sleep>>>,
}

impl StompTransport {
    /// `decoder` holds whatever followed the `CONNECT` frame; `connected`
    /// is written when the session is ready, before anything else.
    pub fn new(
        socket: WebSocket,
        decoder: Decoder,
        services: Arc<Services>,
        user: UserId,
        connected: Frame,
        heart_beats: HeartBeats,
    ) -> Self {
        let version = decoder.version();
        let timer = |ms: Option<u32>, factor: u32| {
            ms.map(|ms| {
                let every = Duration::from_millis(u64::from(ms)) * factor;
                (every, Box::pin(tokio::time::sleep(every)))
            })
        };
        Self {
            socket,
            decoder,
            version,
            services,
            user,
            connected: Some(connected),
            subscriptions: Vec::new(),
            checking: None,
            pending: PendingAnswers::new("stomp", MAX_PENDING_RECEIPTS),
            next_message_id: 0,
            outbox: VecDeque::new(),
            heart_beat: timer(heart_beats.server_sends_every_ms, 1),
            silence: timer(heart_beats.client_sends_every_ms, SILENCE_FACTOR),
            closing: None,
        }
    }

    /// Sends `error` and closes: for a refusal before any session, in
    /// terms the session's close reasons do not have.
    pub async fn refuse(&mut self, error: Frame) {
        self.push_close(error);
        let flushed = futures::future::poll_fn(|cx| self.poll_drain(cx, true));
        if matches!(
            tokio::time::timeout(session::CLOSE_TIMEOUT, flushed).await,
            Ok(Ok(()))
        ) {
            // Read until the client closes: a reset could lose the ERROR.
            let _ = tokio::time::timeout(session::CLOSE_TIMEOUT, async {
                while futures::StreamExt::next(self).await.is_some() {}
            })
            .await;
        }
    }

    fn take(&mut self, reference: Option<&str>) -> Option<Pending> {
        self.pending.take(reference?)
    }

    /// A reference for a frame whose answer matters (it asked for a receipt,
    /// or is a `DISCONNECT`); `Err` when too many wait already.
    fn reference_for(
        &mut self,
        receipt: Option<&str>,
        disconnect: bool,
    ) -> Result<Option<String>, FrameError> {
        if receipt.is_none() && !disconnect {
            return Ok(None);
        }
        let reference = self.pending.fresh_reference();
        let pending = Pending {
            receipt: receipt.map(str::to_owned),
            disconnect,
        };
        match self.pending.insert(reference.clone(), pending) {
            Ok(()) => Ok(Some(reference)),
            Err(_) => Err(too_many_receipts(receipt)),
        }
    }

    /// The session's counterpart of one client frame; `None` when there
    /// is none yet (a membership check started, or nothing to say).
    fn inbound(&mut self, frame: Frame) -> Option<Inbound> {
        let receipt = frame.header("receipt").map(str::to_owned);
        let refused = |code: &'static str, message: String| {
            Some(Inbound::Invalid(FrameError {
                code,
                message,
                reference: None,
            }))
        };
        let ping = |reference| Some(Inbound::Frame(ClientFrame::Ping { reference }));
        match frame.command {
            Command::Send => self.send(&frame, receipt),
            Command::Subscribe => self.subscribe(&frame, receipt),
            Command::Unsubscribe => {
                let Some(id) = frame.header("id") else {
                    return refused("invalid_frame", "UNSUBSCRIBE needs an id header".into());
                };
                self.subscriptions.retain(|s| s.id != id);
                match self.reference_for(receipt.as_deref(), false) {
                    Ok(reference) => ping(reference),
                    Err(err) => Some(Inbound::Invalid(err)),
                }
            }
            // Every MESSAGE is sent in `auto` mode: acknowledging one is a no-op.
            Command::Ack | Command::Nack => match self.reference_for(receipt.as_deref(), false) {
                Ok(reference) => ping(reference),
                Err(err) => Some(Inbound::Invalid(err)),
            },
            Command::Disconnect => match self.reference_for(receipt.as_deref(), true) {
                Ok(reference) => ping(reference),
                Err(err) => Some(Inbound::Invalid(err)),
            },
            Command::Connect | Command::Stomp => {
                refused("already_authenticated", "already connected".into())
            }
            Command::Begin | Command::Commit | Command::Abort => refused(
                "invalid_frame",
                "transactions are not supported: every SEND stands alone".into(),
            ),
            Command::Connected | Command::Message | Command::Receipt | Command::Error => refused(
                "unknown_type",
                format!("{} is a server frame", frame.command),
            ),
        }
    }

    fn send(&mut self, frame: &Frame, receipt: Option<String>) -> Option<Inbound> {
        let target = match frame.header("destination").map(SendTarget::parse) {
            None => return Some(invalid("SEND needs a destination header", receipt)),
            Some(Err(err)) => return Some(refusal(err.code(), err.message, receipt)),
            Some(Ok(target)) => target,
        };
        let parsed = match target {
            SendTarget::RoomMessage(room) => {
                return Some(match body::<MessageBody>(&frame.body) {
                    Ok(message) => self.post(room, message, receipt),
                    Err(err) => invalid(&err, receipt),
                })
            }
            SendTarget::Reaction => {
                return Some(match body::<ReactionBody>(&frame.body) {
                    Ok(reaction) => self.react(reaction, receipt),
                    Err(err) => invalid(&err, receipt),
                })
            }
            SendTarget::Typing => body::<RoomBody>(&frame.body).map(|b| (b.room_id, None)),
            SendTarget::Read => body::<ReadBody>(&frame.body).map(|b| (b.room_id, Some(b.seq))),
            SendTarget::ExtendOnline => Ok((0, None)),
        };
        let (room, seq) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return Some(invalid(&err, receipt)),
        };
        let reference = match self.reference_for(receipt.as_deref(), false) {
            Ok(reference) => reference,
            Err(err) => return Some(Inbound::Invalid(err)),
        };
        Some(Inbound::Frame(match (target, seq) {
            (SendTarget::Read, Some(seq)) => ClientFrame::Read {
                room,
                seq,
                reference,
            },
            (SendTarget::Typing, _) => ClientFrame::Typing { room, reference },
            // Online is being connected: the session's presence needs no
            // renewal, so this is answered like any other frame.
            _ => ClientFrame::Ping { reference },
        }))
    }

    /// A reaction to add or remove: answered by its receipt, once done.
    fn react(&mut self, reaction: ReactionBody, receipt: Option<String>) -> Inbound {
        let reference = match self.reference_for(receipt.as_deref(), false) {
            Ok(reference) => reference,
            Err(err) => return Inbound::Invalid(err),
        };
        let ReactionBody {
            room_id: room,
            seq,
            emoji,
            remove,
        } = reaction;
        Inbound::Frame(if remove {
            ClientFrame::Unreact {
                room,
                seq,
                emoji,
                reference,
            }
        } else {
            ClientFrame::React {
                room,
                seq,
                emoji,
                reference,
            }
        })
    }

    /// A message to post: answered by its `ack`, which names its `client_id`.
    fn post(&mut self, room: i64, message: MessageBody, receipt: Option<String>) -> Inbound {
        let client_id = match (message.client_id, &receipt) {
            (Some(id), _) => Some(id),
            (None, Some(_)) => Some(self.pending.fresh_reference()),
            (None, None) => None,
        };
        if let (Some(id), Some(receipt)) = (&client_id, &receipt) {
            let pending = Pending {
                receipt: Some(receipt.clone()),
                disconnect: false,
            };
            if self.pending.insert(id.clone(), pending).is_err() {
                return Inbound::Invalid(too_many_receipts(Some(receipt)));
            }
        }
        Inbound::Frame(ClientFrame::Send {
            room,
            body: message.body,
            client_id,
            reply_to: message.reply_to,
            attachments: message.attachments,
        })
    }

    fn subscribe(&mut self, frame: &Frame, receipt: Option<String>) -> Option<Inbound> {
        let (Some(id), Some(destination)) = (frame.header("id"), frame.header("destination"))
        else {
            return Some(invalid(
                "SUBSCRIBE needs an id and a destination header",
                receipt,
            ));
        };
        if self.subscriptions.iter().any(|s| s.id == id) {
            return Some(invalid(
                &format!("subscription id {id:?} is already in use"),
                receipt,
            ));
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            let message = format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection");
            return Some(refusal("overloaded", message, receipt));
        }
        let topic = match Topic::parse(destination) {
            Ok(topic) => topic,
            Err(err) => return Some(refusal(err.code(), err.message, receipt)),
        };
        // A frame goes to one subscription of a destination anyway: a second
        // one would only ever be silent.
        if self.subscriptions.iter().any(|s| s.topic == topic) {
            return Some(invalid(
                &format!("{topic} is already subscribed to on this connection"),
                receipt,
            ));
        }
        let after_seq = match frame.header("x-after-seq") {
            None => None,
            Some(_) if !matches!(topic, Topic::RoomMessages(_)) => {
                let message = "x-after-seq applies to /topic/message/roomId/{id} only";
                return Some(invalid(message, receipt));
            }
            Some(text) => match text.parse::<u64>() {
                Ok(seq) => Some(seq),
                Err(_) => return Some(invalid("x-after-seq must be a seq", receipt)),
            },
        };
        let subscription = Subscription {
            id: id.to_owned(),
            topic,
        };
        let Some(room) = room_of(topic) else {
            self.subscriptions.push(subscription);
            return self.subscribed(None, receipt);
        };
        let (services, user) = (self.services.clone(), self.user);
        self.checking = Some(MembershipCheck {
            check: Box::pin(async move {
                services
                    .rooms
                    .require_member(user, RoomId(room))
                    .await
                    .map(|_| ())
            }),
            subscription,
            after_seq,
            receipt,
        });
        None
    }

    /// A subscription is in place: what the session does next for it.
    fn subscribed(
        &mut self,
        replay: Option<(i64, u64)>,
        receipt: Option<String>,
    ) -> Option<Inbound> {
        let reference = match self.reference_for(receipt.as_deref(), false) {
            Ok(reference) => reference,
            Err(err) => return Some(Inbound::Invalid(err)),
        };
        Some(Inbound::Frame(match replay {
            // The session replays what followed `seq` and lets nothing
            // through twice; its answer is the receipt.
            Some((room, seq)) => ClientFrame::Resume {
                rooms: [(room.to_string(), seq)].into(),
                reference,
            },
            None => ClientFrame::Ping { reference },
        }))
    }

    /// The membership check under way, once finished.
    fn poll_check(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let Some(checking) = &mut self.checking else {
            return Poll::Ready(None);
        };
        let result = ready!(checking.check.as_mut().poll(cx));
        let MembershipCheck {
            subscription,
            after_seq,
            receipt,
            ..
        } = self.checking.take().expect("checked above");
        Poll::Ready(match result {
            Ok(()) => {
                let replay = room_of(subscription.topic).zip(after_seq);
                self.subscriptions.push(subscription);
                self.subscribed(replay, receipt)
            }
            Err(err) => Some(refusal(err.code(), err.to_string(), receipt)),
        })
    }

    /// Queues `error` and a close; nothing more is read or written.
    fn push_close(&mut self, error: Frame) {
        if self.closing.is_some() {
            return;
        }
        self.outbox.push_back(self.message(&error));
        self.push_ws_close(error.header("message").unwrap_or_default());
    }

    /// Closes the WebSocket normally after an `ERROR` or a `DISCONNECT`:
    /// STOMP says why in the frame, the WebSocket only ends.
    fn push_ws_close(&mut self, reason: &str) {
        self.outbox.push_back(Message::Close(Some(CloseFrame {
            code: close_code::NORMAL,
            reason: Utf8Bytes::from(reason),
        })));
        self.closing = Some(Box::pin(tokio::time::sleep(session::CLOSE_TIMEOUT)));
    }

    fn message(&self, frame: &Frame) -> Message {
        encode(frame, self.version)
    }

    /// Hands the outbox to the socket; with `flush`, flushes it too.
    fn poll_drain(&mut self, cx: &mut Context<'_>, flush: bool) -> Poll<Result<(), axum::Error>> {
        while !self.outbox.is_empty() {
            ready!(Pin::new(&mut self.socket).poll_ready(cx))?;
            let message = self.outbox.pop_front().expect("not empty");
            Pin::new(&mut self.socket).start_send(message)?;
            if let Some((every, timer)) = &mut self.heart_beat {
                timer.as_mut().reset(Instant::now() + *every);
            }
        }
        if flush {
            ready!(Pin::new(&mut self.socket).poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// An EOL when nothing else was written for the agreed interval.
    fn poll_heart_beat(&mut self, cx: &mut Context<'_>) {
        let Some((_, timer)) = &mut self.heart_beat else {
            return;
        };
        if timer.as_mut().poll(cx).is_pending() || self.closing.is_some() {
            return;
        }
        if self.outbox.is_empty() {
            self.outbox
                .push_back(Message::Text(Utf8Bytes::from_static("\n")));
        }
        // A socket that takes nothing is the write deadline's to cut.
        let _ = self.poll_drain(cx, true);
    }

    /// Routes one server frame: its STOMP frames go to the outbox.
    fn outgoing(&mut self, frame: &ServerFrame) -> Option<String> {
        match frame {
            ServerFrame::Ready { user, .. } => {
                if let Some(mut connected) = self.connected.take() {
                    if let Some(name) = &user.username {
                        connected = connected.with_header("user-name", name);
                    }
                    self.outbox.push_back(self.message(&connected));
                }
                None
            }
            ServerFrame::Rooms { .. } => None,
            ServerFrame::Ack {
                client_id,
                room,
                seq,
                ..
            } => {
                if let Some(Pending {
                    receipt: Some(receipt),
                    ..
                }) = self.take(client_id.as_deref())
                {
                    let frame = Frame::receipt(&receipt)
                        .with_header("room", room.to_string())
                        .with_header("seq", seq.to_string());
                    self.outbox.push_back(self.message(&frame));
                }
                None
            }
            ServerFrame::Pong { reference } => {
                self.done(reference.as_deref());
                None
            }
            ServerFrame::Error {
                code,
                message,
                reference,
                ..
            } => {
                let pending = self.take(reference.as_deref());
                let receipt = pending.and_then(|p| p.receipt);
                self.push_close(Frame::error(code, message, receipt.as_deref()));
                None
            }
            _ => Some(frame.to_json()),
        }
    }

    /// A request named by `reference` succeeded: its receipt, if it asked.
    fn done(&mut self, reference: Option<&str>) {
        let Some(pending) = self.take(reference) else {
            return;
        };
        if let Some(receipt) = &pending.receipt {
            self.outbox
                .push_back(self.message(&Frame::receipt(receipt)));
        }
        if pending.disconnect {
            self.push_ws_close("disconnected");
        }
    }

    /// Sends a frame's JSON to the subscriptions it goes to (`recipients`).
    fn route(&mut self, json: &str) {
        let Ok(head) = serde_json::from_str::<Head>(json) else {
            tracing::error!("a server frame STOMP could not route");
            return;
        };
        let Self {
            subscriptions,
            outbox,
            next_message_id,
            version,
            user,
            ..
        } = self;
        for subscription in recipients(subscriptions, &head, user.0) {
            *next_message_id += 1;
            let mut frame = Frame::new(Command::Message)
                .with_header("destination", subscription.topic.to_string())
                .with_header("subscription", subscription.id.clone())
                .with_header("message-id", next_message_id.to_string())
                .with_header("content-type", "application/json");
            if let (Some(seq), Topic::RoomMessages(_)) = (head.seq, subscription.topic) {
                frame = frame.with_header("seq", seq.to_string());
            }
            let frame = frame.with_body(json.as_bytes());
            outbox.push_back(encode(&frame, *version));
        }
    }
}

/// The subscriptions a frame goes to: of each kind of destination, the
/// first that it belongs to. Without this, a client could multiply what the
/// node writes for it (and what every frame costs) by its subscriptions: a
/// `presence` frame belongs to every `/topic/onlineStatus/...` one.
fn recipients<'s>(
    subscriptions: &'s [Subscription],
    head: &'s Head<'_>,
    me: i64,
) -> impl Iterator<Item = &'s Subscription> + 's {
    let mut served = [false; TOPIC_KINDS];
    subscriptions.iter().filter(move |subscription| {
        let kind = topic_kind(subscription.topic);
        if served[kind] || !head.belongs_to(subscription.topic, me) {
            return false;
        }
        served[kind] = true;
        true
    })
}

/// How many kinds of destination there are (`topic_kind`).
const TOPIC_KINDS: usize = 5;

fn topic_kind(topic: Topic) -> usize {
    match topic {
        Topic::RoomMessages(_) => 0,
        Topic::RoomTyping(_) => 1,
        Topic::RoomOnlineStatus(_) => 2,
        Topic::RoomReadMarkers(_) => 3,
        Topic::UserRooms => 4,
    }
}

/// What routing needs of a frame's JSON.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    room: Option<RoomRef>,
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    seq: Option<u64>,
}

impl Head<'_> {
    /// Whether a subscription to `topic` of user `me` gets this frame.
    fn belongs_to(&self, topic: Topic, me: i64) -> bool {
        let room = self.room.as_ref().map(RoomRef::id);
        match topic {
            Topic::RoomMessages(id) => {
                room == Some(id)
                    && matches!(
                        self.kind,
                        "message"
                            | "message_edited"
                            | "message_deleted"
                            | "reaction_added"
                            | "reaction_removed"
                    )
            }
            Topic::RoomTyping(id) => room == Some(id) && self.kind == "typing",
            Topic::RoomReadMarkers(id) => room == Some(id) && self.kind == "read",
            // A presence frame names no room: it is of someone who shares
            // one with the user, so every such topic gets it.
            Topic::RoomOnlineStatus(_) => self.kind == "presence",
            Topic::UserRooms => match self.kind {
                // A member's own read marker changes their unread count.
                "read" => self.user_id == Some(me),
                kind => USER_ROOMS_FRAMES.contains(&kind),
            },
        }
    }
}

/// The frames `/user/topic/rooms` gets, besides the user's own `read`.
const USER_ROOMS_FRAMES: [&str; 10] = [
    "message",
    "member_joined",
    "member_left",
    "member_removed",
    "user_deleted",
    "role_changed",
    "room_updated",
    "room_deleted",
    "invited",
    "mentioned",
];

/// A frame's `room`: an id, or (in `room_updated`) the room itself.
#[derive(Deserialize)]
#[serde(untagged)]
enum RoomRef {
    Id(i64),
    Room { id: i64 },
}

impl RoomRef {
    fn id(&self) -> i64 {
        match self {
            RoomRef::Id(id) | RoomRef::Room { id } => *id,
        }
    }
}

/// The body of a `SEND` to `/app/message/roomId/{id}`.
#[derive(Deserialize)]
struct MessageBody {
    body: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    reply_to: Option<u64>,
    #[serde(default)]
    attachments: Vec<String>,
}

/// The body of a `SEND` to `/app/typing`.
#[derive(Deserialize)]
struct RoomBody {
    #[serde(rename = "roomId")]
    room_id: i64,
}

/// The body of a `SEND` to `/app/read`.
#[derive(Deserialize)]
struct ReadBody {
    #[serde(rename = "roomId")]
    room_id: i64,
    seq: u64,
}

/// The body of a `SEND` to `/app/reaction`.
#[derive(Deserialize)]
struct ReactionBody {
    #[serde(rename = "roomId")]
    room_id: i64,
    seq: u64,
    emoji: String,
    /// Take the reaction back instead.
    #[serde(default)]
    remove: bool,
}

/// A frame as the WebSocket message that carries it.
fn encode(frame: &Frame, version: Version) -> Message {
    let bytes = frame.encode(version);
    // Our frames are UTF-8 (headers are strings, bodies JSON or text):
    // text messages are what every STOMP client reads.
    match String::from_utf8(bytes) {
        Ok(text) => Message::Text(text.into()),
        Err(err) => Message::Binary(err.into_bytes().into()),
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|err| format!("the body is not the JSON expected: {err}"))
}

fn room_of(topic: Topic) -> Option<i64> {
    match topic {
        Topic::RoomMessages(room)
        | Topic::RoomTyping(room)
        | Topic::RoomOnlineStatus(room)
        | Topic::RoomReadMarkers(room) => Some(room),
        Topic::UserRooms => None,
    }
}

fn stomp_error(err: &StompError) -> Inbound {
    Inbound::Invalid(FrameError {
        code: err.code(),
        message: err.message.clone(),
        reference: None,
    })
}

/// An `invalid_frame` error for a frame that asked for `receipt`.
fn invalid(message: &str, receipt: Option<String>) -> Inbound {
    refusal("invalid_frame", message.to_owned(), receipt)
}

/// An error the session answers, naming the receipt: the connection ends
/// with it, so the receipt is carried in the reference itself rather than
/// waiting among the pending ones.
fn refusal(code: &'static str, message: String, receipt: Option<String>) -> Inbound {
    Inbound::Invalid(FrameError {
        code,
        message,
        reference: receipt.map(|r| format!("{RECEIPT_PREFIX}{r}")),
    })
}

/// The prefix of a reference that is a receipt itself.
const RECEIPT_PREFIX: &str = "receipt:";

fn too_many_receipts(receipt: Option<&str>) -> FrameError {
    FrameError {
        code: "overloaded",
        message: "too many frames awaiting their receipt".into(),
        reference: receipt.map(|r| format!("{RECEIPT_PREFIX}{r}")),
    }
}

impl Stream for StompTransport {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let this = &mut *self;
        if this.closing.is_some() {
            // Whatever the client still sends is read and dropped, until it
            // closes or its time is up.
            let _ = this.poll_drain(cx, true);
            let grace = this.closing.as_mut().expect("checked above");
            if grace.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            loop {
                match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Poll::Ready(None),
                    Some(Ok(_)) => continue,
                }
            }
        }
        this.poll_heart_beat(cx);
        if let Some((_, silence)) = &mut this.silence {
            if silence.as_mut().poll(cx).is_ready() {
                tracing::debug!("a STOMP client missed its heart-beats");
                return Poll::Ready(None);
            }
        }
        loop {
            if this.checking.is_some() {
                match ready!(this.poll_check(cx)) {
                    Some(inbound) => return Poll::Ready(Some(inbound)),
                    None => continue,
                }
            }
            match this.decoder.next_frame() {
                Err(err) => return Poll::Ready(Some(stomp_error(&err))),
                Ok(Some(frame)) => {
                    if let Some(inbound) = this.inbound(frame) {
                        return Poll::Ready(Some(inbound));
                    }
                    continue;
                }
                Ok(None) => {}
            }
            let data = match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(None),
                Some(Err(err)) => return Poll::Ready(too_large(err).then_some(Inbound::TooLarge)),
                Some(Ok(Message::Text(text))) => text.into(),
                Some(Ok(Message::Binary(bytes))) => bytes,
                // tungstenite answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            };
            if let Some((every, silence)) = &mut this.silence {
                silence.as_mut().reset(Instant::now() + *every);
            }
            this.decoder.feed(&data);
        }
    }
}

impl Sink<Outgoing> for StompTransport {
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_drain(cx, false)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
        if self.closing.is_some() {
            return Ok(());
        }
        let json = match item {
            Outgoing::Done(reference) => {
                self.done(Some(&reference));
                return Ok(());
            }
            Outgoing::Close(reason) => {
                self.push_close(close_error(reason));
                return Ok(());
            }
            Outgoing::Encoded(frame) => frame.json().as_str().to_owned(),
            Outgoing::Frame(ServerFrame::Error {
                code,
                message,
                reference: Some(reference),
                ..
            }) if reference.starts_with(RECEIPT_PREFIX) => {
                let receipt = &reference[RECEIPT_PREFIX.len()..];
                self.push_close(Frame::error(&code, &message, Some(receipt)));
                return Ok(());
            }
            Outgoing::Frame(frame) => match self.outgoing(&frame) {
                Some(json) => json,
                None => return Ok(()),
            },
        };
        self.route(&json);
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_drain(cx, true)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.poll_drain(cx, true))?;
        Pin::new(&mut self.socket).poll_close(cx)
    }
}

/// The `ERROR` that says why the session ended.
pub fn close_error(reason: CloseReason) -> Frame {
    Frame::error(reason.error_code(), reason.reason(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(json: &str) -> Head<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn frames_reach_the_topics_they_belong_to_and_no_other() {
        let message = ServerFrame::Message {
            room: 7,
            seq: 3,
            sender_id: 1,
            body: "hi".into(),
            created_at: "2024-01-01T00:00:00Z".into(),
            client_id: None,
            reply_to: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        }
        .to_json();
        let message = head(&message);
        assert_eq!(message.seq, Some(3));
        assert!(message.belongs_to(Topic::RoomMessages(7), 1));
        assert!(message.belongs_to(Topic::UserRooms, 1));
        assert!(!message.belongs_to(Topic::RoomMessages(8), 1));
        assert!(!message.belongs_to(Topic::RoomTyping(7), 1));

        let typing = head(r#"{"type":"typing","room":7,"user_id":2,"expires_in_ms":3000}"#);
        assert!(typing.belongs_to(Topic::RoomTyping(7), 1));
        assert!(!typing.belongs_to(Topic::UserRooms, 1));
        assert!(!typing.belongs_to(Topic::RoomMessages(7), 1));

        let read = head(r#"{"type":"read","room":7,"user_id":2,"seq":3}"#);
        assert!(read.belongs_to(Topic::RoomReadMarkers(7), 1));
        assert!(
            !read.belongs_to(Topic::UserRooms, 1),
            "someone else's marker"
        );
        assert!(read.belongs_to(Topic::UserRooms, 2), "one's own marker");

        let presence = head(r#"{"type":"presence","user_id":2,"status":"online","last_seen":"x"}"#);
        assert!(presence.belongs_to(Topic::RoomOnlineStatus(7), 1));
        assert!(!presence.belongs_to(Topic::UserRooms, 1));

        let updated = head(r#"{"type":"room_updated","room":{"id":7,"name":"r"}}"#);
        assert!(updated.belongs_to(Topic::UserRooms, 1));
        assert!(!updated.belongs_to(Topic::RoomMessages(7), 1));
        let pong = head(r#"{"type":"pong"}"#);
        assert!(!pong.belongs_to(Topic::UserRooms, 1));

        let reaction =
            head(r#"{"type":"reaction_added","room":7,"seq":3,"user_id":2,"emoji":"x"}"#);
        assert!(reaction.belongs_to(Topic::RoomMessages(7), 1));
        assert!(!reaction.belongs_to(Topic::RoomMessages(8), 1));
        assert!(!reaction.belongs_to(Topic::UserRooms, 1));
        let removed =
            head(r#"{"type":"reaction_removed","room":7,"seq":3,"user_id":2,"emoji":"x"}"#);
        assert!(removed.belongs_to(Topic::RoomMessages(7), 1));
    }

    #[test]
    fn a_frame_goes_once_to_each_kind_of_destination_however_many_follow_it() {
        let subscriptions: Vec<Subscription> = [
            Topic::RoomOnlineStatus(7),
            Topic::RoomMessages(7),
            Topic::RoomOnlineStatus(8),
            Topic::UserRooms,
            Topic::RoomOnlineStatus(9),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, topic)| Subscription {
            id: format!("s{n}"),
            topic,
        })
        .collect();
        let ids = |json: &str| -> Vec<String> {
            recipients(&subscriptions, &head(json), 1)
                .map(|s| s.id.clone())
                .collect()
        };
        let presence = r#"{"type":"presence","user_id":2,"status":"online","last_seen":"x"}"#;
        assert_eq!(ids(presence), ["s0"]);
        // A message belongs to its room's topic and to the room list: one each.
        let message = r#"{"type":"message","room":7,"seq":3,"sender_id":2,"body":"hi"}"#;
        assert_eq!(ids(message), ["s1", "s3"]);
        assert!(ids(r#"{"type":"typing","room":7,"user_id":2}"#).is_empty());
    }

    #[test]
    fn send_bodies_are_the_documented_json() {
        let message: MessageBody =
            body(br#"{"body":"hi","client_id":"c1","reply_to":2,"extra":0}"#).unwrap();
        assert_eq!(
            (
                message.body.as_str(),
                message.client_id.as_deref(),
                message.reply_to
            ),
            ("hi", Some("c1"), Some(2))
        );
        let read: ReadBody = body(br#"{"roomId":7,"seq":3}"#).unwrap();
        assert_eq!((read.room_id, read.seq), (7, 3));
        assert!(body::<RoomBody>(br#"{"room":7}"#).is_err());
        assert!(body::<MessageBody>(b"not json").is_err());
    }

    #[test]
    fn a_refusal_carries_its_receipt_to_the_error_frame() {
        let Inbound::Invalid(err) = refusal("not_found", "no".into(), Some("r1".into())) else {
            panic!("a refusal is an invalid frame")
        };
        assert_eq!(err.code, "not_found");
        assert_eq!(
            err.reference
                .as_deref()
                .and_then(|r| r.strip_prefix(RECEIPT_PREFIX)),
            Some("r1")
        );
        let closing = close_error(CloseReason::SlowConsumer);
        assert_eq!(closing.header("message"), Some("slow_consumer"));
    }
}
