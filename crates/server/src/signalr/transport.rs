//! A WebSocket past its SignalR handshake as a session transport.
//!
//! In: each record of a message is a hub message. An invocation becomes the
//! client frame its `target` is the `type` of, its one argument the frame's
//! other fields. One with an `invocationId` is named by a reference the
//! transport chooses (its `client_id` for a `send` that has one, else a
//! fresh one), and the answer that names it (`ack`, `error`, `pong`, or
//! `Done`) becomes its completion instead of being invoked. Out: every other
//! frame is a non-blocking invocation of the client method its `type` names,
//! with the frame's JSON object as its one argument.
//!
//! Keep-alive: a Ping record every `PING_EVERY`; a client heard from for
//! nothing (its own pings included) in `CLIENT_TIMEOUT` is gone. One timer
//! serves both, reset only when it fires.
//!
//! An invocation the transport refuses itself (a streaming one, a target of
//! `auth`, an argument that is not an object) still reaches the session, as
//! an `Invalid` frame naming the invocation's reference: the session charges
//! it to the connection's frame budget and answers it under its write
//! deadline, as every other frame.
//!
//! What the transport answers itself (pings, and `overloaded` for an
//! invocation that finds the pending map full, so it cannot be named) waits
//! in a small queue that is written before anything the session sends next;
//! a new message is read only once that queue is empty, so it holds at most
//! one small record per record of one message.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{Sink, Stream};
use palaver_protocol::close_code::CloseReason;
use palaver_protocol::signalr::{records, HubMessage, Limits, SignalRError, SignalRErrorKind};
use palaver_protocol::ws::{ClientFrame, FrameError, ServerFrame};
use serde_json::{Map, Value};
use tokio::time::{Instant, Sleep};

use crate::frames;
use crate::http::websocket::too_large;
use crate::session::{Inbound, Outgoing, PendingAnswers};

/// How often the server pings: half the stock clients' default server
/// timeout (30 s), as ASP.NET Core does.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A client silent this long is gone: twice the stock clients' ping interval.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Invocations awaiting their completion, at most.
const MAX_PENDING_INVOCATIONS: usize = 512;

pub struct SignalRTransport<S = WebSocket> {
    socket: S,
    limits: Limits,
    /// Client frames read from the last message, not yet taken by the session.
    inbound: VecDeque<Inbound>,
    /// Records to write before anything the session sends next.
    outbound: VecDeque<Message>,
    /// Something was written since the last flush.
    unflushed: bool,
    /// The socket said it takes one more message, and none has been given.
    socket_ready: bool,
    /// The client sent a Close message: the stream ends.
    closed_by_client: bool,
    /// The ids of invocations awaiting their completion.
    pending: PendingAnswers<String>,
    keepalive: Keepalive,
}

/// The server's pings and the client's timeout, on one timer.
struct Keepalive {
    timer: Pin<Box<Sleep>>,
    next_ping: Instant,
    last_heard: Instant,
}

enum Tick {
    Ping,
    Silent,
}

impl Keepalive {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            timer: Box::pin(tokio::time::sleep_until(now + PING_EVERY)),
            next_ping: now + PING_EVERY,
            last_heard: now,
        }
    }

    fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// What is due, if anything; `Pending` registers for the next deadline.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Tick> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let now = Instant::now();
            let silent_at = self.last_heard + CLIENT_TIMEOUT;
            if now >= silent_at {
                return Poll::Ready(Tick::Silent);
            }
            let ping = now >= self.next_ping;
            if ping {
                self.next_ping = now + PING_EVERY;
            }
            self.timer.as_mut().reset(self.next_ping.min(silent_at));
            if ping {
                return Poll::Ready(Tick::Ping);
            }
        }
    }
}

