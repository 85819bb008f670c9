//! What protects a node and its data, checked on the real binary in a
//! process of its own: its memory under a flood of logins (read from
//! `/proc`), and its messages when it is killed mid-traffic.

mod crash;
mod hashing;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/mail_sink.rs"]
mod mail_sink;
#[path = "../support/node.rs"]
mod node;
