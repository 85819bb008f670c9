//! The WebSocket as a session transport: text frames in (parsed into client
//! frames), encoded frames out.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{Sink, Stream};
use palaver_protocol::ws::ClientFrame;

use crate::frames;
use crate::http::websocket::too_large;
use crate::session::{Inbound, Outgoing};

pub struct WsTransport {
    socket: WebSocket,
}

impl WsTransport {
    pub fn new(socket: WebSocket) -> Self {
        Self { socket }
    }
}

impl Stream for WsTransport {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        loop {
            return Poll::Ready(match ready!(Pin::new(&mut self.socket).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => None,
                Some(Err(err)) => too_large(err).then_some(Inbound::TooLarge),
                Some(Ok(Message::Text(text))) => Some(match ClientFrame::parse(text.as_str()) {
                    Ok(frame) => Inbound::Frame(frame),
                    Err(err) => Inbound::Invalid(err),
                }),
                Some(Ok(Message::Binary(_))) => Some(Inbound::Unsupported),
                // tungstenite answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            });
        }
    }
}

impl Sink<Outgoing> for WsTransport {
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
        let message = match item {
            // A WebSocket client learns of a success from its event.
            Outgoing::Done(_) => return Ok(()),
            Outgoing::Frame(frame) => Message::Text(frames::json(&frame)),
            Outgoing::Encoded(frame) => Message::Text(frame.json().clone()),
            Outgoing::Close(reason) => Message::Close(Some(CloseFrame {
                code: reason.code(),
                reason: Utf8Bytes::from_static(reason.reason()),
            })),
        };
        Pin::new(&mut self.socket).start_send(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_close(cx)
    }
}
