//! Integration tests: each starts a real server on a random port with its own
//! database, and drives it over real HTTP and WebSocket connections.

mod accounts;
mod activity;
mod authorization;
mod cookies;
mod deletion;
mod edits;
mod email;
mod helpers;
mod journey;
mod keys;
mod limits;
#[path = "../support/mail_sink.rs"]
mod mail_sink;
mod messages;
mod moderation;
mod openapi;
mod people;
mod read_markers;
mod rooms;
mod sessions;
mod shutdown;
mod websocket;
