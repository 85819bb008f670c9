//! A typed client for Palaver's REST, WebSocket and gRPC APIs.
//!
//! Used by the integration tests, the benchmarks and the CLI, so every one of
//! them speaks the protocol through the same definitions (`palaver-protocol`).

pub mod grpc;
pub mod live;
mod opening;
mod rest;
mod ws;

pub use live::{LiveEvent, LiveSession, Transport};
pub use palaver_protocol::{rest as types, ws as frames};
pub use rest::Client;
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
    #[error("transport: {0}")]
    Transport(String),
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
