//! REST request and response bodies (`/api/v1/...`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub mod admin;
pub mod attachments;
pub mod mentions;
pub mod search;

/// The `pattern` of every name people read (display names, room names), the
/// rules of the domain's `parse_label` as a regular expression (ECMA-262, as
/// JSON Schema reads it, and as Python and Rust read it): no control
/// character, direction control or line separator, and at least one
/// character that is neither white space nor invisible. Each field's
/// `#[schema(pattern)]` spells it out (the attribute takes only a literal); a
/// test checks each against this.
pub const NAME_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$";

/// The `pattern` of a message body, the rules of the domain's `MessageBody`:
/// no control character but newline and tab, no direction override, each
/// embedding (U+202A, U+202B … U+202C) or isolate (U+2066 to U+2068 … U+2069)
/// closed on its line and not nested.
pub const BODY_PATTERN: &str = "^(?:[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]|[\\u202A\\u202B][^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\u2029\\u202A-\\u202E\\u2066-\\u2069]*\\u202C|[\\u2066-\\u2068][^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\u2029\\u202A-\\u202E\\u2066-\\u2069]*\\u2069)*$";

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: i64,
    /// Lower-case, 3–32 of `[a-z0-9_.-]`; `null` for a deleted account.
    pub username: Option<String>,
    /// "Deleted user" for a deleted account.
    pub display_name: String,
    /// RFC 3339 timestamp.
    pub created_at: String,
    /// The account was deleted: this is what its messages show as sender.
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Stored lower-case; unique ignoring case.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{3,32}$")]
    pub username: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// Shown to others; the username when omitted. Surrounding white space is
    /// trimmed; no control characters.
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub display_name: Option<String>,
    /// Stored lower-case and unverified; a code to verify it is mailed to it.
    /// Unique ignoring case.
    #[serde(default)]
    #[schema(max_length = 254, format = "email")]
    pub email: Option<String>,
}

/// The caller's own account: the public profile, and what only they see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// RFC 3339 timestamp.
    pub created_at: String,
    /// Lower-case; never shown to anyone else.
    pub email: Option<String>,
    /// Whether the address was confirmed with the code mailed to it; only a
    /// verified address receives password-reset codes.
    pub email_verified: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyEmailRequest {
    /// The 6-digit code mailed to the address.
    pub code: String,
}

/// `login`: a username or an e-mail address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    pub login: String,
}

/// Always the answer to a reset request, whether or not such an account or
/// a verified address exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasswordResetConfirmRequest {
    pub login: String,
    /// The 6-digit code from the mail.
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetTokenResponse {
    /// Single use, for `POST /auth/password-reset/complete`.
    pub reset_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasswordResetCompleteRequest {
    pub reset_token: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Sign in with cookies (browsers): the tokens are set as `HttpOnly`
    /// `__Host-` cookies instead of returned, and the answer is a
    /// `CookieSession`.
    #[serde(default)]
    pub cookie: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// Required unless `cookie`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Spend the refresh-token cookie instead (and answer as a cookie login;
    /// `X-CSRF-Token` required).
    #[serde(default)]
    pub cookie: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// Without it, the refresh-token cookie's login ends (`X-CSRF-Token`
    /// required); the sign-in cookies are cleared either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// A cookie login (`"cookie": true`): the tokens are in cookies the page
/// cannot read; `csrf_token` (also the readable `__Host-palaver-csrf` cookie)
/// goes in `X-CSRF-Token` on every request that changes something.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CookieSession {
    pub csrf_token: String,
    /// Seconds until the access-token cookie expires (refresh before).
    pub expires_in: u64,
    pub user: User,
}

/// What login and refresh answer: the tokens, or a cookie login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenResponse),
    Cookie(CookieSession),
}

/// Issued by login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub user: User,
}

/// One login of the caller's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub id: String,
    /// RFC 3339: when the login happened.
    pub created_at: String,
    /// RFC 3339: the login or its latest refresh (access tokens are not
    /// counted, so this lags by up to their lifetime).
    pub last_used_at: String,
    /// The `User-Agent` the login came with (at most 256 characters).
    pub user_agent: Option<String>,
    /// Whether this is the login whose access token made the request.
    pub current: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// The account's password, as a confirmation.
    pub password: String,
}

/// Query for `DELETE /users/me`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteAccountQuery {
    /// Also blank the bodies of the account's messages (they stay in history
    /// as deleted, their seqs unchanged).
    #[serde(default)]
    pub erase: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// A JSON Web Key Set (RFC 7517): the public keys access tokens are signed
