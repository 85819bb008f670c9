//! `/api/v1/admin/…`: the server admin API (docs/admin.md). Every route
//! takes `AdminCaller` first, so anyone but a server admin is refused with
//! 401 or 403 before their request is looked at; the domain checks again
//! (`admin.rs`), and the store once more in each change's transaction.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use palaver_domain::admin::{
    AdminGrant, AuditDetail, AuditEntry, Page, Report, ReportOutcome, RoomOverview, Suspension,
    UserOverview,
};
use palaver_domain::store::ReportFilter;
use palaver_domain::time::Timestamp;
use palaver_domain::{Error, RoomId, UserId};
use palaver_protocol::rest::admin::{
    AdminDeleteUserRequest, AdminInfo, AdminListQuery, AdminReasonRequest, AdminReport, AdminRoom,
    AdminRoomPage, AdminSuspension, AdminTransferRequest, AdminUser, AdminUserPage,
    AuditDetailInfo, AuditEntryInfo, AuditPage, AuditQuery, AuditTargetInfo, EraseResult,
    ReportPage, ReportQuery, ResolveReportRequest, SuspendRequest, TakeDownRequest,
};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser};
use super::AppState;
use crate::wire;

/// A signed-in server admin (alive, not suspended): 401 without a valid
/// login, 403 `forbidden` for anyone else.
pub struct AdminCaller(pub UserId);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        state.services.admin.require_admin(user).await?;
        Ok(AdminCaller(user))
    }
}

/// The server's admins.
#[utoipa::path(get, path = "/api/v1/admin/admins", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<AdminInfo>),
        (status = 403, description = "not a server admin", body = ErrorBody)))]
pub async fn admins(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<AppJson<Vec<AdminInfo>>, ApiError> {
    let admins = state.services.admin.admins(caller).await?;
    Ok(AppJson(admins.iter().map(admin_info).collect()))
}

/// Accounts (not deleted) by id, with when they were created and last
/// seen, their live sessions and rooms; `q` searches usernames and display
/// names by their start.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    security(("bearer" = [])),
    params(AdminListQuery),
    responses((status = 200, body = AdminUserPage),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn users(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppQuery(query): AppQuery<AdminListQuery>,
) -> Result<AppJson<AdminUserPage>, ApiError> {
    let Page { items, next } = state
        .services
        .admin
        .users(caller, query.q.as_deref(), query.after, query.limit)
        .await?;
    Ok(AppJson(AdminUserPage {
        users: items.iter().map(admin_user).collect(),
        next,
    }))
}

/// Suspend an account: it cannot log in (its owner is told why, and until
/// when, after giving the right password) or refresh, and every session of
/// it ends at once on every node (real-time connections close with 4002).
/// Suspending again replaces the suspension.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/suspend", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "user id")),
    request_body = SuspendRequest,
    responses((status = 200, description = "suspended; the audit entry", body = AuditEntryInfo),
        (status = 403, description = "not a server admin, or the admin themselves", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn suspend(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<SuspendRequest>,
) -> Result<AppJson<AuditEntryInfo>, ApiError> {
    let until = time_field("until", req.until.as_deref())?;
    let entry = state
        .services
        .admin
        .suspend(caller, UserId(id), &req.reason, until)
        .await?;
    Ok(AppJson(audit_entry(&entry)))
}

/// Lift an account's suspension (sessions it ended stay ended).
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/unsuspend", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "user id")),
    request_body = AdminReasonRequest,
    responses((status = 200, description = "lifted; the audit entry", body = AuditEntryInfo),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 409, description = "the account is not suspended", body = ErrorBody)))]
pub async fn unsuspend(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<AdminReasonRequest>,
) -> Result<AppJson<AuditEntryInfo>, ApiError> {
    let entry = state
        .services
        .admin
        .unsuspend(caller, UserId(id), req.reason.as_deref())
        .await?;
    Ok(AppJson(audit_entry(&entry)))
}

/// Delete an account as its owner could: its memberships and sessions end,
/// its messages stay under "Deleted user" (blanked with `erase`). Refused
/// (`last_owner`) while it is the only owner of rooms with other members:
/// transfer them first.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/delete", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "user id")),
    request_body = AdminDeleteUserRequest,
    responses((status = 200, description = "deleted; the audit entry", body = AuditEntryInfo),
        (status = 403, description = "not a server admin, or the admin themselves", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the only owner of rooms with others (`last_owner`)", body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<AdminDeleteUserRequest>,
) -> Result<AppJson<AuditEntryInfo>, ApiError> {
    let entry = state
        .services
        .admin
        .delete_user(caller, UserId(id), req.erase, &req.reason)
        .await?;
    Ok(AppJson(audit_entry(&entry)))
}

/// Blank up to 500 of the user's messages not deleted yet (their seqs
/// stay; members get `message_deleted` for each). Call again while `more`.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/erase-messages", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "user id")),
    request_body = AdminReasonRequest,
    responses((status = 200, body = EraseResult),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "no message of the user is left to erase", body = ErrorBody)))]
