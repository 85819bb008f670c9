//! Fuzz harnesses for what Palaver reads from the network: WebSocket client
//! frames and their protobuf spelling on gRPC streams, REST request bodies,
//! access tokens, e-mail addresses (against the mailer's own reading), the
//! records other nodes write to Kafka and `X-Forwarded-For` headers. Each
//! takes arbitrary bytes, must never panic, and asserts what a successful
//! parse promises.
//!
//! `fuzz/` drives them with libFuzzer (`cargo +nightly fuzz run <target>`);
//! `tests/` runs them on generated cases and on every kept input in the
//! normal test suite.

mod access_token;
mod bus_record;
mod client_frame;
mod email_address;
mod forwarded_for;
mod proto_client_frame;
mod rest_body;

pub use access_token::access_token;
pub use bus_record::bus_record;
pub use client_frame::client_frame;
pub use email_address::email_address;
pub use forwarded_for::forwarded_for;
pub use proto_client_frame::proto_client_frame;
pub use rest_body::rest_body;
