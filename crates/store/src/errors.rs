//! sqlx and rusqlite errors → `StoreError`: "unavailable" (retry later) versus
//! everything else.

use palaver_domain::store::StoreError;

pub fn map_err(err: sqlx::Error) -> StoreError {
    if is_unavailable(&err) {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Other(err.to_string())
    }
}

/// Unique-constraint violations become `Conflict(what)`; anything else maps as usual.
pub fn conflict_or(err: sqlx::Error, what: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => map_err(err),
    }
}

/// The database cannot be reached or refused to work right now.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL SQLSTATE classes: 08 connection exception, 57P admin
        // shutdown / cannot connect now, 57014 statement timeout.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
        // A connection that died mid-conversation surfaces as a protocol error.
        sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// rusqlite (the SQLite appender's connection) errors, mapped the same way.
pub fn map_rusqlite(err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match err.sqlite_error_code() {
        // Locked out past the busy timeout, or the file or disk failed.
        Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => StoreError::Other(err.to_string()),
    }
}
