//! `/api/v1/invitations`: the caller's invitations, and their answer.
//! Inviting is moderation (`moderation.rs`); only the invitee answers.

use axum::extract::State;
use axum::http::StatusCode;
use palaver_domain::RoomId;
use palaver_protocol::rest::{InvitationPage, InvitationQuery, Room};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser};
use super::AppState;
use crate::wire;

/// The invitations waiting for the caller's answer, by room id.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "invitations",
    security(("bearer" = [])),
    params(InvitationQuery),
    responses((status = 200, body = InvitationPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppQuery(query): AppQuery<InvitationQuery>,
) -> Result<AppJson<InvitationPage>, ApiError> {
    let page = state
        .services
        .rooms
        .invitations(user, query.after.map(RoomId), query.limit.unwrap_or(50))
        .await?;
    let next = match page.has_more {
        true => page.invitations.last().map(|i| i.room_id.0),
        false => None,
    };
    Ok(AppJson(InvitationPage {
        invitations: page.invitations.iter().map(wire::invitation).collect(),
        next,
    }))
}

/// Accept the invitation: the caller becomes a member (`member_joined`).
#[utoipa::path(post, path = "/api/v1/invitations/{room}/accept", tag = "invitations",
    security(("bearer" = [])),
    params(("room" = i64, Path, description = "the room invited into")),
    responses((status = 200, body = Room),
        (status = 403, description = "banned since the invitation", body = ErrorBody),
        (status = 404, description = "no such invitation", body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(room): AppPath<i64>,
) -> Result<AppJson<Room>, ApiError> {
    let room = state
        .services
        .rooms
        .accept_invitation(user, RoomId(room))
        .await?;
    Ok(AppJson(wire::room(&room)))
}

/// Decline the invitation; whoever invited is not told.
#[utoipa::path(delete, path = "/api/v1/invitations/{room}", tag = "invitations",
    security(("bearer" = [])),
    params(("room" = i64, Path, description = "the room invited into")),
    responses((status = 204, description = "declined"),
        (status = 404, description = "no such invitation", body = ErrorBody)))]
pub async fn decline(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(room): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .rooms
        .decline_invitation(user, RoomId(room))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