impl<S> SignalRTransport<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    /// `socket` past its handshake; `leftover`: what followed the handshake
    /// in its message, read before the socket.
    pub fn new(socket: S, limits: Limits, leftover: &[u8]) -> Self {
        let mut transport = Self {
            socket,
            limits,
            inbound: VecDeque::new(),
            outbound: VecDeque::new(),
            unflushed: false,
            socket_ready: false,
            closed_by_client: false,
            pending: PendingAnswers::new("sr", MAX_PENDING_INVOCATIONS),
            keepalive: Keepalive::new(),
        };
        transport.read(leftover);
        transport
    }

    /// Decodes one message's records into client frames and own answers.
    fn read(&mut self, message: &[u8]) {
        let records = match records(message, &self.limits) {
            Ok(records) => records,
            Err(err) => {
                self.inbound.push_back(match err.kind {
                    SignalRErrorKind::RecordTooLarge | SignalRErrorKind::TooManyRecords => {
                        Inbound::TooLarge
                    }
                    _ => Inbound::Invalid(frame_error(&err)),
                });
                return;
            }
        };
        for record in records {
            match record {
                Ok(message) => self.on_message(message),
                Err(err) => self.inbound.push_back(Inbound::Invalid(frame_error(&err))),
            }
        }
    }

    fn on_message(&mut self, message: HubMessage) {
        match message {
            HubMessage::Invocation {
                invocation_id,
                stream_ids,
                ..
            } if !stream_ids.is_empty() => self.refuse(
                invocation_id,
                "invalid_frame",
                "streams are not served: a hub method takes one object argument",
            ),
            HubMessage::Invocation {
                invocation_id,
                target,
                arguments,
                ..
            } => self.invocation(invocation_id, &target, arguments),
            HubMessage::StreamInvocation { invocation_id, .. } => self.refuse(
                Some(invocation_id),
                "invalid_frame",
                "streaming methods are not served",
            ),
            HubMessage::Close { .. } => self.closed_by_client = true,
            // Pings only show the client is there (`heard`); Palaver never
            // invokes a client method that answers, offers no streams and
            // no stateful reconnect, so the rest has nothing to act on.
            HubMessage::Ping
            | HubMessage::StreamItem { .. }
            | HubMessage::Completion { .. }
            | HubMessage::CancelInvocation { .. }
            | HubMessage::Ack { .. }
            | HubMessage::Sequence { .. }
            | HubMessage::Other { .. } => {}
        }
    }

    fn invocation(&mut self, invocation_id: Option<String>, target: &str, arguments: Vec<Value>) {
        let mut fields = match <[Value; 1]>::try_from(arguments) {
            Ok([Value::Object(fields)]) => fields,
            Ok([Value::Null]) => Map::new(),
            Err(arguments) if arguments.is_empty() => Map::new(),
            _ => {
                return self.refuse(
                    invocation_id,
                    "invalid_frame",
                    "a hub method takes one argument, an object",
                )
            }
        };
        if target == "auth" {
            // The token came with the connection; the session would answer
            // this without a reference, leaving the invocation unanswered.
            return self.refuse(
                invocation_id,
                "already_authenticated",
                "this connection is already authenticated",
            );
        }
        let reference = match invocation_id {
            None => None,
            Some(id) => {
                let reference = match (target, fields.get("client_id")) {
                    ("send", Some(Value::String(client_id))) => client_id.clone(),
                    ("send", _) => {
                        let fresh = self.pending.fresh_reference();
                        fields.insert("client_id".into(), Value::String(fresh.clone()));
                        fresh
                    }
                    _ => {
                        let fresh = self.pending.fresh_reference();
                        fields.insert("ref".into(), Value::String(fresh.clone()));
                        fresh
                    }
                };
                if let Err(id) = self.pending.insert(reference.clone(), id) {
                    return self.overloaded(id);
                }
                Some(reference)
            }
        };
        fields.insert("type".into(), Value::String(target.to_owned()));
        let text = Value::Object(fields).to_string();
        self.inbound.push_back(match ClientFrame::parse(&text) {
            Ok(frame) => Inbound::Frame(frame),
            Err(mut err) => {
                // The session answers by this reference: it must be ours,
                // whatever other reference the fields held.
                if reference.is_some() {
                    err.reference = reference;
                }
                Inbound::Invalid(err)
            }
        });
    }

    /// Refuses an invocation through the session, as any other bad frame:
    /// one that awaits its completion is named by a reference of its own,
    /// so the session's `error` (or `rate_limited`) becomes that completion.
    fn refuse(&mut self, invocation_id: Option<String>, code: &'static str, message: &str) {
        let reference = match invocation_id {
            None => None,
            Some(id) => {
                let reference = self.pending.fresh_reference();
                if let Err(id) = self.pending.insert(reference.clone(), id) {
                    return self.overloaded(id);
                }
                Some(reference)
            }
        };
        self.inbound.push_back(Inbound::Invalid(FrameError {
            code,
            message: message.to_owned(),
            reference,
        }));
    }

    /// The one answer the transport gives itself: an invocation that finds
    /// the pending map full cannot be named for the session to answer. At
    /// most one small record per record of the message being read (the next
    /// message is read only once they are written).
    fn overloaded(&mut self, invocation_id: String) {
        let message = "too many invocations awaiting completion; retry after the others";
        self.outbound.push_back(text(HubMessage::completion_error(
            invocation_id,
            "overloaded",
            message,
        )));
    }

    /// Writes the queued records; `Ready(Ok)` once the queue is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        while !self.outbound.is_empty() {
            ready!(Pin::new(&mut self.socket).poll_ready(cx))?;
            let message = self.outbound.pop_front().expect("checked above");
            self.socket_ready = false;
            Pin::new(&mut self.socket).start_send(message)?;
            self.unflushed = true;
        }
        Poll::Ready(Ok(()))
    }

    /// The messages that say `item`: none, one, or a Close record and the
    /// WebSocket's close frame.
    fn encode(&mut self, item: Outgoing) -> [Option<Message>; 2] {
        let record = match item {
            Outgoing::Done(reference) => {
                let done = self.pending.take(&reference).map(|id| {
                    text(HubMessage::Completion {
                        invocation_id: id,
                        outcome: palaver_protocol::signalr::Outcome::Void,
                    })
                });
                return [done, None];
            }
            Outgoing::Close(reason) => return close(reason),
            Outgoing::Encoded(frame) => frame.signalr_invocation().cloned(),
            Outgoing::Frame(frame) => match self.completion(&frame) {
                Some(completion) => return [Some(text(completion)), None],
                None => frames::signalr_invocation(&frame.to_json()).map(Utf8Bytes::from),
            },
        };
        [record.map(Message::Text), None]
    }

    /// The completion `frame` is the answer of, if it answers an invocation.
    fn completion(&mut self, frame: &ServerFrame) -> Option<HubMessage> {
        let reference = match frame {
            ServerFrame::Ack { client_id, .. } => client_id.as_deref(),
            ServerFrame::Pong { reference } | ServerFrame::Error { reference, .. } => {
                reference.as_deref()
            }
            _ => None,
        }?;
        let id = self.pending.take(reference)?;
        Some(match frame {
            ServerFrame::Error {
                code,
                message,
                retry_after_ms: Some(wait),
                ..
            } => HubMessage::completion_error(
                id,
                code,
                &format!("{message} (retry after {wait} ms)"),
            ),
            ServerFrame::Error { code, message, .. } => {
                HubMessage::completion_error(id, code, message)
            }
            // The invocation id names the ping: the reference chosen for
            // it here is not the client's to see.
            ServerFrame::Pong { .. } => {
                let pong = ServerFrame::Pong { reference: None };
                HubMessage::completion_result(id, serde_json::to_value(pong).expect("serializes"))
            }
            _ => {
                let fields = serde_json::to_value(frame).expect("server frames serialize");
                HubMessage::completion_result(id, fields)
            }
        })
    }
}

