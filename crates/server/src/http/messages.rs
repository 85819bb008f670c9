//! `/api/v1/rooms/{id}/messages`: history and posting without a WebSocket.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palaver_domain::messages::HistoryRange;
use palaver_domain::{Error, RoomId};
use palaver_protocol::rest::{HistoryQuery, Message, MessagePage, PostMessageRequest};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser};
use super::AppState;

/// A page of history in ascending seq order: `before` pages back from the
/// newest, `after` catches up forward.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/messages", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), HistoryQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<AppJson<MessagePage>, ApiError> {
    let range = match (query.before, query.after) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("after", "give either `before` or `after`, not both").into())
        }
        (before, None) => HistoryRange::Before(before),
        (None, Some(after)) => HistoryRange::After(after),
    };
    let page = state
        .services
        .messages
        .history(user, RoomId(id), range, query.limit)
        .await?;
    Ok(AppJson(MessagePage {
        messages: page.messages.iter().map(|m| m.to_wire()).collect(),
        has_more: page.has_more,
    }))
}

/// Post a message; it reaches WebSocket members like any other.
/// Re-posting a `client_id` returns the original with 200.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = PostMessageRequest,
    responses(
        (status = 201, description = "stored", body = Message),
        (status = 200, description = "already stored under this client_id", body = Message),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "store unavailable; nothing was stored", body = ErrorBody),
    ))]
pub async fn post(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<PostMessageRequest>,
) -> Result<Response, ApiError> {
    let posted = state
        .services
        .messages
        .post(user, RoomId(id), req.body, req.client_id)
        .await?;
    let status = if posted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(posted.message.to_wire())).into_response())
}
