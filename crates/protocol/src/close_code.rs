//! WebSocket close codes Palaver uses, in documented ranges.
//!
//! - `1000–1015`: standard codes (RFC 6455). `1001` (server going away) and
//!   `1013` (try again later: slow consumer) mean "reconnect with backoff".
//! - `4000–4499`: terminal — reconnecting with the same input fails the same way
//!   (e.g. bad credentials); the client must change something first.
//! - `4500–4999`: reconnectable application codes: try again later, with
//!   backoff.

/// Normal closure requested by the client.
pub const NORMAL: u16 = 1000;
/// The server is shutting down; reconnect (possibly to another node).
pub const GOING_AWAY: u16 = 1001;
/// A binary frame was sent; Palaver speaks JSON text frames only.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A frame exceeded the configured maximum frame size.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The connection could not drain its outgoing queue fast enough ("slow consumer").
pub const SLOW_CONSUMER: u16 = 1013;
/// Authentication failed, or did not arrive in time.
pub const UNAUTHORIZED: u16 = 4001;
/// The login this connection authenticated with has ended (signed out here
/// or everywhere, revoked from the session list, password changed or reset,
/// account deleted). Its access and refresh tokens no longer work: do not
/// reconnect with them; sign in again.
pub const SESSION_ENDED: u16 = 4002;
/// The user (or the client address) already has as many real-time sessions
/// open as the server allows (`--max-sessions-per-user`,
/// `--max-sessions-per-address`), over every transport together. Reconnect
/// with backoff once another session has ended.
pub const TOO_MANY_SESSIONS: u16 = 4500;
/// The user (or the client address) opened sessions faster than the server
/// allows (`session_open_per_user`, `session_open_per_address`). Reconnect
/// with backoff.
pub const OPENED_TOO_OFTEN: u16 = 4501;

/// Why the server ends a real-time session: one value that every transport
/// spells its own way (a WebSocket close frame, a gRPC status, the error of
/// each protocol added later), so none matches another's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The server is shutting down: reconnect, possibly to another node.
    Shutdown,
    /// The store cannot be reached to set the session up: reconnect later.
    StoreUnavailable,
    /// The client sent a frame the protocol does not carry (binary on the
    /// WebSocket).
    UnsupportedData,
    /// A frame was larger than `--max-frame-bytes`.
    FrameTooLarge,
    /// The session's queue overflowed: it read too slowly.
    SlowConsumer,
    /// Authentication failed or did not arrive in time; why, in words.
    Unauthorized(&'static str),
    /// The login the session authenticated with has ended.
    SessionEnded,
    /// The user or address holds as many sessions as allowed; which, in words.
    TooManySessions(&'static str),
    /// The user or address opened sessions faster than its budget.
    OpenedTooOften,
}

impl CloseReason {
    /// The WebSocket close code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Shutdown | Self::StoreUnavailable => GOING_AWAY,
            Self::UnsupportedData => UNSUPPORTED_DATA,
            Self::FrameTooLarge => MESSAGE_TOO_BIG,
            Self::SlowConsumer => SLOW_CONSUMER,
            Self::Unauthorized(_) => UNAUTHORIZED,
            Self::SessionEnded => SESSION_ENDED,
            Self::TooManySessions(_) => TOO_MANY_SESSIONS,
            Self::OpenedTooOften => OPENED_TOO_OFTEN,
        }
    }

    /// What the close says to a person.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Shutdown => "server shutting down",
            Self::StoreUnavailable => "store unavailable",
            Self::UnsupportedData => "binary frames are not supported",
            Self::FrameTooLarge => "frame too large",
            Self::SlowConsumer => "slow consumer",
            Self::Unauthorized(why) | Self::TooManySessions(why) => why,
            Self::SessionEnded => "session ended",
            Self::OpenedTooOften => "sessions opened too often; retry later",
        }
    }

    /// The machine code, as error bodies and frames spell it.
    pub const fn error_code(self) -> &'static str {
        match self {
            Self::Shutdown => "shutting_down",
            Self::StoreUnavailable => "unavailable",
            Self::UnsupportedData => "invalid_frame",
            Self::FrameTooLarge => "frame_too_large",
            Self::SlowConsumer => "slow_consumer",
            Self::Unauthorized(_) => "unauthorized",
            Self::SessionEnded => "session_ended",
            Self::TooManySessions(_) => "too_many_sessions",
            Self::OpenedTooOften => "rate_limited",
        }
    }

    /// Whether reconnecting as it was (with backoff) can succeed; otherwise
    /// the client must change something first (sign in again, send less).
    pub const fn reconnect(self) -> bool {
        matches!(
            self,
            Self::Shutdown
                | Self::StoreUnavailable
                | Self::SlowConsumer
                | Self::TooManySessions(_)
                | Self::OpenedTooOften
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_sits_in_the_range_its_reconnect_rule_documents() {
        let every = [
            CloseReason::Shutdown,
            CloseReason::StoreUnavailable,
            CloseReason::UnsupportedData,
            CloseReason::FrameTooLarge,
            CloseReason::SlowConsumer,
            CloseReason::Unauthorized("bad token"),
            CloseReason::SessionEnded,
            CloseReason::TooManySessions("too many sessions for this user"),
            CloseReason::OpenedTooOften,
        ];
        for reason in every {
            let code = reason.code();
            match code {
                4000..=4499 => assert!(!reason.reconnect(), "{reason:?}"),
                4500..=4999 => assert!(reason.reconnect(), "{reason:?}"),
                GOING_AWAY | SLOW_CONSUMER => assert!(reason.reconnect(), "{reason:?}"),
                _ => assert!(!reason.reconnect(), "{reason:?}"),
            }
            assert!(!reason.reason().is_empty() && reason.reason().len() <= 123);
        }
    }
}