/// The Close record (`"<code>: <reason>"`, `allowReconnect` when
/// reconnecting as it was can succeed), then the WebSocket's close frame.
fn close(reason: CloseReason) -> [Option<Message>; 2] {
    let record =
        HubMessage::close_with_error(reason.error_code(), reason.reason(), reason.reconnect());
    [
        Some(text(record)),
        Some(Message::Close(Some(CloseFrame {
            code: reason.code(),
            reason: Utf8Bytes::from_static(reason.reason()),
        }))),
    ]
}

/// A hub message as a WebSocket text message.
fn text(message: HubMessage) -> Message {
    let record = String::from_utf8(message.encode()).expect("JSON records are UTF-8");
    Message::Text(record.into())
}

/// A record that is not a hub message, as the session's `error` frame says it.
fn frame_error(err: &SignalRError) -> FrameError {
    FrameError {
        code: err.code(),
        message: err.message.clone(),
        reference: None,
    }
}

impl<S> Stream for SignalRTransport<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let this = &mut *self;
        loop {
            while let Poll::Ready(tick) = this.keepalive.poll(cx) {
                match tick {
                    Tick::Ping => this.outbound.push_back(text(HubMessage::Ping)),
                    Tick::Silent => return Poll::Ready(None),
                }
            }
            if let Some(inbound) = this.inbound.pop_front() {
                return Poll::Ready(Some(inbound));
            }
            if this.closed_by_client {
                return Poll::Ready(None);
            }
            if ready!(this.poll_drain(cx)).is_err() {
                return Poll::Ready(None);
            }
            if this.unflushed {
                match Pin::new(&mut this.socket).poll_flush(cx) {
                    Poll::Ready(Ok(())) => this.unflushed = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    // The socket wakes this task when it can go on.
                    Poll::Pending => {}
                }
            }
            let message = ready!(Pin::new(&mut this.socket).poll_next(cx));
            this.keepalive.heard();
            match message {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(None),
                Some(Err(err)) => return Poll::Ready(too_large(err).then_some(Inbound::TooLarge)),
                Some(Ok(Message::Text(text))) => this.read(text.as_bytes()),
                // The JSON protocol is text; MessagePack is not served.
                Some(Ok(Message::Binary(_))) => return Poll::Ready(Some(Inbound::Unsupported)),
                // tungstenite answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            }
        }
    }
}

