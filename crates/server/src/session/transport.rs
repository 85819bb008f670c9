//! What a session needs from whatever carries it: a stream of what the
//! client sent and a sink of what to send it. The WebSocket (`ws/socket.rs`)
//! and the gRPC stream (`grpc/realtime/stream.rs`) implement both; a test
//! implements them with channels.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};
use palaver_protocol::close_code::CloseReason;
use palaver_protocol::ws::{ClientFrame, FrameError, ServerFrame};
use tokio::time::Sleep;

use crate::frames::EncodedFrame;
use crate::hub::SequencedFrame;

/// One thing the client sent. The end of the stream means the client is gone
/// (it closed, or the connection broke).
#[derive(Debug)]
pub enum Inbound {
    Frame(ClientFrame),
    /// Not a client frame: answered with an error frame; the session goes on.
    Invalid(FrameError),
    /// Something this transport does not carry (binary data): close 1003.
    Unsupported,
    /// Larger than the frame limit: close 1009.
    TooLarge,
}

/// One thing to send the client.
#[derive(Debug)]
pub enum Outgoing {
    Frame(ServerFrame),
    /// A frame already encoded, shared with other connections.
    Encoded(SharedFrame),
    /// A request the client named by this reference succeeded with nothing
    /// more to say (its effect reaches the client as events). The WebSocket
    /// writes nothing; transports whose clients await an answer to every
    /// request (Socket.IO acknowledgements, SignalR completions) give one.
    Done(String),
    /// The end: a close code (`palaver_protocol::close_code`) and a reason.
    Close(CloseReason),
}

/// A frame the hub shares between connections, in whichever wrapper it came.
#[derive(Debug, Clone)]
pub enum SharedFrame {
    Sequenced(Arc<SequencedFrame>),
    Other(Arc<EncodedFrame>),
}

impl std::ops::Deref for SharedFrame {
    type Target = EncodedFrame;

    fn deref(&self) -> &EncodedFrame {
        match self {
            SharedFrame::Sequenced(sequenced) => &sequenced.frame,
            SharedFrame::Other(frame) => frame,
        }
    }
}

/// Which protocol carries a session: the `transport` label of its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    WebSocket,
    Grpc,
    SocketIo,
    SignalR,
    Stomp,
}

impl TransportKind {
    pub const fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Grpc => "grpc",
            Self::SocketIo => "socketio",
            Self::SignalR => "signalr",
            Self::Stomp => "stomp",
        }
    }
}

/// A session's connection to its client.
pub trait Transport:
    futures::Stream<Item = Inbound> + futures::Sink<Outgoing> + Unpin + Send
{
}

impl<T> Transport for T where
    T: futures::Stream<Item = Inbound> + futures::Sink<Outgoing> + Unpin + Send
{
}

/// Why a write to the client failed.
#[derive(Debug)]
pub enum WriteError<E> {
    Transport(E),
    /// The write could not go on for the whole write timeout: the client
    /// reads too little (or nothing) for its frames to leave.
    Stalled,
}

/// A transport whose writes fail with `Stalled` once one of them has waited
/// (returned `Pending`) for `timeout` without finishing. A timer exists only
/// while a write waits: the common write, which does not, costs nothing more.
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
        }
    }

    fn guard<E>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<Result<(), E>>,
    ) -> Poll<Result<(), WriteError<E>>> {
        match poll {
            Poll::Ready(result) => {
                self.waiting = None;
                Poll::Ready(result.map_err(WriteError::Transport))
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let waiting = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if waiting.as_mut().poll(cx).is_ready() {
                    self.waiting = None;
                    return Poll::Ready(Err(WriteError::Stalled));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: Stream + Unpin> Stream for WriteDeadline<T> {
    type Item = T::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<T: Sink<Outgoing> + Unpin> Sink<Outgoing> for WriteDeadline<T> {
    type Error = WriteError<T::Error>;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let poll = Pin::new(&mut self.inner).poll_ready(cx);
        self.guard(cx, poll)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
        Pin::new(&mut self.inner)
            .start_send(item)
            .map_err(WriteError::Transport)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let poll = Pin::new(&mut self.inner).poll_close(cx);
        self.guard(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use futures::SinkExt;

    use super::*;

    /// A sink that never accepts anything.
    struct Stuck;

    impl Sink<Outgoing> for Stuck {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
        fn start_send(self: Pin<&mut Self>, _: Outgoing) -> Result<(), ()> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_cannot_finish_fails_after_the_timeout() {
        let mut sink = WriteDeadline::new(Stuck, Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let sent = sink.send(Outgoing::Close(CloseReason::Shutdown)).await;
        assert!(matches!(sent, Err(WriteError::Stalled)));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_finishes_leaves_no_timer_behind() {
        let (tx, _rx) = futures::channel::mpsc::unbounded::<Outgoing>();
        let mut sink = WriteDeadline::new(tx, Duration::from_secs(10));
        sink.send(Outgoing::Close(CloseReason::Shutdown))
            .await
            .unwrap();
        assert!(sink.waiting.is_none());
    }
}