/// with. A token names its key by `kid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public key (RFC 7517; RFC 8037 for Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// `OKP` (Ed25519) or `RSA`.
    pub kty: String,
    pub kid: String,
    /// `EdDSA` or `RS256`: the only algorithm this key verifies.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `Ed25519` for an OKP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The Ed25519 public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateRoomRequest {
    /// Surrounding white space is trimmed; no control characters.
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub name: String,
    /// When set (and not empty), joining by code also requires this password.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JoinRoomRequest {
    pub code: String,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Room {
    pub id: i64,
    pub name: String,
    /// Short join code (8 characters of an unambiguous alphabet).
    pub code: String,
    pub owner_id: i64,
    pub created_at: String,
    pub has_password: bool,
    /// `group` (joined by code) or `direct` (the private room of two people).
    pub kind: String,
}

/// `POST /rooms/{id}/invitations`: invite someone (owner or admin); they
/// become a member by accepting.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InviteRequest {
    pub user: UserRef,
}

/// A page of a room's members (`GET /rooms/{id}/members`, `/online`): by
/// user id; a response with more after it links the next page (`Link:
/// <…?after=ID&limit=N>; rel="next"`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// Page size: default 200, at most 500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Members with a user id above this one.
    pub after: Option<i64>,
}

/// An invitation waiting for the caller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationInfo {
    pub room: i64,
    pub room_name: String,
    /// Who invited.
    pub by: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// Page size: default 50, at most 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationPage {
    /// Ordered by room id.
    pub invitations: Vec<InvitationInfo>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// `POST /rooms/{id}/bans` and `POST /rooms/{id}/owner`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserIdRequest {
    #[serde(deserialize_with = "crate::integer::id")]
    pub user_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleRequest {
    /// `admin` or `member`.
    #[schema(pattern = "^(admin|member)$")]
    pub role: String,
}

/// `PATCH /rooms/{id}`: omitted fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateRoomRequest {
    #[serde(default)]
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub name: Option<String>,
    /// A new join password; `""` removes it.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BanInfo {
    pub user_id: i64,
    pub banned_by: i64,
    pub created_at: String,
}

/// `POST /dms`: the user to talk to, by id (a number) or username (a string).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DirectRequest {
    pub user: UserRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum UserRef {
    Id(#[serde(deserialize_with = "crate::integer::id")] i64),
    Username(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// Surrounding white space is trimmed; no control characters. Unchanged
    /// when absent.
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub display_name: Option<String>,
    /// A new address: stored unverified, and a code to verify it is mailed
    /// to it. Unchanged when absent.
    #[serde(default)]
    #[schema(max_length = 254, format = "email")]
    pub email: Option<String>,
}

/// Query for `GET /users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearchQuery {
    /// Start of a username or display name (case-insensitive); empty lists everyone.
    #[param(max_length = 64)]
    pub q: Option<String>,
    /// Page size: default 20, at most 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    /// Ordered by username.
    pub users: Vec<User>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A room as it appears in the caller's room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoomSummary {
    #[serde(flatten)]
    pub room: Room,
    /// The caller's role: `owner`, `admin` or `member`.
    pub role: String,
    /// Sequence number of the newest message (0 when empty).
    pub last_seq: u64,
    pub last_message: Option<Message>,
    /// The caller's read marker: the newest seq they have read.
    pub last_read_seq: u64,
    /// Messages after the marker from other people, not deleted.
    pub unread_count: u64,
    /// Of those, the ones that mention the caller.
    #[serde(default)]
    pub unread_mentions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub user: User,
    pub role: String,
    pub joined_at: String,
    /// Whether the user has a live connection (on any node) now.
    pub online: bool,
    /// When their last connection closed (RFC 3339); absent if never connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub room_id: i64,
    /// Per-room sequence number: 1, 2, 3… with no gaps.
    pub seq: u64,
    pub sender_id: i64,
    pub body: String,
    pub created_at: String,
    /// The sender's idempotency key, if it gave one.
    pub client_id: Option<String>,
    /// The seq of the message (same room) this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// When the sender last edited the body (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// A deleted message keeps its seq; its `body` is empty.
    #[serde(default)]
    pub deleted: bool,
    /// Its reactions, one entry per emoji in the order they first came
    /// (history only; absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionCount>,
    /// The files it carries (absent when none; none once deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<attachments::Attachment>,
}

/// One emoji under a message: how many members reacted with it, and
/// whether the caller did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReactionCount {
    /// One emoji, or a short name `:name:`.
    pub emoji: String,
    pub count: u32,
    /// The caller reacted with it.
    pub me: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PostMessageRequest {
    /// Kept exactly as sent; at most `--max-body-bytes` bytes of UTF-8 (the
    /// document states the node's setting as `maxLength`). No control
    /// character but newline and tab, no direction override (U+202D, U+202E),
    /// and each direction embedding or isolate closed on its line, not nested
    /// (`BODY_PATTERN`).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = "^(?:[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]|[\\u202A\\u202B][^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\u2029\\u202A-\\u202E\\u2066-\\u2069]*\\u202C|[\\u2066-\\u2068][^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\u2029\\u202A-\\u202E\\u2066-\\u2069]*\\u2069)*$"
    )]
    pub body: String,
    /// Idempotency key: re-sending it returns the original message.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,64}$")]
    pub client_id: Option<String>,
    /// Reply to this seq of the same room.
    #[serde(default, deserialize_with = "crate::integer::optional_seq")]
    #[schema(maximum = 9223372036854775807_u64)]
    pub reply_to: Option<u64>,
    /// Ids of the sender's own uploads to this room that no message carries
    /// yet (`POST /rooms/{id}/attachments`), at most 10 (one listed twice
    /// counts once). An id the sender may not attach, or of no file: `404`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 10)]
    pub attachments: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    /// As a new message's body.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = "^(?:[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]|[\\u202A\\u202B][^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\u2029\\u202A-\\u202E\\u2066-\\u2069]*\\u202C|[\\u2066-\\u2068][^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\u2029\\u202A-\\u202E\\u2066-\\u2069]*\\u2069)*$"
    )]
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MarkReadRequest {
    /// The newest seq the caller has read; a marker never moves backwards.
    #[serde(deserialize_with = "crate::integer::seq")]
    #[schema(maximum = 9223372036854775807_u64)]
    pub seq: u64,
}

