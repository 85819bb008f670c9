//! Fuzz harnesses for what Palaver reads from the network: WebSocket client
//! frames, REST request bodies, access tokens, e-mail addresses (against
//! the mailer's own reading) and the records other nodes write to Kafka. Each takes arbitrary bytes,
//! must never panic, and asserts what a successful parse promises.
//!
//! `fuzz/` drives them with libFuzzer (`cargo +nightly fuzz run <target>`);
//! `tests/` runs them on generated cases and on every kept input in the
//! normal test suite.

mod access_token;
mod bus_record;
mod client_frame;
mod email_address;
mod rest_body;

pub use access_token::access_token;
pub use bus_record::bus_record;
pub use client_frame::client_frame;
pub use email_address::email_address;
pub use rest_body::rest_body;
