//! `/api/v1/auth/*`: register, login, refresh, logout, the caller's logins
//! (sessions) and password change.

use axum::extract::State;
use axum::http::StatusCode;
use palaver_domain::accounts::Session;
use palaver_protocol::rest::{
    ChangePasswordRequest, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest,
    SessionInfo, TokenResponse, User,
};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, AuthLogin, ClientAddress, Created, UserAgent};
use super::AppState;
use crate::wire;

fn token_response(session: Session) -> AppJson<TokenResponse> {
    AppJson(TokenResponse {
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        token_type: "Bearer".into(),
        expires_in: session.expires_in,
        user: wire::user(&session.user),
    })
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = User),
        (status = 409, description = "username taken", body = ErrorBody),
        (status = 422, description = "invalid username, password or display name", body = ErrorBody),
        (status = 429, description = "too many registrations from this address (`rate_limited`, with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "too many passwords being hashed (`overloaded`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<RegisterRequest>,
) -> Result<Created<User>, ApiError> {
    let user = state
        .services
        .accounts
        .register(
            &req.username,
            req.password,
            req.display_name.as_deref(),
            from,
        )
        .await?;
    Ok(Created(wire::user(&user)))
}

/// Exchange a username and password for an access and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "unknown user or wrong password (indistinguishable)", body = ErrorBody),
        (status = 429, description = "too many attempts from this address, or failed logins of this account from it: wait `Retry-After` (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "too many passwords being hashed (`overloaded`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    UserAgent(agent): UserAgent,
    AppJson(req): AppJson<LoginRequest>,
) -> Result<AppJson<TokenResponse>, ApiError> {
    let session = state
        .services
        .accounts
        .login(&req.username, &req.password, from, agent.as_deref())
        .await?;
    Ok(token_response(session))
}

/// Spend a refresh token for a new pair. Re-using a spent token revokes its whole chain.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "invalid, expired, revoked or re-used token", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    AppJson(req): AppJson<RefreshRequest>,
) -> Result<AppJson<TokenResponse>, ApiError> {
    let session = state.services.accounts.refresh(&req.refresh_token).await?;
    Ok(token_response(session))
}

/// End the login a refresh token belongs to: its refresh and access tokens stop
/// working, and its WebSockets close with 4002.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = LogoutRequest,
    responses((status = 204, description = "ended (also for unknown tokens)")))]
pub async fn logout(
    State(state): State<AppState>,
    AppJson(req): AppJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    state.services.accounts.logout(&req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live logins, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionInfo>)))]
pub async fn sessions(
    State(state): State<AppState>,
    AuthLogin(bearer): AuthLogin,
) -> Result<AppJson<Vec<SessionInfo>>, ApiError> {
    let sessions = state.services.accounts.sessions(bearer.user).await?;
    Ok(AppJson(
        sessions
            .iter()
            .map(|s| wire::session(s, &bearer.session))
            .collect(),
    ))
}

/// End one of the caller's logins (the calling one included): its tokens stop
/// working and its WebSockets close with 4002.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the session's id")),
    responses(
        (status = 204, description = "ended"),
        (status = 404, description = "no live login of the caller has this id", body = ErrorBody),
    ))]
pub async fn end_session(
    State(state): State<AppState>,
    AuthLogin(bearer): AuthLogin,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .end_session(bearer.user, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every login of the caller, the calling one included.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "every login ended")))]
pub async fn logout_all(
    State(state): State<AppState>,
    AuthLogin(bearer): AuthLogin,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .end_all_sessions(bearer.user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password. The calling login stays signed in; every other one
/// ends (tokens revoked, WebSockets closed with 4002).
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "changed"),
        (status = 403, description = "the current password is wrong", body = ErrorBody),
        (status = 422, description = "the new password is invalid", body = ErrorBody),
        (status = 429, description = "too many attempts: wait `Retry-After` (`rate_limited`; the login back-off applies)", body = ErrorBody),
        (status = 503, description = "too many passwords being hashed (`overloaded`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    AuthLogin(bearer): AuthLogin,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .change_password(&bearer, &req.current_password, req.new_password, from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
