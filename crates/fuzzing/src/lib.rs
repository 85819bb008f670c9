//! Fuzz harnesses for what Palaver reads from the network: WebSocket client
//! frames, REST request bodies and access tokens. Each takes arbitrary bytes,
//! must never panic, and asserts what a successful parse promises.
//!
//! `fuzz/` drives them with libFuzzer (`cargo +nightly fuzz run <target>`);
//! `tests/` runs them on generated cases and on every kept input in the
//! normal test suite.

mod access_token;
mod client_frame;
mod rest_body;

pub use access_token::access_token;
pub use client_frame::client_frame;
pub use rest_body::rest_body;
