//! A typed client for Palaver's REST, WebSocket and gRPC APIs.
//!
//! Used by the integration tests, the benchmarks and the CLI, so every one of
//! them speaks the protocol through the same definitions (`palaver-protocol`).
//!
//! A base URL is `http://host:port` or `https://host:port`. Over `https`, REST,
//! the WebSocket (`wss://`) and gRPC run on TLS (rustls, ring) and trust the
//! system's root certificates, or what a [`Trust`] says: the system's roots
//! plus CA certificates of your own (a private CA, a self-signed server).
//! The server's name is always verified.
//!
//! ```no_run
//! # async fn example() -> palaver_client::Result<()> {
//! use palaver_client::{Client, Trust};
//!
//! let trust = Trust::with_ca_file("ca.pem")?;
//! let client = Client::with_trust("https://chat.example.com", trust);
//! let tokens = client.login("alice", "correct horse battery").await?;
//! let mut live = client.with_token(tokens.access_token).connect().await?;
//! # let _ = live.next_frame().await?;
//! # Ok(())
//! # }
//! ```

pub mod grpc;
pub mod live;
mod opening;
mod rest;
mod tls;
mod ws;

pub use live::{LiveEvent, LiveSession, Transport};
pub use palaver_protocol::{rest as types, ws as frames};
pub use rest::Client;
pub use tls::Trust;
pub use ws::{WsAuth, WsConnection};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its error body.
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The server could not be reached: no connection, a TLS handshake
    /// that failed (an unknown CA, a name the certificate does not hold), a
    /// connection that broke.
    #[error("transport: {0}")]
    Transport(String),
    /// The CA certificates given to a [`Trust`] could not be read or used.
    #[error("trusted certificates: {0}")]
    Trust(String),
    /// The WebSocket was closed by the server.
    #[error("websocket closed with {code}: {reason}")]
    Closed { code: u16, reason: String },
    /// A gRPC call (or stream) ended with this status: its numeric gRPC
    /// code and the machine `code` REST would answer.
    #[error("grpc status {grpc} {code}: {message}")]
    Status {
        grpc: i32,
        code: String,
        message: String,
    },
    #[error("protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } | ClientError::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;