pub async fn erase_messages(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<AdminReasonRequest>,
) -> Result<AppJson<EraseResult>, ApiError> {
    let erased = state
        .services
        .admin
        .erase_messages(caller, UserId(id), req.reason.as_deref())
        .await?;
    Ok(AppJson(EraseResult {
        entry: audit_entry(&erased.entry),
        erased: erased.erased,
        more: erased.more,
    }))
}

/// Rooms by id, with member counts and when they were last active; `q`
/// searches names by their start.
#[utoipa::path(get, path = "/api/v1/admin/rooms", tag = "admin",
    security(("bearer" = [])),
    params(AdminListQuery),
    responses((status = 200, body = AdminRoomPage),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn rooms(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppQuery(query): AppQuery<AdminListQuery>,
) -> Result<AppJson<AdminRoomPage>, ApiError> {
    let Page { items, next } = state
        .services
        .admin
        .rooms(caller, query.q.as_deref(), query.after, query.limit)
        .await?;
    Ok(AppJson(AdminRoomPage {
        rooms: items.iter().map(admin_room).collect(),
        next,
    }))
}

/// Take a room down: deleted for everyone with its history; its members get
/// `room_deleted` with the reason.
#[utoipa::path(post, path = "/api/v1/admin/rooms/{id}/take-down", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = TakeDownRequest,
    responses((status = 200, description = "taken down; the audit entry", body = AuditEntryInfo),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn take_down(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<TakeDownRequest>,
) -> Result<AppJson<AuditEntryInfo>, ApiError> {
    let entry = state
        .services
        .admin
        .take_down(caller, RoomId(id), &req.reason)
        .await?;
    Ok(AppJson(audit_entry(&entry)))
}

/// Hand a group room to one of its members; the owner before becomes an admin of it.
#[utoipa::path(post, path = "/api/v1/admin/rooms/{id}/owner", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = AdminTransferRequest,
    responses((status = 200, description = "transferred; the audit entry", body = AuditEntryInfo),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 404, description = "no such room, or the user is not a member", body = ErrorBody),
        (status = 409, description = "already the owner, or a direct room", body = ErrorBody)))]
pub async fn transfer_room(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<AdminTransferRequest>,
) -> Result<AppJson<AuditEntryInfo>, ApiError> {
    let entry = state
        .services
        .admin
        .transfer_room(
            caller,
            RoomId(id),
            UserId(req.user_id),
            req.reason.as_deref(),
        )
        .await?;
    Ok(AppJson(audit_entry(&entry)))
}

