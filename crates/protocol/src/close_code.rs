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
