//! `/api/v1/rooms/{id}/…`: membership and settings, for owners and admins.
//! Who may do what is decided in the domain (`rooms/moderation.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use palaver_domain::accounts::UserLookup;
use palaver_domain::model::Role;
use palaver_domain::rooms::RoomSettings;
use palaver_domain::{Error, RoomId, UserId};
use palaver_protocol::rest::{
    BanInfo, InviteRequest, RoleRequest, Room, UpdateRoomRequest, UserIdRequest, UserRef,
};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AuthUser};
use super::AppState;
use crate::wire;

/// Invite a user (by id or username) into the room (owner or admin). They
/// get an `invited` event and become a member only by accepting; inviting
/// a member, or someone already invited, changes nothing.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/invitations", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = InviteRequest,
    responses((status = 204, description = "invited"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the user is banned, or has too many invitations waiting", body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<InviteRequest>,
) -> Result<StatusCode, ApiError> {
    let who = match req.user {
        UserRef::Id(id) => UserLookup::Id(UserId(id)),
        UserRef::Username(name) => UserLookup::Username(name),
    };
    state.services.invite(actor, RoomId(id), &who).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owner, or an admin removing a plain member).
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/members/{user_id}", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), ("user_id" = i64, Path, description = "member")),
    responses((status = 204, description = "removed"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn kick(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath((id, user_id)): AppPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .rooms
        .kick(actor, RoomId(id), UserId(user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make a member an admin, or an admin a plain member (owner only).
#[utoipa::path(put, path = "/api/v1/rooms/{id}/members/{user_id}/role", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), ("user_id" = i64, Path, description = "member")),
    request_body = RoleRequest,
    responses((status = 204, description = "changed"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath((id, user_id)): AppPath<(i64, i64)>,
    AppJson(req): AppJson<RoleRequest>,
) -> Result<StatusCode, ApiError> {
    let role = match Role::parse(&req.role) {
        Some(role @ (Role::Admin | Role::Member)) => role,
        Some(Role::Owner) => {
            return Err(
                Error::invalid("role", "transfer ownership with POST /rooms/{id}/owner").into(),
            )
        }
        None => return Err(Error::invalid("role", "must be `admin` or `member`").into()),
    };
    state
        .services
        .rooms
        .set_role(actor, RoomId(id), UserId(user_id), role)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hand the room to another member; the caller becomes an admin (owner only).
#[utoipa::path(post, path = "/api/v1/rooms/{id}/owner", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = UserIdRequest,
    responses((status = 204, description = "transferred"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn transfer(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<UserIdRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .rooms
        .transfer_ownership(actor, RoomId(id), UserId(req.user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ban a user: removed if a member, and unable to join again (owner or admin).
#[utoipa::path(post, path = "/api/v1/rooms/{id}/bans", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = UserIdRequest,
    responses((status = 204, description = "banned"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn ban(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<UserIdRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .ban(actor, RoomId(id), UserId(req.user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The room's bans (owner or admin).
#[utoipa::path(get, path = "/api/v1/rooms/{id}/bans", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    responses((status = 200, body = Vec<BanInfo>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn bans(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<AppJson<Vec<BanInfo>>, ApiError> {
    let bans = state.services.rooms.bans(actor, RoomId(id)).await?;
    Ok(AppJson(
        bans.into_iter()
            .map(|ban| BanInfo {
                user_id: ban.user_id.0,
                banned_by: ban.banned_by.0,
                created_at: ban.created_at.to_rfc3339(),
            })
            .collect(),
    ))
}

/// Lift a ban (owner or admin).
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/bans/{user_id}", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), ("user_id" = i64, Path, description = "banned user")),
    responses((status = 204, description = "unbanned"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn unban(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath((id, user_id)): AppPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .rooms
        .unban(actor, RoomId(id), UserId(user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rename the room and/or change or remove its password (owner only).
#[utoipa::path(patch, path = "/api/v1/rooms/{id}", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = UpdateRoomRequest,
    responses((status = 200, body = Room), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<UpdateRoomRequest>,
) -> Result<AppJson<Room>, ApiError> {
    let settings = RoomSettings {
        name: req.name,
        password: req.password,
    };
    let room = state
        .services
        .rooms
        .update(actor, RoomId(id), settings)
        .await?;
    Ok(AppJson(wire::room(&room)))
}

/// Give the room a new join code; the old code stops working (owner only).
#[utoipa::path(post, path = "/api/v1/rooms/{id}/code", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    responses((status = 200, body = Room), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn rotate_code(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<AppJson<Room>, ApiError> {
    let room = state.services.rooms.rotate_code(actor, RoomId(id)).await?;
    Ok(AppJson(wire::room(&room)))
}

/// Delete the room and its history (owner only).
#[utoipa::path(delete, path = "/api/v1/rooms/{id}", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.services.rooms.delete(actor, RoomId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
