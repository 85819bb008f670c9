//! Builds the whole node from `Settings` and runs it until shut down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use palaver_bus::LocalBus;
use palaver_domain::messages::WriterConfig;
use palaver_domain::passwords::HashCost;
use palaver_domain::{Limits, Services};
use palaver_store::{ManagedStore, SqliteStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::hub::Hub;
use crate::secrets::load_or_create_jwt_secret;

/// How long shutdown waits for WebSocket sessions to close, then for the
/// message writer to flush.
const SESSION_GRACE: Duration = Duration::from_secs(10);
const FLUSH_GRACE: Duration = Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    state: AppState,
    store: Arc<dyn ManagedStore>,
    writer_task: JoinHandle<()>,
}

/// Opens the configured store (creating the data directory for the default
/// SQLite file) and brings its schema up to date.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn ManagedStore>> {
    let options = settings.store_options();
    match settings.database_url() {
        Some(url) => palaver_store::open(&url, &options)
            .await
            .with_context(|| format!("opening {}", palaver_store::redact(&url))),
        None => {
            let path = settings.database_path();
            let store = SqliteStore::open(&path, &options)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            Ok(Arc::new(store))
        }
    }
}

impl Application {
    /// Opens storage, starts the services and binds the listener (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let jwt_secret =
            load_or_create_jwt_secret(settings.jwt_secret.as_ref(), &settings.data_dir)?;
        let store = open_store(&settings).await?;

        let hub = Arc::new(Hub::new(settings.ws_queue_capacity));
        let bus = Arc::new(LocalBus::new(hub.clone()));
        let (services, writer_task) = Services::start(
            store.clone().as_store(),
            bus,
            jwt_secret.expose(),
            HashCost {
                memory_kib: settings.argon2_memory_kib,
                iterations: settings.argon2_iterations,
                parallelism: 1,
            },
            Limits {
                max_body_bytes: settings.max_body_bytes,
                access_token_ttl_secs: settings.access_token_ttl_secs,
                refresh_token_ttl_secs: settings.refresh_token_ttl_secs as i64,
            },
            WriterConfig::default(),
        )
        .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))?;

        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let state = AppState {
            services: Arc::new(services),
            hub,
            settings: Arc::new(settings),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        };
        Ok(Self {
            listener,
            state,
            store,
            writer_task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Cancel it to shut down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then: stops accepting,
    /// closes WebSockets with 1001 (after their in-flight sends are acked),
    /// flushes the message writer and closes the store.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            store,
            writer_task,
        } = self;
        let shutdown = state.shutdown.clone();
        let sessions = state.sessions.clone();
        tracing::info!(addr = %listener.local_addr()?, "palaver listening");

        let router = http::router(state);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .context("serving HTTP")?;

        sessions.close();
        if tokio::time::timeout(SESSION_GRACE, sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket sessions did not close in time");
        }
        // Every `Services` clone is gone with the router and the sessions, so the
        // writer commits what is queued and ends.
        if tokio::time::timeout(FLUSH_GRACE, writer_task)
            .await
            .is_err()
        {
            tracing::error!("message writer did not flush in time");
        }
        store.close().await;
        tracing::info!("palaver stopped");
        Ok(())
    }
}
