//! Bodies of the server admin API (`/api/v1/admin/...`, docs/admin.md) and
//! of a member's report of a message.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Message, Room, User};

/// `POST /rooms/{id}/messages/{seq}/report`: why the message should be
/// looked at, for the server's admins.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportRequest {
    /// One line, 1–500 characters; surrounding white space is trimmed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub reason: String,
}

/// A report as its reporter sees it. It carries no report id: ids count
/// every report on the server, which is not the reporter's to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportReceipt {
    pub room: i64,
    pub seq: u64,
    pub reason: String,
    /// RFC 3339.
    pub created_at: String,
}

/// Query of the admins' lists of users and rooms.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminListQuery {
    /// Start of a username or display name (users), or of a name (rooms),
    /// in any case; empty lists everything.
    #[param(max_length = 64)]
    pub q: Option<String>,
    /// Page size: default 50, at most 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<i64>,
}

/// An account's suspension, as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminSuspension {
    pub reason: String,
    /// RFC 3339; absent: until lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The admin who suspended; absent: the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<i64>,
    /// RFC 3339.
    pub at: String,
}

/// A user as the admins' list shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminUser {
    pub user: User,
    /// When their last connection closed (RFC 3339); absent if never connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Logins neither ended nor expired.
    pub live_sessions: u64,
    /// Rooms they are a member of.
    pub rooms: u64,
    /// A server admin.
    pub admin: bool,
    /// Their suspension, while one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<AdminSuspension>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminUserPage {
    /// Ordered by id.
    pub users: Vec<AdminUser>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// A room as the admins' list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminRoom {
    pub room: Room,
    pub members: u64,
    /// The newest message's seq (0: none yet).
    pub last_seq: u64,
    /// When its newest message was sent, else when it was created (RFC 3339).
    pub last_activity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminRoomPage {
    /// Ordered by id.
    pub rooms: Vec<AdminRoom>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// A server admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminInfo {
    pub user: User,
    /// RFC 3339.
    pub granted_at: String,
    /// The admin who granted it; absent: the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<i64>,
}

/// `POST /admin/users/{id}/suspend`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuspendRequest {
    /// Shown to the account's owner when they log in. One line, 1–500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub reason: String,
    /// When it ends (RFC 3339, in the future); absent: until lifted.
    #[serde(default)]
    #[schema(format = "date-time")]
    pub until: Option<String>,
}

/// The body of admin actions whose reason is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AdminReasonRequest {
    /// For the audit log. One line, 1–500 characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub reason: Option<String>,
}

/// `POST /admin/users/{id}/delete`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminDeleteUserRequest {
    /// For the audit log. One line, 1–500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub reason: String,
    /// Also empty the bodies of the account's messages.
    #[serde(default)]
    pub erase: bool,
}

/// `POST /admin/rooms/{id}/take-down`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TakeDownRequest {
    /// Shown to the room's members in `room_deleted`. One line, 1–500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub reason: String,
}

/// `POST /admin/rooms/{id}/owner`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminTransferRequest {
    /// The new owner: a member of the room.
    #[serde(deserialize_with = "crate::integer::id")]
    pub user_id: i64,
    /// For the audit log. One line, 1–500 characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub reason: Option<String>,
}

/// `POST /admin/reports/{id}/resolve`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResolveReportRequest {
    /// `dismiss`, `delete_message` or `suspend_sender`.
    #[schema(pattern = "^(dismiss|delete_message|suspend_sender)$")]
    pub action: String,
    /// For the audit log; with `suspend_sender`, the suspension's reason
    /// (else the report's). One line, 1–500 characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069]*$"
    )]
    pub reason: Option<String>,
    /// With `suspend_sender`: when the suspension ends (RFC 3339, in the
    /// future); absent: until lifted.
    #[serde(default)]
    #[schema(format = "date-time")]
    pub until: Option<String>,
}

/// What an admin action was done to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditTargetInfo {
    /// `user`, `room`, `message` or `report`.
    pub kind: String,
    /// The user's, room's or report's id; a message's room.
    pub id: i64,
    /// A message's seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The particulars of an admin action, each present where it applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditDetailInfo {
    /// `suspend_user`, `resolve_report`: when the suspension ends (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `delete_user`: the account's messages were blanked too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erase: Option<bool>,
    /// `transfer_room`: the owner before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// `resolve_report`: `dismissed`, `message_deleted` or `sender_suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// `resolve_report`: the reported message and its sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<i64>,
    /// `resolve_report`: how many open reports of the message it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<u64>,
    /// `erase_messages`: how many messages it blanked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<u64>,
}

/// One entry of the audit log: who did what, to whom, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryInfo {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// The acting admin; absent: the command line (`palaver admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_id: Option<i64>,
    /// `grant_admin`, `revoke_admin`, `suspend_user`, `unsuspend_user`,
    /// `delete_user`, `take_down_room`, `transfer_room`, `delete_message`,
    /// `erase_messages` or `resolve_report`.
    pub action: String,
    pub target: AuditTargetInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub detail: AuditDetailInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntryInfo>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size: default 50, at most 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page: entries older than it.
    pub before: Option<i64>,
}

/// `POST /admin/users/{id}/erase-messages`: what one call blanked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EraseResult {
    pub entry: AuditEntryInfo,
    /// Messages blanked by this call (at most 500).
    pub erased: u64,
    /// Messages are left to erase: call again.
    pub more: bool,
}

/// A report as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminReport {
    pub id: i64,
    pub room: i64,
    pub seq: u64,
    pub reporter_id: i64,
    pub reason: String,
    /// RFC 3339.
    pub created_at: String,
    /// `open` or `resolved`.
    pub status: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// The admin who resolved it; absent: open, or the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<i64>,
    /// `dismissed`, `message_deleted` or `sender_suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// The message as it stands now (edited or deleted since, perhaps);
    /// absent once its room is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportPage {
    /// Ordered by id (oldest first).
    pub reports: Vec<AdminReport>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `open` (the default), `resolved` or `all`.
    #[param(pattern = "^(open|resolved|all)$")]
    pub status: Option<String>,
    /// Page size: default 50, at most 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<i64>,
}
