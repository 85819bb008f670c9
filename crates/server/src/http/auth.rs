//! `/api/v1/auth/*`: register, login, refresh, logout, the caller's logins
//! (sessions) and password change.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use palaver_domain::accounts::Session;
use palaver_domain::{tokens, Error};
use palaver_protocol::rest::{
    Accepted, Account, ChangePasswordRequest, CookieSession, LoginRequest, LoginResponse,
    LogoutRequest, PasswordResetCompleteRequest, PasswordResetConfirmRequest, PasswordResetRequest,
    RefreshRequest, RegisterRequest, ResetTokenResponse, SessionInfo, TokenResponse, User,
    VerifyEmailRequest,
};
use palaver_protocol::ErrorBody;

use super::cookies;
use super::error::ApiError;
use super::extract::{
    AppJson, AppPath, AuthLogin, AuthUser, ClientAddress, Created, JsonOrEmpty, UserAgent,
};
use super::AppState;
use crate::wire;

/// The answer of a login or refresh: the tokens in the body, or (with the
/// login's CSRF token) in sign-in cookies.
fn login_response(session: Session, csrf_token: Option<String>, state: &AppState) -> Response {
    let Some(csrf_token) = csrf_token else {
        return AppJson(LoginResponse::Tokens(TokenResponse {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            token_type: "Bearer".into(),
            expires_in: session.expires_in,
            user: wire::user(&session.user),
        }))
        .into_response();
    };
    let mut response = AppJson(LoginResponse::Cookie(CookieSession {
        csrf_token: csrf_token.clone(),
        expires_in: session.expires_in,
        user: wire::user(&session.user),
    }))
    .into_response();
    cookies::set(
        response.headers_mut(),
        &cookies::CookieLogin {
            access_token: &session.access_token,
            access_ttl_secs: session.expires_in,
            refresh_token: &session.refresh_token,
            refresh_ttl_secs: state.settings.tokens.refresh_ttl.as_secs(),
            csrf_token: &csrf_token,
        },
    );
    response
}

/// The refresh token a request presents: in its body, or else (when it asks
/// for the cookie) the refresh cookie, which needs the CSRF check.
fn presented_refresh_token(
    in_body: Option<String>,
    use_cookie: bool,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    match in_body {
        Some(token) => Ok(token),
        None if use_cookie => {
            let token = cookies::read(headers, cookies::REFRESH).ok_or(Error::Unauthorized(
                "no refresh token and no refresh-token cookie",
            ))?;
            cookies::check_csrf(&Method::POST, headers)?;
            Ok(token)
        }
        None => Err(Error::Unauthorized(
            "no refresh token: none in the body, and no \"cookie\": true",
        )
        .into()),
    }
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = User),
        (status = 409, description = "username taken, or the e-mail address belongs to another account", body = ErrorBody),
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
            req.email.as_deref(),
            from,
        )
        .await?;
    Ok(Created(wire::user(&user)))
}

