//! `/api/v1/users/*` and `/api/v1/dms`: profiles, account deletion, finding
//! people, direct rooms.

use axum::extract::State;
use axum::http::StatusCode;
use palaver_domain::accounts::UserLookup;
use palaver_domain::UserId;
use palaver_protocol::rest::{
    Account, DeleteAccountQuery, DeleteAccountRequest, DirectRequest, Room, UpdateProfileRequest,
    User, UserPage, UserRef, UserSearchQuery,
};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser, ClientAddress};
use super::AppState;
use crate::wire;

/// The caller's own account: profile, e-mail address and whether it is verified.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<AppJson<Account>, ApiError> {
    Ok(AppJson(wire::account(
        &state.services.accounts.account(user).await?,
    )))
}

/// Change the caller's display name (1–64 characters) and/or e-mail address
/// (stored unverified; a code to verify it is mailed to it).
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, body = Account),
        (status = 409, description = "the address belongs to another account", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "too many address changes: the account's day allowance (asking about a taken address included) or the rate; wait `Retry-After`", body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<UpdateProfileRequest>,
) -> Result<AppJson<Account>, ApiError> {
    let accounts = &state.services.accounts;
    if let Some(name) = &req.display_name {
        accounts.update_display_name(user, name).await?;
    }
    if let Some(email) = &req.email {
        accounts.set_email(user, Some(email), from).await?;
    }
    Ok(AppJson(wire::account(&accounts.account(user).await?)))
}

/// Delete the caller's account, confirmed by its password. Its messages stay
/// in history under "Deleted user" (with `erase=true` their bodies are
/// blanked too), its memberships end (`member_left`; a room left empty is
/// deleted), every login ends (WebSockets closed with 4002), and its username
/// cannot be registered again for a while (`--username-hold-days`).
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    params(DeleteAccountQuery),
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "the password is wrong", body = ErrorBody),
        (status = 409, description = "`last_owner`: the only owner of rooms with other members, named in `rooms`; hand them over first", body = ErrorBody),
        (status = 429, description = "too many attempts: wait `Retry-After` (the login back-off applies)", body = ErrorBody),
        (status = 503, description = "too many passwords being hashed (`overloaded`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddress(from): ClientAddress,
    AppQuery(query): AppQuery<DeleteAccountQuery>,
    AppJson(req): AppJson<DeleteAccountRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .delete_account(user, &req.password, query.erase, from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Find people by the start of their username or display name (any case).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    params(UserSearchQuery),
    responses((status = 200, body = UserPage), (status = 422, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    AuthUser(_caller): AuthUser,
    AppQuery(query): AppQuery<UserSearchQuery>,
) -> Result<AppJson<UserPage>, ApiError> {
    let (users, next) = state
        .services
        .accounts
        .search(
            query.q.as_deref().unwrap_or(""),
            query.after.as_deref(),
            query.limit,
        )
        .await?;
    Ok(AppJson(UserPage {
        users: users.iter().map(wire::user).collect(),
        next,
    }))
}

/// A user's public profile.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn profile(
    State(state): State<AppState>,
    AuthUser(_caller): AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<AppJson<User>, ApiError> {
    Ok(AppJson(wire::user(
        &state.services.accounts.user(UserId(id)).await?,
    )))
}

/// The caller's direct room with another user (by id or username): created on
/// first use, the same room every time and from either side.
#[utoipa::path(post, path = "/api/v1/dms", tag = "rooms",
    security(("bearer" = [])),
    request_body = DirectRequest,
    responses((status = 200, body = Room), (status = 404, description = "no such user", body = ErrorBody),
        (status = 403, description = "oneself: a direct room needs someone else", body = ErrorBody)))]
pub async fn direct(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppJson(req): AppJson<DirectRequest>,
) -> Result<AppJson<Room>, ApiError> {
    let other = match req.user {
        UserRef::Id(id) => UserLookup::Id(UserId(id)),
        UserRef::Username(name) => UserLookup::Username(name),
    };
    let room = state.services.direct_room(user, &other).await?;
    Ok(AppJson(wire::room(&room)))
}
