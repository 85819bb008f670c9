//! `/api/v1/rooms/{id}/messages`: history and posting without a WebSocket.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palaver_domain::error::Error;
use palaver_domain::messages::{HistoryRange, SearchAsked};
use palaver_domain::time::Timestamp;
use palaver_domain::RoomId;
use palaver_protocol::rest::admin::{ReportReceipt, ReportRequest};
use palaver_protocol::rest::search::{SearchPage, SearchQuery, SearchResult, TextPart};
use palaver_protocol::rest::{
    EditMessageRequest, HistoryQuery, Message, MessagePage, PostMessageRequest,
};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser, ClientAddress, Created};
use super::AppState;
use crate::wire;

/// A page of history in ascending seq order: `before` pages back from the
/// newest, `after` catches up forward, both together read what lies between.
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
        (before, None) => HistoryRange::Before(before),
        (None, Some(after)) => HistoryRange::After(after),
        (Some(before), Some(after)) => HistoryRange::Between { after, before },
    };
    let page = state
        .services
        .messages
        .history(user, RoomId(id), range, query.limit)
        .await?;
    Ok(AppJson(MessagePage {
        messages: wire::history(&page),
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
        (status = 429, description = "the sender's send limit is spent (`rate_limited`, with `Retry-After`); nothing was stored", body = ErrorBody),
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
        .post(
            user,
            RoomId(id),
            req.body,
            req.client_id,
            req.reply_to,
            req.attachments,
        )
        .await?;
    let status = if posted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(wire::message(&posted.message))).into_response())
}

/// Replace the body of one's own message. Members get `message_edited`.
#[utoipa::path(patch, path = "/api/v1/rooms/{id}/messages/{seq}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), ("seq" = u64, Path, description = "message seq")),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "the edited message", body = Message),
        (status = 403, description = "not the sender", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the message was deleted", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn edit(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath((id, seq)): AppPath<(i64, u64)>,
    AppJson(req): AppJson<EditMessageRequest>,
) -> Result<AppJson<Message>, ApiError> {
    let edited = state
        .services
        .messages
        .edit(user, RoomId(id), seq, req.body)
        .await?;
    Ok(AppJson(wire::message(&edited)))
}

/// Delete a message (its sender, or the room's owner or an admin). The seq
/// stays in history with `deleted: true` and no body; members get `message_deleted`.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{seq}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), ("seq" = u64, Path, description = "message seq")),
    responses(
        (status = 204, description = "deleted (or already deleted)"),
        (status = 403, description = "neither the sender nor an admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath((id, seq)): AppPath<(i64, u64)>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .messages
        .delete(user, RoomId(id), seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Report a message to the server's admins (members only; anyone else is
/// answered as for a room that does not exist). Reporting it again while
/// one's report is open returns that report with 200.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages/{seq}/report", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), ("seq" = u64, Path, description = "message seq")),
    request_body = ReportRequest,
    responses(
        (status = 201, description = "reported", body = ReportReceipt),
        (status = 200, description = "already reported by the caller, still open", body = ReportReceipt),
        (status = 404, description = "no such room (or not a member), or no such message (or deleted)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn report(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddress(from): ClientAddress,
    AppPath((id, seq)): AppPath<(i64, u64)>,
    AppJson(req): AppJson<ReportRequest>,
) -> Result<Response, ApiError> {
    let filed = state
        .services
        .admin
        .report_message(user, RoomId(id), seq, &req.reason, from)
        .await?;
    let receipt = ReportReceipt {
        room: filed.report.room_id.0,
        seq: filed.report.seq,
        reason: filed.report.reason.clone(),
        created_at: filed.report.created_at.to_rfc3339(),
    };
    Ok(if filed.already_open {
        AppJson(receipt).into_response()
    } else {
        Created(receipt).into_response()
    })
}

/// Search the messages of the caller's rooms: every word of `q`, best match
/// first. A `room` the caller is not in is answered as one that does not
/// exist; deleted messages are never found.
#[utoipa::path(get, path = "/api/v1/search", tag = "messages",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, body = SearchPage),
        (status = 404, description = "no such room (or not a member)", body = ErrorBody),
        (status = 422, description = "a query that is empty, too long, has too many words or a leading or inner `*`", body = ErrorBody),
        (status = 429, description = "the caller's search budget is spent (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "too many searches at once on the node (`overloaded`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddress(from): ClientAddress,
    AppQuery(query): AppQuery<SearchQuery>,
) -> Result<AppJson<SearchPage>, ApiError> {
    let before = (query.before.as_deref())
        .map(|raw| {
            Timestamp::parse_rfc3339(raw)
                .ok_or_else(|| Error::invalid("before", "must be an RFC 3339 time"))
        })
        .transpose()?;
    let offset = (query.cursor.as_deref())
        .map(|raw| {
            raw.parse::<u32>()
                .map_err(|_| Error::invalid("cursor", "must be the next of a previous page"))
        })
        .transpose()?;
    let page = state
        .services
        .messages
        .search(
            user,
            SearchAsked {
                query: &query.q,
                room: query.room.map(RoomId),
                before,
                offset,
                limit: query.limit,
            },
            from,
        )
        .await?;
    Ok(AppJson(SearchPage {
        results: (page.hits.iter())
            .map(|hit| SearchResult {
                message: wire::message(&hit.message),
                parts: (hit.parts.iter())
                    .map(|part| TextPart {
                        text: part.text.clone(),
                        matched: part.matched,
                    })
                    .collect(),
            })
            .collect(),
        next: page.next.map(|next| next.to_string()),
    }))
}
