//! `/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}`: a member's
//! reaction to a message, put or taken back. Both are idempotent.

use axum::extract::State;
use axum::http::StatusCode;
use palaver_domain::RoomId;
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppPath, AuthUser};
use super::AppState;

/// React to a message with one emoji (percent-encoded in the path) or a
/// short name `:name:`. Members get `reaction_added`; reacting again with
/// the same emoji changes nothing and tells no one.
#[utoipa::path(put, path = "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "room id"),
        ("seq" = u64, Path, description = "message seq"),
        ("emoji" = String, Path, description = "one emoji (one grapheme cluster of emoji characters, at most 64 bytes: skin tones, ZWJ sequences, flags and keycaps included), or `:name:` of 1 to 32 of a-z 0-9 _ + -; the pattern states the short names and the emoticons block, a part of what is accepted", pattern = "^(?::[a-z0-9_+-]{1,32}:|[😀-🙏])$"),
    ),
    responses(
        (status = 204, description = "the reaction is there (added now, or already)"),
        (status = 404, description = "no such room (or not a member), or no such message", body = ErrorBody),
        (status = 409, description = "the message was deleted, holds 20 different reactions already, or the caller has 5 on it", body = ErrorBody),
        (status = 422, description = "not one emoji nor a `:name:`", body = ErrorBody),
        (status = 429, description = "the caller's reaction budget is spent (`rate_limited`)", body = ErrorBody),
    ))]
pub async fn react(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath((id, seq, emoji)): AppPath<(i64, u64, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .messages
        .react(user, RoomId(id), seq, &emoji)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take one's reaction back. Members get `reaction_removed`; taking back a
/// reaction that is not there (or on a deleted message, whose reactions
/// went with it) changes nothing and tells no one.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "room id"),
        ("seq" = u64, Path, description = "message seq"),
        ("emoji" = String, Path, description = "as for `PUT`", pattern = "^(?::[a-z0-9_+-]{1,32}:|[😀-🙏])$"),
    ),
    responses(
        (status = 204, description = "the reaction is not there (removed now, or already)"),
        (status = 404, description = "no such room (or not a member), or no such message", body = ErrorBody),
        (status = 422, description = "not one emoji nor a `:name:`", body = ErrorBody),
        (status = 429, description = "the caller's reaction budget is spent (`rate_limited`)", body = ErrorBody),
    ))]
pub async fn unreact(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath((id, seq, emoji)): AppPath<(i64, u64, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .messages
        .unreact(user, RoomId(id), seq, &emoji)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
