//! What a session needs from whatever carries it: a stream of what the
//! client sent and a sink of what to send it. The WebSocket implements both
//! (`ws/socket.rs`); a test implements them with channels.

use axum::extract::ws::Utf8Bytes;
use palaver_protocol::ws::{ClientFrame, FrameError, ServerFrame};

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
    /// A frame already encoded (JSON text), shared with other connections.
    Encoded(Utf8Bytes),
    /// The end: a close code (`palaver_protocol::close_code`) and a reason.
    Close(u16, &'static str),
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
