//! Fuzz harnesses for what Palaver reads from the network: WebSocket client
//! frames (the first, authenticating one too) and their protobuf spelling on
//! gRPC streams, REST request bodies and query strings, access tokens, e-mail
//! addresses (against the mailer's own reading), the records other nodes
//! write to Kafka, `X-Forwarded-For`, `Cookie` and `Origin` headers, and what
//! the request log shows of a request's target. Each takes arbitrary bytes,
//! must never panic, and asserts what a successful parse promises.
//!
//! The STOMP and SignalR codecs' harnesses (`stomp_frame`, `signalr_message`)
//! carry their own tests, generated cases and kept inputs alike.
//!
//! `fuzz/` drives them with libFuzzer (`cargo +nightly fuzz run <target>`);
//! `tests/` runs them on generated cases and on every kept input in the
//! normal test suite.

mod access_token;
mod bus_record;
mod client_frame;
mod cookies;
mod email_address;
mod forwarded_for;
mod log_redaction;
mod origin;
mod proto_client_frame;
mod query_string;
mod rest_body;
mod signalr_message;
mod stomp_frame;
mod ws_first_frame;

pub use access_token::access_token;
pub use bus_record::bus_record;
pub use client_frame::client_frame;
pub use cookies::cookies;
pub use email_address::email_address;
pub use forwarded_for::forwarded_for;
pub use log_redaction::log_redaction;
pub use origin::origin;
pub use proto_client_frame::proto_client_frame;
pub use query_string::query_string;
pub use rest_body::rest_body;
pub use signalr_message::signalr_message;
pub use stomp_frame::stomp_frame;
pub use ws_first_frame::ws_first_frame;

/// The inputs kept for `target` under `fuzz/<kind>/` (`corpus`, `regressions`).
#[cfg(test)]
fn kept_inputs(target: &str, kinds: &[&str]) -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    kinds
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect()
}
