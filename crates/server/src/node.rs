//! The node's shared state: what every transport's handlers and sessions
//! may use. Transports depend on it; it depends on no transport.

use std::sync::Arc;

use palaver_bus::KafkaBus;
use palaver_domain::Services;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::hub::Hub;

/// Everything a request handler or WebSocket session may use.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    /// Uploads and downloads (REST alone carries files' bytes).
    pub attachments: Arc<palaver_domain::attachments::Attachments>,
    pub hub: Arc<Hub>,
    pub presence: crate::presence::Presence,
    pub bus: NodeBus,
    pub settings: Arc<Settings>,
    /// Cancelled when the server begins shutting down.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket sessions so shutdown can wait for them to close.
    pub sessions: TaskTracker,
    /// Real-time sessions per user and per address, every transport together.
    pub session_quota: Arc<crate::session::SessionQuota>,
}

impl AppState {
    pub fn session_deps(&self) -> crate::session::SessionDeps {
        crate::session::SessionDeps {
            services: self.services.clone(),
            hub: self.hub.clone(),
            presence: self.presence.clone(),
            write_timeout: self.settings.realtime.write_timeout,
            frame_rate: self
                .settings
                .limits
                .get(palaver_domain::throttle::Limit::FramesPerConnection),
            quota: self.session_quota.clone(),
        }
    }
}

/// Which bus this node runs, for readiness and shutdown.
#[derive(Clone)]
pub enum NodeBus {
    Local,
    Kafka(Arc<KafkaBus>),
}

impl NodeBus {
    /// `local`, or the Kafka bus's state: `starting`, `ok` or `degraded`.
    pub fn state(&self) -> &'static str {
        match self {
            NodeBus::Local => "local",
            NodeBus::Kafka(kafka) => kafka.state().as_str(),
        }
    }
}
