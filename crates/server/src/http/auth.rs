//! `/api/v1/auth/*`: register, login, refresh, logout.

use axum::extract::State;
use axum::http::StatusCode;
use palaver_domain::accounts::Session;
use palaver_protocol::rest::{
    LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest, TokenResponse, User,
};
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, ClientAddress, Created};
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
    AppJson(req): AppJson<LoginRequest>,
) -> Result<AppJson<TokenResponse>, ApiError> {
    let session = state
        .services
        .accounts
        .login(&req.username, &req.password, from)
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

/// Revoke a refresh token and every token rotated from the same login.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = LogoutRequest,
    responses((status = 204, description = "revoked (also for unknown tokens)")))]
pub async fn logout(
    State(state): State<AppState>,
    AppJson(req): AppJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    state.services.accounts.logout(&req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