impl<S> Sink<Outgoing> for SignalRTransport<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        ready!(self.poll_drain(cx))?;
        ready!(Pin::new(&mut self.socket).poll_ready(cx))?;
        self.socket_ready = true;
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), axum::Error> {
        for message in self.encode(item).into_iter().flatten() {
            // `poll_ready` left the queue empty and the socket ready for one
            // message; anything more waits its turn in the queue.
            if self.socket_ready && self.outbound.is_empty() {
                self.socket_ready = false;
                Pin::new(&mut self.socket).start_send(message)?;
                self.unflushed = true;
            } else {
                self.outbound.push_back(message);
            }
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        ready!(self.poll_drain(cx))?;
        ready!(Pin::new(&mut self.socket).poll_flush(cx))?;
        self.unflushed = false;
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.socket).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};
    use palaver_protocol::signalr::Outcome;
    use serde_json::json;

    use super::*;
    use crate::frames;
    use crate::session::SharedFrame;

    const LIMITS: Limits = Limits {
        max_record_bytes: 4096,
        max_records: 1024,
    };

    /// Both ends of a WebSocket, as channels (unbounded: a test's input is
    /// finite).
    struct Socket {
        from_client: mpsc::UnboundedReceiver<Result<Message, axum::Error>>,
        to_client: mpsc::UnboundedSender<Message>,
    }

    impl Stream for Socket {
        type Item = Result<Message, axum::Error>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.from_client.poll_next_unpin(cx)
        }
    }

    impl Sink<Message> for Socket {
        type Error = axum::Error;
        fn poll_ready(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), axum::Error>> {
            self.to_client
                .poll_ready_unpin(cx)
                .map_err(axum::Error::new)
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), axum::Error> {
            self.to_client
                .start_send_unpin(item)
                .map_err(axum::Error::new)
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), axum::Error>> {
            self.to_client
                .poll_flush_unpin(cx)
                .map_err(axum::Error::new)
        }
        fn poll_close(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), axum::Error>> {
            self.to_client
                .poll_close_unpin(cx)
                .map_err(axum::Error::new)
        }
    }

    struct Client {
        send: mpsc::UnboundedSender<Result<Message, axum::Error>>,
        received: mpsc::UnboundedReceiver<Message>,
    }

    impl Client {
        fn says(&self, records: &[serde_json::Value]) {
            let text: String = records.iter().map(|r| format!("{r}\u{1e}")).collect();
            self.send
                .unbounded_send(Ok(Message::Text(text.into())))
                .unwrap();
        }

        /// The hub messages written so far.
        fn heard(&mut self) -> Vec<HubMessage> {
            let mut heard = Vec::new();
            while let Ok(message) = self.received.try_recv() {
                let Message::Text(text) = message else {
                    panic!("not a text message: {message:?}")
                };
                heard.extend(
                    records(text.as_bytes(), &LIMITS)
                        .unwrap()
                        .map(Result::unwrap),
                );
            }
            heard
        }
    }

    fn connected() -> (SignalRTransport<Socket>, Client) {
        let (send, from_client) = mpsc::unbounded();
        let (to_client, received) = mpsc::unbounded();
        let socket = Socket {
            from_client,
            to_client,
        };
        (
            SignalRTransport::new(socket, LIMITS, b""),
            Client { send, received },
        )
    }

    fn invoke(id: Option<&str>, target: &str, argument: serde_json::Value) -> serde_json::Value {
        let mut record = json!({"type": 1, "target": target, "arguments": [argument]});
        if let Some(id) = id {
            record["invocationId"] = id.into();
        }
        record
    }

    fn failed(id: &str, error: &str) -> HubMessage {
        HubMessage::Completion {
            invocation_id: id.into(),
            outcome: Outcome::Error(error.into()),
        }
    }

    #[tokio::test]
    async fn invocations_become_frames_and_their_answers_become_completions() {
        let (mut transport, mut client) = connected();
        client.says(&[
            invoke(
                Some("1"),
                "send",
                json!({"room": 7, "body": "hi", "client_id": "c1"}),
            ),
            invoke(Some("2"), "typing", json!({"room": 7})),
            invoke(None, "read", json!({"room": 7, "seq": 3})),
            invoke(Some("3"), "send", json!({"room": 7, "body": "no id"})),
            invoke(Some("4"), "ping", json!({})),
        ]);
        let Some(Inbound::Frame(ClientFrame::Send { client_id, .. })) = transport.next().await
        else {
            panic!("not a send")
        };
        assert_eq!(client_id.as_deref(), Some("c1"));
        let Some(Inbound::Frame(ClientFrame::Typing {
            reference: Some(typing),
            ..
        })) = transport.next().await
        else {
            panic!("not a typing with a reference")
        };
        assert!(matches!(
            transport.next().await,
            Some(Inbound::Frame(ClientFrame::Read {
                seq: 3,
                reference: None,
                ..
            }))
        ));
        let Some(Inbound::Frame(ClientFrame::Send {
            client_id: Some(chosen),
            ..
        })) = transport.next().await
        else {
            panic!("a send awaiting completion gets a client_id")
        };
        assert!(chosen.starts_with("sr-"), "{chosen}");
        let Some(Inbound::Frame(ClientFrame::Ping {
            reference: Some(ping),
        })) = transport.next().await
        else {
            panic!("not a ping with a reference")
        };

        let ack = ServerFrame::Ack {
            client_id: Some("c1".into()),
            room: 7,
            seq: 12,
            created_at: "2024-01-01T00:00:00Z".into(),
        };
        transport.send(Outgoing::Frame(ack.clone())).await.unwrap();
        transport.send(Outgoing::Done(typing)).await.unwrap();
        let refused = frames::error(&palaver_domain::Error::NotFound("room"), Some(chosen));
        transport.send(Outgoing::Frame(refused)).await.unwrap();
        let pong = ServerFrame::Pong {
            reference: Some(ping),
        };
        transport.send(Outgoing::Frame(pong.clone())).await.unwrap();
        // Answered already: the same answer again is just a frame.
        transport.send(Outgoing::Frame(ack.clone())).await.unwrap();
        let heard = client.heard();
        assert_eq!(
            heard[..4],
            [
                HubMessage::completion_result("1", serde_json::to_value(&ack).unwrap()),
                HubMessage::Completion {
                    invocation_id: "2".into(),
                    outcome: Outcome::Void,
                },
                failed("3", "not_found: room not found"),
                // The reference chosen for the ping stays the server's.
                HubMessage::completion_result("4", serde_json::json!({"type": "pong"})),
            ]
        );
        assert_eq!(
            heard[4],
            HubMessage::invocation("ack", serde_json::to_value(&ack).unwrap())
        );
        assert!(transport.pending.is_empty());
    }

    #[tokio::test]
    async fn server_frames_are_invocations_of_the_method_their_type_names() {
        let (mut transport, mut client) = connected();
        let frame = ServerFrame::Typing {
            room: 7,
            user_id: 2,
            expires_in_ms: 3000,
        };
        let shared = SharedFrame::Other(Arc::new(frames::encode(&frame)));
        transport.send(Outgoing::Encoded(shared)).await.unwrap();
        let error = frames::protocol_error("invalid_frame", "bad", Some("theirs".into()));
        transport
            .send(Outgoing::Frame(error.clone()))
            .await
            .unwrap();
        transport
            .send(Outgoing::Done("unknown".into()))
            .await
            .unwrap();
        assert_eq!(
            client.heard(),
            [
                HubMessage::invocation("typing", serde_json::to_value(&frame).unwrap()),
                HubMessage::invocation("error", serde_json::to_value(&error).unwrap()),
            ]
        );
    }

    #[tokio::test]
    async fn invocations_that_cannot_be_frames_are_refused_by_the_session() {
        let (mut transport, mut client) = connected();
        client.says(&[
            invoke(Some("1"), "send", json!(3)),
            invoke(Some("2"), "auth", json!({"token": "t"})),
            json!({"type": 4, "invocationId": "3", "target": "send", "arguments": []}),
            json!({"type": 1, "invocationId": "4", "target": "send", "arguments": [{}], "streamIds": ["s"]}),
            // A `client_id` in another frame's fields names nothing.
            invoke(Some("5"), "shout", json!({"client_id": "c9"})),
            invoke(None, "send", json!([1])),
        ]);
        // Every refusal reaches the session, which charges it to the frame
        // budget and answers it under its write deadline: the transport
        // writes nothing of its own.
        let mut refused = Vec::new();
        for _ in 0..6 {
            let Some(Inbound::Invalid(err)) = transport.next().await else {
                panic!("a refused invocation is the session's to answer")
            };
            refused.push(err);
        }
        assert!(futures::poll!(transport.next()).is_pending());
        assert_eq!(client.heard(), []);
        let codes: Vec<_> = refused.iter().map(|err| err.code).collect();
        assert_eq!(
            codes,
            [
                "invalid_frame",
                "already_authenticated",
                "invalid_frame",
                "invalid_frame",
                "unknown_type",
                "invalid_frame",
            ]
        );
        assert_eq!(refused[5].reference, None, "no invocation id, no reference");
        assert_eq!(transport.pending.len(), 5);

        // The session's answers name the references: they are completions.
        for err in refused {
            transport
                .send(Outgoing::Frame(frames::frame_error(err)))
                .await
                .unwrap();
        }
        let heard = client.heard();
        let completions: Vec<(String, String)> = heard
            .iter()
            .filter_map(|m| match m {
                HubMessage::Completion {
                    invocation_id,
                    outcome: Outcome::Error(error),
                } => Some((
                    invocation_id.clone(),
                    error.split(':').next().unwrap().to_owned(),
                )),
                _ => None,
            })
            .collect();
        let expected = [
            ("1", "invalid_frame"),
            ("2", "already_authenticated"),
            ("3", "invalid_frame"),
            ("4", "invalid_frame"),
            ("5", "unknown_type"),
        ]
        .map(|(id, code)| (id.to_owned(), code.to_owned()));
        assert_eq!(completions, expected);
        // The one without an id is an `error` client method, as on the WebSocket.
        assert_eq!(heard.len(), 6);
        assert!(transport.pending.is_empty());
    }

    #[tokio::test]
    async fn invocations_awaiting_completion_are_bounded() {
        let (mut transport, mut client) = connected();
        let calls: Vec<_> = (0..=MAX_PENDING_INVOCATIONS)
            .map(|n| invoke(Some(&n.to_string()), "typing", json!({"room": 7})))
            .collect();
        client.says(&calls);
        for _ in 0..MAX_PENDING_INVOCATIONS {
            assert!(matches!(transport.next().await, Some(Inbound::Frame(_))));
        }
        assert!(futures::poll!(transport.next()).is_pending());
        let last = MAX_PENDING_INVOCATIONS.to_string();
        let [HubMessage::Completion {
            invocation_id,
            outcome: Outcome::Error(error),
        }] = &client.heard()[..]
        else {
            panic!("one refusal")
        };
        assert_eq!(invocation_id, &last);
        assert!(error.starts_with("overloaded: "), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_server_pings_and_drops_a_silent_client() {
        let (mut transport, mut client) = connected();
        assert!(futures::poll!(transport.next()).is_pending());
        tokio::time::advance(PING_EVERY).await;
        assert!(futures::poll!(transport.next()).is_pending());
        assert_eq!(client.heard(), [HubMessage::Ping]);

        // Heard from at 20 s: alive until 50 s, with a ping at 30 s and 45 s.
        tokio::time::advance(Duration::from_secs(5)).await;
        client.says(&[json!({"type": 6})]);
        assert!(futures::poll!(transport.next()).is_pending());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(futures::poll!(transport.next()).is_pending());
        tokio::time::advance(PING_EVERY).await;
        assert!(futures::poll!(transport.next()).is_pending());
        assert_eq!(client.heard(), [HubMessage::Ping, HubMessage::Ping]);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(matches!(
            futures::poll!(transport.next()),
            Poll::Ready(None)
        ));
    }

    #[tokio::test]
    async fn a_close_says_why_then_closes_the_websocket() {
        let (mut transport, mut client) = connected();
        transport
            .send(Outgoing::Close(CloseReason::SessionEnded))
            .await
            .unwrap();
        let Ok(Message::Text(record)) = client.received.try_recv() else {
            panic!("no Close record")
        };
        assert_eq!(
            record.as_str(),
            "{\"type\":7,\"error\":\"session_ended: session ended\"}\u{1e}"
        );
        let Ok(Message::Close(Some(frame))) = client.received.try_recv() else {
            panic!("no close frame")
        };
        assert_eq!(frame.code, palaver_protocol::close_code::SESSION_ENDED);
        transport
            .send(Outgoing::Close(CloseReason::Shutdown))
            .await
            .unwrap();
        let Ok(Message::Text(record)) = client.received.try_recv() else {
            panic!("no Close record")
        };
        assert_eq!(
            record.as_str(),
            "{\"type\":7,\"error\":\"shutting_down: server shutting down\",\"allowReconnect\":true}\u{1e}"
        );
    }

    #[tokio::test]
    async fn records_after_the_handshake_are_read_first_and_bad_framing_is_an_error() {
        let (send, from_client) = mpsc::unbounded();
        let (to_client, _received) = mpsc::unbounded();
        let leftover = format!("{}\u{1e}", invoke(None, "ping", json!({})));
        let mut transport = SignalRTransport::new(
            Socket {
                from_client,
                to_client,
            },
            LIMITS,
            leftover.as_bytes(),
        );
        assert!(matches!(
            transport.next().await,
            Some(Inbound::Frame(ClientFrame::Ping { .. }))
        ));
        send.unbounded_send(Ok(Message::Text("{\"type\":6}".into())))
            .unwrap();
        let Some(Inbound::Invalid(err)) = transport.next().await else {
            panic!("a record without its separator")
        };
        assert_eq!(err.code, "malformed_frame");
        send.unbounded_send(Ok(Message::Binary(vec![1].into())))
            .unwrap();
        assert!(matches!(transport.next().await, Some(Inbound::Unsupported)));
        send.unbounded_send(Ok(Message::Text("{\"type\":7}\u{1e}".into())))
            .unwrap();
        assert!(transport.next().await.is_none());
    }

    #[test]
    fn a_shared_frame_is_wrapped_as_the_codec_writes_an_invocation() {
        let frame = ServerFrame::Pong {
            reference: Some("r\"1".into()),
        };
        let record = frames::encode(&frame).signalr_invocation().unwrap().clone();
        let value = serde_json::to_value(&frame).unwrap();
        let read: Vec<HubMessage> = records(record.as_bytes(), &LIMITS)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, [HubMessage::invocation("pong", value)]);
        assert_eq!(
            frames::signalr_invocation(r#"{"room":1,"type":"message"}"#),
            None
        );
    }
}
