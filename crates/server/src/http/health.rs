//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use palaver_protocol::rest::Health;

use super::extract::AppJson;
use super::AppState;

/// The process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> AppJson<Health> {
    AppJson(Health {
        status: "ok".into(),
        detail: None,
    })
}

/// The node can serve traffic: its store answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, AppJson<Health>) {
    match state.services.check_store().await {
        Ok(()) => (
            StatusCode::OK,
            AppJson(Health {
                status: "ok".into(),
                detail: None,
            }),
        ),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            AppJson(Health {
                status: "unavailable".into(),
                detail: Some(format!("store: {err}")),
            }),
        ),
    }
}
