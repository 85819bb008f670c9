//! The `palaver` server: configuration, startup, HTTP, WebSocket and gRPC transports,
//! and the hub that fans events out to local connections.

pub mod app;
pub mod client_addr;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod frames;
mod grpc;
pub mod http;
pub mod hub;
pub mod mail;
pub mod node;
pub mod operator;
pub mod outgoing;
pub mod presence;
pub mod session;
mod signalr;
mod socketio;
mod stomp;
pub mod stop;
pub mod telemetry;
pub mod tls;
pub mod wire;
mod ws;

/// What the fuzz harnesses (`crates/fuzzing`) feed that the transports keep
/// to themselves.
pub mod fuzzing_api {
    pub use crate::http::logging::redacted;
    pub use crate::ws::{read_first_frame, FirstFrame, WsParams};
}

pub use app::Application;
pub use config::Settings;
