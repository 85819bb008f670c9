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
pub mod outgoing;
pub mod presence;
pub mod session;
pub mod stop;
pub mod telemetry;
pub mod wire;
mod ws;

pub use app::Application;
pub use config::Settings;
