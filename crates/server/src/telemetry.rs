//! Structured logs via `tracing`; levels from `RUST_LOG` (default `info`);
//! the Prometheus recorder and its own listener (`--metrics-listen`), apart
//! from the public one: counters are an oracle (mail sent, logins refused).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init`: tests may initialize more than once.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

static PROMETHEUS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

/// How often histogram samples are folded into their summaries.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process-wide metrics recorder (once; later calls are no-ops).
pub fn init_metrics() {
    PROMETHEUS.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed, e.g. by an embedding program.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        // The recorder keeps every histogram sample until upkeep folds it
        // into its summary: without this, a node nobody scrapes grows by
        // every sample it records. A thread, not a task: it outlives any
        // one runtime (tests start many).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(err) = spawned {
            tracing::warn!(%err, "no metrics upkeep thread; histograms grow until /metrics is read");
        }
        handle
    });
}

/// The current metrics in the Prometheus text format.
pub fn render_metrics() -> String {
    init_metrics();
    let handle = PROMETHEUS.get().expect("initialized above");
    // Summaries age out old samples here rather than in a background task.
    handle.run_upkeep();
    handle.render()
}

/// `GET /metrics` (and nothing else) on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use axum::http::header;
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render_metrics(),
            )
        }),
    );
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(err) = served {
        tracing::warn!(%err, "the metrics listener failed");
    }
}