/// Exchange a username and password for an access and a refresh token, or
/// (`"cookie": true`) sign in with cookies.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "the tokens (`TokenResponse`), or with `cookie` a `CookieSession` and the `__Host-palaver-access`, `__Host-palaver-refresh` and `__Host-palaver-csrf` cookies", body = LoginResponse),
        (status = 401, description = "unknown user or wrong password (indistinguishable)", body = ErrorBody),
        (status = 429, description = "too many attempts from this address, or failed logins of this account from it: wait `Retry-After` (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "too many passwords being hashed (`overloaded`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    UserAgent(agent): UserAgent,
    AppJson(req): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = state
        .services
        .accounts
        .login(&req.username, &req.password, from, agent.as_deref())
        .await?;
    let csrf_token = req.cookie.then(|| tokens::random_token(16));
    Ok(login_response(session, csrf_token, &state))
}

/// Spend a refresh token for a new pair (or, with `cookie` or no body at
/// all, the refresh cookie for new cookies). Re-using a spent token revokes
/// its whole chain.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = Option<RefreshRequest>,
    responses(
        (status = 200, description = "as login answers", body = LoginResponse),
        (status = 401, description = "invalid, expired, revoked or re-used token, or none presented", body = ErrorBody),
        (status = 429, description = "too many refreshes and logouts from this address (`rate_limited`, with `Retry-After`)", body = ErrorBody),
        (status = 403, description = "`csrf_failed`: the cookie's CSRF token was not echoed in `X-CSRF-Token`", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    JsonOrEmpty(req): JsonOrEmpty<RefreshRequest>,
) -> Result<Response, ApiError> {
    // No body at all: the refresh cookie's (a form-less browser call).
    let req = req.unwrap_or(RefreshRequest {
        refresh_token: None,
        cookie: true,
    });
    let presented = presented_refresh_token(req.refresh_token, req.cookie, &headers)?;
    let session = state.services.accounts.refresh(&presented, from).await?;
    // The login keeps its CSRF token: a request in flight while another
    // refreshes must not find the cookie changed under its header.
    let csrf_token = req.cookie.then(|| {
        cookies::read(&headers, cookies::CSRF).unwrap_or_else(|| tokens::random_token(16))
    });
    Ok(login_response(session, csrf_token, &state))
}

/// End the login a refresh token belongs to (without one in the body: the
/// refresh cookie's): its refresh and access tokens stop working, and its
/// WebSockets close with 4002. The sign-in cookies are cleared.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = Option<LogoutRequest>,
    responses(
        (status = 204, description = "ended (also for unknown tokens)"),
        (status = 401, description = "no token in the body and no refresh cookie", body = ErrorBody),
        (status = 403, description = "`csrf_failed`: signing out by cookie without echoing its CSRF token", body = ErrorBody),
        (status = 429, description = "too many refreshes and logouts from this address (`rate_limited`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    JsonOrEmpty(req): JsonOrEmpty<LogoutRequest>,
) -> Result<Response, ApiError> {
    let req = req.unwrap_or(LogoutRequest {
        refresh_token: None,
    });
    let presented = presented_refresh_token(req.refresh_token, true, &headers)?;
    state.services.accounts.logout(&presented, from).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    cookies::clear(response.headers_mut());
    Ok(response)
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

/// Verify the caller's e-mail address with the code mailed to it. Five wrong
/// codes end it; `PATCH /users/me` with the address mails a new one.
#[utoipa::path(post, path = "/api/v1/auth/email/verify", tag = "auth",
    security(("bearer" = [])),
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, body = Account),
        (status = 403, description = "the code is wrong or has expired", body = ErrorBody),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppJson(req): AppJson<VerifyEmailRequest>,
) -> Result<AppJson<Account>, ApiError> {
    let account = state
        .services
        .accounts
        .verify_email(user, &req.code)
        .await?;
    Ok(AppJson(wire::account(&account)))
}

const RESET_ACCEPTED: &str =
    "if that account has a verified e-mail address, a code is on its way to it";

fn accepted() -> (StatusCode, AppJson<Accepted>) {
    (
        StatusCode::ACCEPTED,
        AppJson(Accepted {
            message: RESET_ACCEPTED.into(),
        }),
    )
}

/// Start a password reset: a 6-digit code is mailed to the account's verified
/// address. The same answer, as fast, whether or not such an account exists.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, body = Accepted),
        (status = 429, description = "too many reset steps from this address (`rate_limited`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<PasswordResetRequest>,
) -> Result<(StatusCode, AppJson<Accepted>), ApiError> {
    state
        .services
        .accounts
        .request_password_reset(&req.login, from)?;
    Ok(accepted())
}

/// Mail a new code for a reset already asked for (at most one mail a minute).
#[utoipa::path(post, path = "/api/v1/auth/password-reset/resend", tag = "auth",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, body = Accepted),
        (status = 429, description = "too many reset steps from this address (`rate_limited`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn resend_password_reset(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<PasswordResetRequest>,
) -> Result<(StatusCode, AppJson<Accepted>), ApiError> {
    state
        .services
        .accounts
        .resend_password_reset(&req.login, from)?;
    Ok(accepted())
}

/// Exchange the mailed code for a single-use reset token. Five wrong codes end
/// the code.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth",
    request_body = PasswordResetConfirmRequest,
    responses(
        (status = 200, body = ResetTokenResponse),
        (status = 403, description = "no such reset, or the code is wrong or has expired", body = ErrorBody),
        (status = 429, description = "too many reset steps from this address (`rate_limited`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<PasswordResetConfirmRequest>,
) -> Result<AppJson<ResetTokenResponse>, ApiError> {
    let accounts = &state.services.accounts;
    let reset_token = accounts
        .confirm_password_reset(&req.login, &req.code, from)
        .await?;
    Ok(AppJson(ResetTokenResponse {
        reset_token,
        expires_in: accounts.reset_token_ttl_secs(),
    }))
}

/// Set a new password with a reset token. Every login of the account ends
/// (WebSockets close with 4002), and its address is told.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/complete", tag = "auth",
    request_body = PasswordResetCompleteRequest,
    responses(
        (status = 204, description = "the password is changed"),
        (status = 403, description = "the reset token is invalid, used or expired", body = ErrorBody),
        (status = 422, description = "the new password is invalid", body = ErrorBody),
        (status = 429, description = "too many reset steps from this address (`rate_limited`, with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "too many passwords being hashed (`overloaded`, with `Retry-After`)", body = ErrorBody),
    ))]
pub async fn complete_password_reset(
    State(state): State<AppState>,
    ClientAddress(from): ClientAddress,
    AppJson(req): AppJson<PasswordResetCompleteRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .complete_password_reset(&req.reset_token, req.new_password, from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
