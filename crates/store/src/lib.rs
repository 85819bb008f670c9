//! Implementations of the domain's `Store` port.
//!
//! Architecture invariant: SQL lives only in this crate.

mod sqlite;

pub use sqlite::SqliteStore;
