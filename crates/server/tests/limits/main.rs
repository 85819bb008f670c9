//! Limits that protect a node from its clients, checked on the real binary
//! (its memory is read from `/proc`, so it runs in a process of its own).

mod hashing;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/node.rs"]
mod node;
