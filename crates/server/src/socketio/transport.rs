//! A Socket.IO socket as a session transport.
//!
//! In: every event becomes the client frame its name is the `type` of, its
//! argument the frame's other fields. An event sent with an acknowledgement
//! callback is named by a reference the transport chooses (its `client_id`
//! for a `send` that has none, else its `ref`), and the answer that names it
//! (`ack`, `error`, `pong`, or `Done`) goes to the callback instead of being
//! emitted. Out: every other frame is emitted as the event its `type` names.
//!
//! An event that is not a frame (an argument that is not an object, an
//! unknown name) reaches the session as an `Invalid` frame named by the
//! callback's reference: the session charges it to the connection's frame
//! budget and answers it, as every other frame. The callback is answered
//! here only when the event cannot reach the session: too many callbacks
//! wait already, or the session's channel is full (one small answer each).
//!
//! socketioxide reads the socket itself and calls a handler per event, so
//! events reach the session through a small bounded channel; one that finds
//! it full is answered `overloaded` rather than waited for. Its write buffer
//! is bounded too: a frame that finds it full waits here, so the session's
//! write deadline cuts a client that reads nothing, as on the WebSocket.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};
use palaver_protocol::close_code::CloseReason;
use palaver_protocol::ws::{ClientFrame, FrameError, ServerFrame};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::DisconnectReason;
use socketioxide::{SendError, SocketError};
use tokio::sync::mpsc;
use tokio::time::Sleep;

use crate::frames::frame_type;
use crate::session::{Inbound, Outgoing, PendingAnswers, SharedFrame};

/// Events waiting for the session: a burst's worth. The session reads fast;
/// the channel fills only when it has `MAX_IN_FLIGHT_SENDS` waiting.
const INBOUND_CAPACITY: usize = 64;
/// Acknowledgement callbacks waiting for their answer, at most.
const MAX_PENDING_ACKS: usize = 512;
/// The tag of the references this transport makes up.
const REFERENCE_TAG: &str = "sio";
/// How often a frame that found the write buffer full tries again.
const RETRY_FULL_BUFFER: Duration = Duration::from_millis(20);

type PendingAcks = PendingAnswers<AckSender>;

pub struct SocketIoTransport {
    socket: SocketRef,
    frames: mpsc::Receiver<Inbound>,
    /// The acknowledgement callbacks of requests in flight.
    acks: Arc<Mutex<PendingAcks>>,
    /// A frame the write buffer had no room for, and when to try again.
    blocked: Option<(Emit, Pin<Box<Sleep>>)>,
}

impl Drop for SocketIoTransport {
    /// The session is over, whichever side ended it: so is the socket. One
    /// whose write buffer is full cannot take the disconnect packet; the
    /// engine's next heartbeat finds it full too and closes it.
    fn drop(&mut self) {
        if self.socket.connected() {
            let _ = self.socket.clone().disconnect();
        }
    }
}

/// Whether the client asked for an acknowledgement (socketioxide's
/// `AckSender` answers nothing when it did not, and does not say).
struct WantsAck(bool);

impl<A: socketioxide::adapter::Adapter> FromMessageParts<A> for WantsAck {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        _: &Arc<socketioxide::socket::Socket<A>>,
        _: &mut socketioxide_core::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        Ok(WantsAck(ack_id.is_some()))
    }
}

/// One thing to emit.
enum Emit {
    /// A frame, as the event its `type` names.
    Frame(Frame),
    Close(CloseReason),
}

/// A frame to emit: one shared with other connections, or this session's own.
enum Frame {
    Shared(SharedFrame),
    Own(Box<RawValue>),
}

impl SocketIoTransport {
    /// Takes over `socket`'s events; the stream ends when it disconnects.
    pub fn attach(socket: SocketRef) -> Self {
        let (sender, frames) = mpsc::channel(INBOUND_CAPACITY);
        let acks = Arc::new(Mutex::new(PendingAcks::new(
            REFERENCE_TAG,
            MAX_PENDING_ACKS,
        )));
        // Held by the handlers; taken on disconnect, which ends the stream.
        let inlet = Arc::new(Mutex::new(Some(sender)));
        let (events, pending) = (inlet.clone(), acks.clone());
        socket.on_fallback(
            move |Event(event): Event,
                  TryData(data): TryData<Value>,
                  ack: AckSender,
                  WantsAck(wants_ack): WantsAck| {
                let (inlet, acks) = (events.clone(), pending.clone());
                async move {
                    let Some(sender) = inlet.lock().clone() else {
                        return;
                    };
                    let ack = wants_ack.then_some(ack);
                    let inbound = inbound(&event, data.ok(), ack, &acks);
                    if let Some(inbound) = inbound {
                        if let Err(mpsc::error::TrySendError::Full(refused)) =
                            sender.try_send(inbound)
                        {
                            refuse_overloaded(refused, &acks);
                        }
                    }
                }
            },
        );
        socket.on_disconnect(move |_: DisconnectReason| {
            let inlet = inlet.clone();
            async move {
                inlet.lock().take();
            }
        });
        Self {
            socket,
            frames,
            acks,
            blocked: None,
        }
    }

