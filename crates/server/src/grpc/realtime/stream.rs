//! A gRPC call as a session transport: client frames in (from the request
//! stream, if the call has one), encoded server frames out (to the response
//! stream), and the close code that ends a session turned into the status
//! that ends the call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures::{Sink, Stream};
use palaver_domain::tokens::Bearer;
use palaver_grpc::v1;
use palaver_grpc::EncodedServerFrame;
use palaver_protocol::close_code::CloseReason;
use palaver_protocol::ws::{ClientFrame, FrameError};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, DropGuard, PollSender, WaitForCancellationFutureOwned};
use tonic::{Code, Status, Streaming};

use super::super::status;
use crate::frames;
use crate::session::{Inbound, Outgoing};

/// Frames handed to tonic and not yet encoded into the HTTP/2 stream. Small:
/// HTTP/2 flow control and the hub's queue hold the rest, and the hub's
/// queue is what cuts a slow consumer off.
const RESPONSE_CAPACITY: usize = 16;

/// The status a call ends with, set by whichever side ends it.
type Ending = Arc<Mutex<Option<Status>>>;

/// The session's end of a call, and the response stream tonic sends.
pub fn pair(
    request: Option<Streaming<v1::ClientFrame>>,
    bearer: &Bearer,
) -> (GrpcTransport, ResponseStream) {
    let (frames, receiver) = mpsc::channel(RESPONSE_CAPACITY);
    let ending = Ending::default();
    let gone = CancellationToken::new();
    let expires_in = std::time::Duration::from_secs(
        (bearer.expires_at - palaver_domain::time::Timestamp::now().0 / 1000).max(0) as u64,
    );
    let transport = GrpcTransport {
        request,
        frames: PollSender::new(frames),
        buffered: None,
        ending: ending.clone(),
        gone: Box::pin(gone.clone().cancelled_owned()),
        expiry: Box::pin(tokio::time::sleep_until(Instant::now() + expires_in)),
        closed: false,
    };
    let response = ResponseStream {
        frames: receiver,
        ending,
        done: false,
        _gone: gone.drop_guard(),
    };
    (transport, response)
}

pub struct GrpcTransport {
    /// `None` for a call without a request stream, or once the client has
    /// half-closed it: the call goes on, and only delivers.
    request: Option<Streaming<v1::ClientFrame>>,
    frames: PollSender<EncodedServerFrame>,
    /// A frame accepted by `start_send` and waiting for room in `frames`.
    buffered: Option<EncodedServerFrame>,
    ending: Ending,
    /// Finishes once tonic has dropped the response: the client is gone.
    gone: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The access token's expiry: the call ends then (UNAUTHENTICATED).
    expiry: Pin<Box<Sleep>>,
    /// The session has sent its close: nothing more comes in.
    closed: bool,
}

impl GrpcTransport {
    fn end_with(&mut self, status: Status) {
        self.ending.lock().get_or_insert(status);
        self.closed = true;
    }

    /// Moves the buffered frame, if any, into the response channel.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ResponseGone>> {
        if self.buffered.is_none() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.frames.poll_reserve(cx)).map_err(|_| ResponseGone)?;
        let frame = self.buffered.take().expect("checked above");
        self.frames.send_item(frame).map_err(|_| ResponseGone)?;
        Poll::Ready(Ok(()))
    }
}

/// The client frame a protobuf one stands for, as the session reads it.
fn inbound(frame: v1::ClientFrame) -> Inbound {
    match palaver_grpc::client_frame(frame) {
        Ok(ClientFrame::Auth { .. }) => Inbound::Invalid(FrameError {
            code: "invalid_frame",
            message: "`hello` only as the first frame".into(),
            reference: None,
        }),
        Ok(frame) => Inbound::Frame(frame),
        Err(err) => Inbound::Invalid(err),
    }
}

impl Stream for GrpcTransport {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        if self.closed || self.gone.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        if self.expiry.as_mut().poll(cx).is_ready() {
            self.end_with(status::with_code(
                Code::Unauthenticated,
                "token_expired",
                "the access token expired: refresh it and connect again with resume",
            ));
            return Poll::Ready(None);
        }
        let Some(request) = self.request.as_mut() else {
            return Poll::Pending;
        };
        match ready!(Pin::new(request).poll_next(cx)) {
            Some(Ok(frame)) => Poll::Ready(Some(inbound(frame))),
            // tonic refuses a message over the limit from its length prefix,
            // before buffering it.
            Some(Err(err)) if err.code() == Code::OutOfRange => {
                Poll::Ready(Some(Inbound::TooLarge))
            }
            Some(Err(_)) => Poll::Ready(None),
            None => {
                // Half-closed: the client sends nothing more, but still listens.
                self.request = None;
                Poll::Pending
            }
        }
    }
}