/// Where a member's read marker is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadMarker {
    pub user_id: i64,
    pub last_read_seq: u64,
}

/// Query for `GET /rooms/{id}/messages`: `before` pages back, `after` catches up.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Return messages with `seq < before` (newest first page when omitted).
    #[serde(default, deserialize_with = "crate::integer::optional_query_seq")]
    #[param(maximum = 9223372036854775807_u64)]
    pub before: Option<u64>,
    /// Return messages with `seq > after`, oldest first.
    #[serde(default, deserialize_with = "crate::integer::optional_query_seq")]
    #[param(maximum = 9223372036854775807_u64)]
    pub after: Option<u64>,
    /// Page size: default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A page of history, always in ascending `seq` order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Whether more messages exist beyond this page in the requested direction.
    pub has_more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`; `degraded` when the node serves but its bus cannot reach the other
    /// nodes; `unavailable` (503) with the reason in `detail`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Readiness only: `local` (single node), or the Kafka bus's `starting`,
    /// `ok` or `degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    fn pattern_of<T: PartialSchema>(field: &str) -> String {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["properties"][field]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{field} has a pattern"))
            .to_owned()
    }

    #[test]
    fn every_name_and_body_field_states_the_one_pattern_of_its_kind() {
        for pattern in [
            pattern_of::<admin::ReportRequest>("reason"),
            pattern_of::<admin::SuspendRequest>("reason"),
            pattern_of::<admin::AdminReasonRequest>("reason"),
            pattern_of::<admin::AdminDeleteUserRequest>("reason"),
            pattern_of::<admin::TakeDownRequest>("reason"),
            pattern_of::<admin::AdminTransferRequest>("reason"),
            pattern_of::<admin::ResolveReportRequest>("reason"),
            pattern_of::<RegisterRequest>("display_name"),
            pattern_of::<UpdateProfileRequest>("display_name"),
            pattern_of::<CreateRoomRequest>("name"),
            pattern_of::<UpdateRoomRequest>("name"),
        ] {
            assert_eq!(pattern, NAME_PATTERN);
        }
        for pattern in [
            pattern_of::<PostMessageRequest>("body"),
            pattern_of::<EditMessageRequest>("body"),
        ] {
            assert_eq!(pattern, BODY_PATTERN);
        }
    }
}
