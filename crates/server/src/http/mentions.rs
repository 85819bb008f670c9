//! `/api/v1/users/me/mentions`: the messages that mention the caller.

use axum::extract::State;
use palaver_protocol::rest::mentions::{MentionPage, MentionQuery};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppQuery, AuthUser};
use super::AppState;
use crate::wire;

/// The messages that mention the caller, newest first: only live messages
/// of rooms the caller is a member of now. Mentions are made when a
/// message is posted (an edit neither adds nor removes any); deleting the
/// message removes them.
#[utoipa::path(get, path = "/api/v1/users/me/mentions", tag = "users",
    security(("bearer" = [])),
    params(MentionQuery),
    responses(
        (status = 200, body = MentionPage),
        (status = 401, body = ErrorBody),
        (status = 422, description = "a `cursor` that is not a page's `next`, or a `limit` out of 1–100", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppQuery(query): AppQuery<MentionQuery>,
) -> Result<AppJson<MentionPage>, ApiError> {
    let page = state
        .services
        .messages
        .mentions(user, query.cursor.as_deref(), query.limit)
        .await?;
    Ok(AppJson(wire::mention_page(&page)))
}