    /// Emits `item`, or keeps it for later when the write buffer is full.
    fn emit(&mut self, item: Emit) -> Result<(), SocketError> {
        let sent = match &item {
            Emit::Frame(json) => emit_frame(&self.socket, json),
            Emit::Close(reason) => {
                let said = self.socket.emit("close", &Closing::from(*reason));
                if said.is_ok() {
                    let _ = self.socket.clone().disconnect();
                }
                said
            }
        };
        match sent {
            Ok(()) => Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                self.blocked = Some((item, Box::pin(tokio::time::sleep(RETRY_FULL_BUFFER))));
                Ok(())
            }
            Err(SendError::Socket(err)) => Err(err),
            // Our own JSON, valid by construction.
            Err(SendError::Serialize(err)) => {
                tracing::error!(error = %err, "a frame Socket.IO could not encode");
                Ok(())
            }
        }
    }

    /// Ready once no frame waits for room in the write buffer.
    fn poll_unblocked(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        while let Some((_, retry)) = &mut self.blocked {
            if retry.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let (item, _) = self.blocked.take().expect("checked above");
            self.emit(item)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Answers the callback waiting for `reference`, if one is; `false`
    /// when none is (then the answer is emitted as a frame).
    fn answer(&self, reference: Option<&str>, body: &impl Serialize) -> bool {
        let Some(ack) = reference.and_then(|r| self.acks.lock().take(r)) else {
            return false;
        };
        // A client whose buffer is full reads nothing: its session ends soon.
        let _ = ack.send(body);
        true
    }
}

/// The client frame an event stands for; `None` when it was answered here.
fn inbound(
    event: &str,
    data: Option<Value>,
    ack: Option<AckSender>,
    acks: &Mutex<PendingAcks>,
) -> Option<Inbound> {
    let (mut fields, not_object) = match data {
        Some(Value::Object(fields)) => (fields, false),
        None | Some(Value::Null) => (Map::new(), false),
        Some(_) => (Map::new(), true),
    };
    let reference = match ack {
        None => None,
        Some(ack) => {
            let mut acks = acks.lock();
            let reference = match (event, fields.get("client_id")) {
                ("send", Some(Value::String(client_id))) => client_id.clone(),
                ("send", _) => {
                    let id = acks.fresh_reference();
                    fields.insert("client_id".into(), Value::String(id.clone()));
                    id
                }
                _ => {
                    let id = acks.fresh_reference();
                    fields.insert("ref".into(), Value::String(id.clone()));
                    id
                }
            };
            if let Err(ack) = acks.insert(reference.clone(), ack) {
                drop(acks);
                let body =
                    ErrorBody::new("overloaded", "too many requests awaiting an answer", None);
                let _ = ack.send(&body);
                return None;
            }
            Some(reference)
        }
    };
    if not_object {
        return Some(Inbound::Invalid(FrameError {
            code: "invalid_frame",
            message: "the event's argument must be an object".into(),
            reference,
        }));
    }
    fields.insert("type".into(), Value::String(event.to_owned()));
    let text = Value::Object(fields).to_string();
    Some(match ClientFrame::parse(&text) {
        Ok(frame) => Inbound::Frame(frame),
        Err(mut err) => {
            // The session answers by this reference: it must be the
            // callback's, whatever other reference the fields held.
            if reference.is_some() {
                err.reference = reference;
            }
            Inbound::Invalid(err)
        }
    })
}

/// An event that found the session's channel full: its callback (if any) is
/// told `overloaded`; without one it is dropped, as a flood's excess is.
fn refuse_overloaded(refused: Inbound, acks: &Mutex<PendingAcks>) {
    let reference = match &refused {
        Inbound::Frame(frame) => frame.reference().map(str::to_owned),
        Inbound::Invalid(err) => err.reference.clone(),
        _ => None,
    };
    let ack = reference.and_then(|r| acks.lock().take(&r));
    if let Some(ack) = ack {
        let body = ErrorBody::new("overloaded", "too many requests at once; retry", None);
        let _ = ack.send(&body);
    }
}

/// `{"error":{"code","message"}}`, as REST answers.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

impl<'a> ErrorBody<'a> {
    fn new(code: &'a str, message: &'a str, retry_after_ms: Option<u64>) -> Self {
        Self {
            error: ErrorFields {
                code,
                message,
                retry_after_ms,
            },
        }
    }
}

/// The `close` event sent before the server disconnects a socket.
#[derive(Serialize)]
struct Closing {
    /// The WebSocket close code of the same reason (docs/protocol.md).
    code: u16,
    /// The machine code.
    error: &'static str,
    reason: &'static str,
    /// Whether reconnecting as it was (with backoff) can succeed.
    reconnect: bool,
}

impl From<CloseReason> for Closing {
    fn from(reason: CloseReason) -> Self {
        Self {
            code: reason.code(),
            error: reason.error_code(),
            reason: reason.reason(),
            reconnect: reason.reconnect(),
        }
    }
}

/// Emits a frame as the event its `type` names, the whole frame as the
/// argument (its `type` too, which clients may ignore). A shared frame's JSON
/// is embedded as it is, checked once for all its recipients.
fn emit_frame(socket: &SocketRef, frame: &Frame) -> Result<(), SendError> {
    let (json, raw) = match frame {
        Frame::Shared(shared) => (shared.json().as_str(), shared.raw_json()),
        Frame::Own(raw) => (raw.get(), &**raw),
    };
    let Some(event) = frame_type(json) else {
        tracing::error!("a server frame without a leading type");
        return Ok(());
    };
    socket.emit(event, raw)
}

impl Stream for SocketIoTransport {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        self.frames.poll_recv(cx)
    }
}

