//! The one domain error. Each transport maps it exactly once (HTTP status,
//! WebSocket error frame); internal causes are logged, never shown.

use crate::model::RoomName;
use crate::time::Timestamp;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input failed validation; `field` names the offending field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Missing, malformed or expired credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The caller is known but not allowed (e.g. wrong room password).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The thing does not exist, or the caller may not learn that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    /// The account is suspended by a server admin. Told only to whoever
    /// proved they hold it (the right password), with why and until when
    /// (`None`: until lifted).
    #[error("{}", suspended_message(.reason, .ends_at))]
    Suspended {
        reason: String,
        ends_at: Option<Timestamp>,
    },
    /// The account cannot be deleted while it is the only owner of these
    /// rooms, which have other members: ownership must be handed over first.
    #[error("{}", last_owner_message(.0))]
    LastOwner(Vec<RoomName>),
    /// Too much of one kind of work is running (password hashing): refused at
    /// once rather than queued without bound.
    /// How long to wait is `retry_after` (the `Retry-After` header on HTTP).
    #[error("the server is busy; retry shortly")]
    Overloaded { retry_after: std::time::Duration },
    /// This caller did this too often (a rate limit, or the delay after failed
    /// logins); it may try again after `retry_after`.
    #[error("too many requests; retry later")]
    RateLimited { retry_after: std::time::Duration },
    /// A dependency (the store) cannot be reached right now; retrying may work.
    #[error("service temporarily unavailable")]
    Unavailable,
    /// A bug or an unexpected failure; details are logged where it happens.
    #[error("internal error")]
    Internal,
    /// The request would go past a size bound: the named one (an
    /// attachment's size, the uploader's storage quota).
    #[error("too large: past {0}")]
    TooLarge(&'static str),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// How long the caller should wait before trying again, when that is known.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Overloaded { retry_after } | Error::RateLimited { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// Stable snake_case code shown to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_input",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::LastOwner(_) => "last_owner",
            Error::Suspended { .. } => "account_suspended",
            Error::Overloaded { .. } => "overloaded",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable => "store_unavailable",
            Error::Internal => "internal",
            Error::TooLarge(_) => "too_large",
        }
    }
}

fn last_owner_message(rooms: &[RoomName]) -> String {
    let names: Vec<&str> = rooms.iter().map(|room| room.name.as_str()).collect();
    format!(
        "you are the only owner of rooms with other members ({}): hand them over first",
        names.join(", ")
    )
}

fn suspended_message(reason: &str, ends_at: &Option<Timestamp>) -> String {
    match ends_at {
        Some(end) => format!(
            "this account is suspended until {}: {reason}",
            end.to_rfc3339()
        ),
        None => format!("this account is suspended: {reason}"),
    }
}

/// What a `Store` port answers when it fails; the domain turns it into an
/// `Error` (and logs the cause) in `From`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was violated; the payload names the rule for the caller.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("store error: {0}")]
    Other(String),
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                Error::Unavailable
            }
            StoreError::Conflict(what) => Error::Conflict(what),
            StoreError::Other(cause) => {
                tracing::error!(%cause, "store error");
                Error::Internal
            }
        }
    }
}
