//! `/api/v1/rooms/*`: create, join, list, inspect, leave, read markers.

use axum::extract::State;
use axum::http::header::LINK;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use palaver_domain::rooms::MemberPage;
use palaver_domain::{RoomId, UserId};
use palaver_protocol::rest::{
    CreateRoomRequest, JoinRoomRequest, MarkReadRequest, Member, MemberQuery, ReadMarker, Room,
    RoomSummary,
};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser, ClientAddress, Created};
use super::AppState;
use crate::wire;

/// Create a room; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    request_body = CreateRoomRequest,
    responses((status = 201, body = Room), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppJson(req): AppJson<CreateRoomRequest>,
) -> Result<Created<Room>, ApiError> {
    let room = state
        .services
        .rooms
        .create(user, &req.name, req.password.as_deref())
        .await?;
    Ok(Created(wire::room(&room)))
}

/// The caller's rooms, most recently active first.
#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<RoomSummary>)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<AppJson<Vec<RoomSummary>>, ApiError> {
    let rooms = state.services.rooms.list(user).await?;
    Ok(AppJson(rooms.iter().map(wire::room_summary).collect()))
}

/// Join a room by its code (idempotent for members).
#[utoipa::path(post, path = "/api/v1/rooms/join", tag = "rooms",
    security(("bearer" = [])),
    request_body = JoinRoomRequest,
    responses(
        (status = 200, body = Room),
        (status = 403, description = "wrong room password", body = ErrorBody),
        (status = 404, description = "unknown code", body = ErrorBody),
        (status = 429, description = "too many join attempts (`rate_limited`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn join(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<JoinRoomRequest>,
) -> Result<AppJson<Room>, ApiError> {
    let room = state
        .services
        .rooms
        .join(user, &req.code, req.password.as_deref(), from)
        .await?;
    Ok(AppJson(wire::room(&room)))
}

/// One room; 404 unless the caller is a member.
#[utoipa::path(get, path = "/api/v1/rooms/{id}", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    responses((status = 200, body = Room), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<AppJson<Room>, ApiError> {
    Ok(AppJson(wire::room(
        &state.services.rooms.get(user, RoomId(id)).await?,
    )))
}

/// The room's members, a page at a time, by user id; `Link` names the next page.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/members", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), MemberQuery),
    responses((status = 200, body = Vec<Member>,
            headers(("link" = String, description = "`<…?after=ID&limit=N>; rel=\"next\"` when more members follow"))),
        (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<MemberQuery>,
) -> Result<Response, ApiError> {
    let (page, limit) = member_page(&state, user, id, &query).await?;
    let listed = AppJson(with_presence(&state, &page.members)).into_response();
    Ok(with_next_link(
        listed,
        &format!("/api/v1/rooms/{id}/members"),
        &page,
        limit,
    ))
}

async fn member_page(
    state: &AppState,
    user: UserId,
    room: i64,
    query: &MemberQuery,
) -> Result<(MemberPage, u32), ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_MEMBER_PAGE);
    let after = query.after.map(UserId);
    let page = state
        .services
        .rooms
        .members(user, RoomId(room), after, limit)
        .await?;
    Ok((page, limit))
}

/// Members listed when the caller does not say how many.
const DEFAULT_MEMBER_PAGE: u32 = 200;

/// `response` with a `Link` header naming the page after `page`, if one follows.
fn with_next_link(mut response: Response, path: &str, page: &MemberPage, limit: u32) -> Response {
    if let (true, Some(last)) = (page.has_more, page.members.last()) {
        let next = format!(
            "<{path}?after={}&limit={limit}>; rel=\"next\"",
            last.user.id.0
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(LINK, value);
        }
    }
    response
}

/// The room's members who are online now (on any node).
#[utoipa::path(get, path = "/api/v1/rooms/{id}/online", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), MemberQuery),
    responses((status = 200, body = Vec<Member>,
            headers(("link" = String, description = "`<…?after=ID&limit=N>; rel=\"next\"` when more members follow"))),
        (status = 404, body = ErrorBody)))]
pub async fn online(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<MemberQuery>,
) -> Result<Response, ApiError> {
    let (page, limit) = member_page(&state, user, id, &query).await?;
    let mut online = with_presence(&state, &page.members);
    online.retain(|m| m.online);
    let listed = AppJson(online).into_response();
    Ok(with_next_link(
        listed,
        &format!("/api/v1/rooms/{id}/online"),
        &page,
        limit,
    ))
}

fn with_presence(state: &AppState, members: &[palaver_domain::model::Member]) -> Vec<Member> {
    members
        .iter()
        .map(|m| wire::member(m, state.presence.is_online(m.user.id)))
        .collect()
}

/// Leave the room; its connections stop receiving it at once.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/leave", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    responses((status = 204, description = "left"), (status = 404, body = ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.services.rooms.leave(user, RoomId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Move the caller's read marker forward to `seq` (capped at the newest
/// message; never backwards). The room, the caller's other connections
/// included, gets a `read` event.
#[utoipa::path(put, path = "/api/v1/rooms/{id}/read", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    request_body = MarkReadRequest,
    responses((status = 200, description = "where the marker now is", body = ReadMarker),
        (status = 404, body = ErrorBody)))]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<MarkReadRequest>,
) -> Result<AppJson<ReadMarker>, ApiError> {
    let seq = state
        .services
        .rooms
        .mark_read(user, RoomId(id), req.seq)
        .await?;
    Ok(AppJson(ReadMarker {
        user_id: user.0,
        last_read_seq: seq,
    }))
}

/// Every member's read marker.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/read-markers", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id")),
    responses((status = 200, body = Vec<ReadMarker>), (status = 404, body = ErrorBody)))]
pub async fn read_markers(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<AppJson<Vec<ReadMarker>>, ApiError> {
    let markers = state.services.rooms.read_markers(user, RoomId(id)).await?;
    Ok(AppJson(
        markers
            .into_iter()
            .map(|(user, seq)| ReadMarker {
                user_id: user.0,
                last_read_seq: seq,
            })
            .collect(),
    ))
}
