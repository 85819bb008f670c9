//! Palaver's wire types: every JSON body and WebSocket frame a client can see.
//!
//! This crate has no runtime and no I/O so that the server, the client library,
//! the CLI and the benchmarks all agree on one definition of the protocol.

pub mod close_code;
pub mod error;
pub mod integer;
pub mod rest;
pub mod signalr;
pub mod stomp;
pub mod ws;

pub use error::{ErrorBody, ErrorDetail};
