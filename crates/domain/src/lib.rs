//! Palaver's domain: the rules of accounts, rooms and messages, and the ports
//! (`Store`, `Bus`) through which they reach storage and other nodes.
//!
//! Architecture invariant: this crate depends on no transport (axum, WebSocket)
//! and no database driver (sqlx). Authorization for every room operation is
//! decided here, so every transport gets the same answer.

pub mod accounts;
pub mod activity;
pub mod admin;
pub mod attachments;
pub mod blobs;
pub mod bus;
pub mod bus_auth;
pub mod error;
pub mod events;
pub mod ids;
pub mod keys;
pub mod mail;
pub mod messages;
pub mod model;
pub mod outbox;
pub mod passwords;
pub mod presence_board;
pub mod remote;
pub mod rooms;
pub mod services;
pub mod store;
pub mod throttle;
pub mod time;
pub mod tokens;
pub mod values;

pub use error::{Error, Result};
pub use ids::{RoomId, UserId};
pub use services::{Limits, Services};
