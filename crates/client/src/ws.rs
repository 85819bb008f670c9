//! A WebSocket connection speaking Palaver's frames.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use palaver_protocol::ws::{ClientFrame, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::tls::{describe, Trust};
use crate::{ClientError, Result};

const READ_BUFFER_BYTES: usize = 16 * 1024;

/// How the connection authenticates.
#[derive(Debug, Clone)]
pub enum WsAuth {
    /// `Authorization: Bearer` on the upgrade request.
    Header(String),
    /// `?access_token=` on the URL.
    Query(String),
    /// A first `auth` frame, optionally resuming rooms at once.
    Frame {
        token: String,
        resume: Option<BTreeMap<String, u64>>,
    },
    /// No authentication: the caller sends the first frame itself.
    None,
}

pub struct WsConnection {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `ready` frame, when the connection authenticated.
    pub ready: Option<ServerFrame>,
}

impl WsConnection {
    /// Connects to `base` (`http://…`, or `https://…` trusting the system's
    /// roots) and, unless `auth` is `None`, waits for `ready`.
    pub async fn connect(base: &str, auth: WsAuth) -> Result<Self> {
        Self::connect_with(base, auth, &Trust::default()).await
    }

    /// [`WsConnection::connect`], trusting `trust` over TLS (`wss://`).
    pub async fn connect_with(base: &str, auth: WsAuth, trust: &Trust) -> Result<Self> {
        let mut url = format!("{}/api/v1/ws", base.replacen("http", "ws", 1));
        if let WsAuth::Query(token) = &auth {
            url.push_str(&format!("?access_token={token}"));
        }
        let mut request = url
            .into_client_request()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if let WsAuth::Header(token) = &auth {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            request.headers_mut().insert("authorization", value);
        }
        // tungstenite zeroes its whole read buffer before every read, 128 KiB
        // by default (snapview/tungstenite-rs#547); chat frames are small.
        // Nagle off: a send should not wait for the previous one's ACK.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        // Used for `wss://` only; its ALPN is HTTP/1.1, which the upgrade needs.
        let tls = Connector::Rustls(trust.http1());
        let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(tls),
        )
        .await
        .map_err(|e| ClientError::Transport(describe(&e)))?;
        let mut conn = Self {
            stream,
            ready: None,
        };
        match auth {
            WsAuth::None => return Ok(conn),
            WsAuth::Frame { token, resume } => {
                conn.send(&ClientFrame::Auth {
                    token: Some(token),
                    resume,
                })
                .await?
            }
            WsAuth::Header(_) | WsAuth::Query(_) => {}
        }
        let mut opening = crate::opening::Opening::default();
        while conn.ready.is_none() {
            conn.ready = opening.add(conn.next_frame().await?)?;
        }
        Ok(conn)
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        let json =
            serde_json::to_string(frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send_text(json).await
    }

    /// Sends raw text, for clients (and tests) that speak the protocol by hand.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<()> {
        self.send_message(Message::text(text.into())).await
    }

    pub async fn send_message(&mut self, message: Message) -> Result<()> {
        self.stream
            .send(message)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// The next server frame; a close becomes `ClientError::Closed`.
    pub async fn next_frame(&mut self) -> Result<ServerFrame> {
        loop {
            let message = self
                .stream
                .next()
                .await
                .ok_or(ClientError::Closed {
                    code: 1006,
                    reason: "connection ended without a close frame".into(),
                })?
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str())
                        .map_err(|e| ClientError::Protocol(format!("{e}: {}", text.as_str())))
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(ClientError::Closed { code, reason });
                }
                Message::Binary(_) => {
                    return Err(ClientError::Protocol("unexpected binary frame".into()))
                }
                _ => continue,
            }
        }
    }

    /// The next frame, or `None` if none arrives within `wait`.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Result<Option<ServerFrame>> {
        match tokio::time::timeout(wait, self.next_frame()).await {
            Ok(frame) => frame.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Reads until the server closes; returns its close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.next_frame().await {
                Ok(_) => continue,
                Err(ClientError::Closed { code, reason }) => return (code, reason),
                Err(other) => return (1006, other.to_string()),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
