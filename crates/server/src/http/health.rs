//! Liveness and readiness probes (metrics have a listener of their own:
//! `telemetry::serve_metrics`).

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
        bus: None,
    })
}

/// The node can serve traffic: its store answers. A bus that cannot reach the
/// other nodes makes it `degraded`, not unready: sends still commit, and taking
/// every node out of the load balancer would turn a Kafka outage into a chat
/// outage.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, AppJson<Health>) {
    let bus = state.bus.state();
    match state.services.check_store().await {
        Ok(()) => {
            let status = if matches!(bus, "local" | "ok") {
                "ok"
            } else {
                "degraded"
            };
            (
                StatusCode::OK,
                AppJson(Health {
                    status: status.into(),
                    detail: (status != "ok").then(|| format!("bus: {bus}")),
                    bus: Some(bus.into()),
                }),
            )
        }
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            AppJson(Health {
                status: "unavailable".into(),
                detail: Some(format!("store: {err}")),
                bus: Some(bus.into()),
            }),
        ),
    }
}