impl Sink<Outgoing> for SocketIoTransport {
    type Error = SocketError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        self.poll_unblocked(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), SocketError> {
        let frame = match item {
            Outgoing::Done(reference) => {
                self.answer(Some(&reference), &Map::new());
                return Ok(());
            }
            Outgoing::Close(reason) => return self.emit(Emit::Close(reason)),
            Outgoing::Encoded(shared) => Frame::Shared(shared),
            Outgoing::Frame(frame) => {
                let answered = match &frame {
                    ServerFrame::Ack { client_id, .. } => self.answer(client_id.as_deref(), &frame),
                    // The callback names the ping: the reference chosen
                    // for it here is not the client's to see.
                    ServerFrame::Pong { reference } => {
                        self.answer(reference.as_deref(), &ServerFrame::Pong { reference: None })
                    }
                    ServerFrame::Error {
                        code,
                        message,
                        reference,
                        retry_after_ms,
                    } => self.answer(
                        reference.as_deref(),
                        &ErrorBody::new(code, message, *retry_after_ms),
                    ),
                    _ => false,
                };
                if answered {
                    return Ok(());
                }
                match RawValue::from_string(frame.to_json()) {
                    Ok(raw) => Frame::Own(raw),
                    Err(err) => {
                        tracing::error!(error = %err, "a frame that is not JSON");
                        return Ok(());
                    }
                }
            }
        };
        self.emit(Emit::Frame(frame))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        self.poll_unblocked(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        self.poll_unblocked(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_the_frames_their_names_are_types_of() {
        let acks = Mutex::new(PendingAcks::new(REFERENCE_TAG, MAX_PENDING_ACKS));
        let data = serde_json::json!({"room": 7, "body": "hi", "client_id": "c1"});
        let Some(Inbound::Frame(ClientFrame::Send {
            room, client_id, ..
        })) = inbound("send", Some(data), None, &acks)
        else {
            panic!("not a send")
        };
        assert_eq!((room, client_id.as_deref()), (7, Some("c1")));

        // A `type` in the argument does not change what the event is.
        let data = serde_json::json!({"type": "send", "room": 7, "seq": 3});
        assert!(matches!(
            inbound("read", Some(data), None, &acks),
            Some(Inbound::Frame(ClientFrame::Read { seq: 3, .. }))
        ));

        let Some(Inbound::Invalid(err)) = inbound("shout", None, None, &acks) else {
            panic!("an unknown event is a frame error")
        };
        assert_eq!(err.code, "unknown_type");
        let Some(Inbound::Invalid(err)) = inbound("send", Some(Value::from(3)), None, &acks) else {
            panic!("a non-object argument is a frame error")
        };
        assert_eq!(err.code, "invalid_frame");
    }
}
