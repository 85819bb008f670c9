//! `/api/v1/users/*`.

use axum::extract::State;
use palaver_protocol::rest::User;
use palaver_protocol::ErrorBody;

use super::error::ApiError;
use super::extract::{AppJson, AuthUser};
use super::AppState;

/// The caller's own profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<AppJson<User>, ApiError> {
    Ok(AppJson(state.services.accounts.user(user).await?.to_wire()))
}