/// Delete any message (its seq stays; members get `message_deleted`).
#[utoipa::path(post, path = "/api/v1/admin/rooms/{id}/messages/{seq}/delete", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), ("seq" = u64, Path, description = "message seq")),
    request_body = AdminReasonRequest,
    responses((status = 200, description = "deleted; the audit entry", body = AuditEntryInfo),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the message was already deleted", body = ErrorBody)))]
pub async fn delete_message(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath((id, seq)): AppPath<(i64, u64)>,
    AppJson(req): AppJson<AdminReasonRequest>,
) -> Result<AppJson<AuditEntryInfo>, ApiError> {
    let entry = state
        .services
        .admin
        .delete_message(caller, RoomId(id), seq, req.reason.as_deref())
        .await?;
    Ok(AppJson(audit_entry(&entry)))
}

/// Members' reports of messages, oldest first: open ones by default.
#[utoipa::path(get, path = "/api/v1/admin/reports", tag = "admin",
    security(("bearer" = [])),
    params(ReportQuery),
    responses((status = 200, body = ReportPage),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn reports(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppQuery(query): AppQuery<ReportQuery>,
) -> Result<AppJson<ReportPage>, ApiError> {
    let which = match query.status.as_deref() {
        None | Some("open") => ReportFilter::Open,
        Some("resolved") => ReportFilter::Resolved,
        Some("all") => ReportFilter::All,
        Some(_) => return Err(Error::invalid("status", "must be open, resolved or all").into()),
    };
    let Page { items, next } = state
        .services
        .admin
        .reports(caller, which, query.after, query.limit)
        .await?;
    Ok(AppJson(ReportPage {
        reports: items.iter().map(admin_report).collect(),
        next,
    }))
}

/// Resolve a report, and every other open report of the same message:
/// `dismiss`, `delete_message`, or `suspend_sender` (until `until`, with
/// `reason`, else the report's).
#[utoipa::path(post, path = "/api/v1/admin/reports/{id}/resolve", tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id")),
    request_body = ResolveReportRequest,
    responses((status = 200, description = "resolved; the audit entry", body = AuditEntryInfo),
        (status = 403, description = "not a server admin, or suspending themselves", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "already resolved", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn resolve_report(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<ResolveReportRequest>,
) -> Result<AppJson<AuditEntryInfo>, ApiError> {
    let outcome = match req.action.as_str() {
        "dismiss" => ReportOutcome::Dismissed,
        "delete_message" => ReportOutcome::MessageDeleted,
        "suspend_sender" => ReportOutcome::SenderSuspended,
        _ => {
            return Err(Error::invalid(
                "action",
                "must be dismiss, delete_message or suspend_sender",
            )
            .into())
        }
    };
    let until = time_field("until", req.until.as_deref())?;
    let entry = state
        .services
        .admin
        .resolve_report(caller, id, outcome, req.reason.as_deref(), until)
        .await?;
    Ok(AppJson(audit_entry(&entry)))
}

/// The audit log, newest first: every admin action, who took it, on what,
/// when and why.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin",
    security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditPage),
        (status = 403, description = "not a server admin", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<AppJson<AuditPage>, ApiError> {
    let Page { items, next } = state
        .services
        .admin
        .audit(caller, query.before, query.limit)
        .await?;
    Ok(AppJson(AuditPage {
        entries: items.iter().map(audit_entry).collect(),
        next,
    }))
}

/// An optional RFC 3339 time of a request.
fn time_field(field: &'static str, raw: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw)
            .ok_or_else(|| Error::invalid(field, "must be an RFC 3339 time").into())
    })
    .transpose()
}

fn admin_info(grant: &AdminGrant) -> AdminInfo {
    AdminInfo {
        user: wire::user(&grant.user),
        granted_at: grant.granted_at.to_rfc3339(),
        granted_by: grant.granted_by.map(|by| by.0),
    }
}

fn suspension(suspension: &Suspension) -> AdminSuspension {
    AdminSuspension {
        reason: suspension.reason.clone(),
        until: suspension.ends_at.map(Timestamp::to_rfc3339),
        by: suspension.by.map(|by| by.0),
        at: suspension.at.to_rfc3339(),
    }
}

fn admin_user(user: &UserOverview) -> AdminUser {
    AdminUser {
        user: wire::user(&user.user),
        last_seen: user.last_seen.map(Timestamp::to_rfc3339),
        live_sessions: user.live_sessions,
        rooms: user.rooms,
        admin: user.admin,
        suspension: user.suspension.as_ref().map(suspension),
    }
}

fn admin_room(room: &RoomOverview) -> AdminRoom {
    AdminRoom {
        room: wire::room(&room.room),
        members: room.members,
        last_seq: room.last_seq,
        last_activity: room.last_activity.to_rfc3339(),
    }
}

fn admin_report(report: &Report) -> AdminReport {
    AdminReport {
        id: report.id,
        room: report.room_id.0,
        seq: report.seq,
        reporter_id: report.reporter_id.0,
        reason: report.reason.clone(),
        created_at: report.created_at.to_rfc3339(),
        status: if report.resolution.is_some() {
            "resolved"
        } else {
            "open"
        }
        .to_owned(),
        resolved_at: report.resolution.map(|r| r.at.to_rfc3339()),
        resolved_by: report.resolution.and_then(|r| r.by).map(|by| by.0),
        resolution: report.resolution.map(|r| r.outcome.as_str().to_owned()),
        message: report.message.as_ref().map(wire::message),
    }
}

pub(crate) fn audit_entry(entry: &AuditEntry) -> AuditEntryInfo {
    AuditEntryInfo {
        id: entry.id,
        at: entry.at.to_rfc3339(),
        admin_id: entry.admin.map(|admin| admin.0),
        action: entry.action.as_str().to_owned(),
        target: AuditTargetInfo {
            kind: entry.target.kind().to_owned(),
            id: entry.target.id(),
            seq: entry.target.seq(),
        },
        reason: entry.reason.clone(),
        detail: audit_detail(&entry.detail),
    }
}

fn audit_detail(detail: &AuditDetail) -> AuditDetailInfo {
    AuditDetailInfo {
        until: detail.ends_at.map(|end| Timestamp(end).to_rfc3339()),
        erase: detail.erase,
        from: detail.from,
        to: detail.to,
        outcome: detail.outcome.clone(),
        room: detail.room,
        seq: detail.seq,
        sender: detail.sender,
        resolved: detail.resolved,
        erased: detail.erased,
    }
}