/// The response stream is gone: the client cancelled or disconnected.
#[derive(Debug)]
pub struct ResponseGone;

impl Sink<Outgoing> for GrpcTransport {
    type Error = ResponseGone;

    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ResponseGone>> {
        self.poll_push(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), ResponseGone> {
        let bytes = match item {
            Outgoing::Frame(frame) => frames::protobuf(&frame),
            Outgoing::Encoded(frame) => frame.protobuf().clone(),
            // A stream's client learns of a success from its event.
            Outgoing::Done(_) => return Ok(()),
            // Needs no room in the channel: a client that reads nothing still
            // gets its status once it reads again.
            Outgoing::Close(reason) => {
                self.end_with(status_of_close(reason));
                return Ok(());
            }
        };
        self.buffered = Some(EncodedServerFrame(bytes));
        Ok(())
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ResponseGone>> {
        self.poll_push(cx)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ResponseGone>> {
        ready!(self.poll_push(cx))?;
        self.frames.close();
        Poll::Ready(Ok(()))
    }
}

/// The status a session's close stands for on a gRPC call.
pub fn status_of_close(reason: CloseReason) -> Status {
    let grpc = match reason {
        CloseReason::SessionEnded | CloseReason::Unauthorized(_) => Code::Unauthenticated,
        CloseReason::SlowConsumer
        | CloseReason::FrameTooLarge
        | CloseReason::TooManySessions(_)
        | CloseReason::OpenedTooOften => Code::ResourceExhausted,
        CloseReason::Shutdown | CloseReason::StoreUnavailable => Code::Unavailable,
        CloseReason::UnsupportedData => Code::InvalidArgument,
    };
    status::with_code(grpc, reason.error_code(), reason.reason())
}

/// What tonic sends: the session's frames, then the status it ended with
/// (none: OK).
pub struct ResponseStream {
    frames: mpsc::Receiver<EncodedServerFrame>,
    ending: Ending,
    done: bool,
    /// Dropped with the response (the call is over): tells the session.
    _gone: DropGuard,
}

impl Stream for ResponseStream {
    type Item = Result<EncodedServerFrame, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match ready!(self.frames.poll_recv(cx)) {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => {
                self.done = true;
                Poll::Ready(self.ending.lock().take().map(Err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::{SinkExt, StreamExt};
    use palaver_domain::UserId;
    use palaver_protocol::ws::ServerFrame;

    use super::*;

    fn bearer(expires_in_secs: i64) -> Bearer {
        Bearer {
            user: UserId(1),
            session: "s".into(),
            expires_at: palaver_domain::time::Timestamp::now().0 / 1000 + expires_in_secs,
        }
    }

    #[tokio::test]
    async fn frames_leave_in_order_then_the_close_becomes_the_final_status() {
        let (mut transport, mut response) = pair(None, &bearer(900));
        transport
            .send(Outgoing::Frame(ServerFrame::Pong { reference: None }))
            .await
            .unwrap();
        transport
            .send(Outgoing::Close(CloseReason::SlowConsumer))
            .await
            .unwrap();
        assert!(
            transport.next().await.is_none(),
            "closed: nothing more comes in"
        );
        drop(transport);
        let first = response.next().await.unwrap().unwrap();
        let decoded: v1::ServerFrame = prost::Message::decode(first.0).unwrap();
        assert!(matches!(
            decoded.frame,
            Some(v1::server_frame::Frame::Pong(_))
        ));
        let status = response.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.metadata().get(status::ERROR_CODE_KEY).unwrap(),
            "slow_consumer"
        );
        assert!(response.next().await.is_none());
    }

    #[tokio::test]
    async fn a_close_needs_no_room_in_a_full_response() {
        let (mut transport, _response) = pair(None, &bearer(900));
        for _ in 0..RESPONSE_CAPACITY {
            transport
                .send(Outgoing::Frame(ServerFrame::Pong { reference: None }))
                .await
                .unwrap();
        }
        let close = transport.send(Outgoing::Close(CloseReason::Shutdown));
        tokio::time::timeout(std::time::Duration::from_secs(5), close)
            .await
            .expect("the close does not wait for the client to read")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_call_ends_unauthenticated_when_the_token_expires() {
        let (mut transport, mut response) = pair(None, &bearer(60));
        let started = Instant::now();
        assert!(transport.next().await.is_none());
        assert!(started.elapsed() >= std::time::Duration::from_secs(59));
        drop(transport);
        let status = response.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(
            status.metadata().get(status::ERROR_CODE_KEY).unwrap(),
            "token_expired"
        );
    }

    #[tokio::test]
    async fn a_dropped_response_ends_the_inbound_stream() {
        let (mut transport, response) = pair(None, &bearer(900));
        drop(response);
        assert!(transport.next().await.is_none());
    }
}
