//! Builds the whole node from `Settings` and runs it until shut down.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use palaver_bus::{KafkaBus, KafkaConfig, LocalBus};
use palaver_domain::accounts::CodeLimits;
use palaver_domain::blobs::Blobs;
use palaver_domain::bus::Bus;
use palaver_domain::mail::Mailer;
use palaver_domain::messages::WriterConfig;
use palaver_domain::outbox::{spawn_relay, RelayConfig};
use palaver_domain::passwords::{HashCost, HashingLimits};
use palaver_domain::tokens::{AccessTokens, TokenSettings};
use palaver_domain::{Limits, Services};
use palaver_store::{ManagedStore, SqliteStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::delivery::LocalDelivery;
use crate::http;
use crate::hub::Hub;
use crate::mail::{FileMailer, SmtpMailer};
use crate::node::{AppState, NodeBus};
use crate::presence::Presence;

/// How long shutdown waits for WebSocket sessions to close, then for the
/// message writer to flush.
const SESSION_GRACE: Duration = Duration::from_secs(10);
const FLUSH_GRACE: Duration = Duration::from_secs(10);

/// How long shutdown waits for Kafka to acknowledge what was published; what
/// it does not acknowledge stays in the outbox for the other nodes' relays.
const BUS_FLUSH_GRACE: Duration = Duration::from_secs(5);

/// How often the store is asked whether it answers (`palaver_store_up`).
const STORE_PROBE_EVERY: Duration = Duration::from_secs(5);

pub struct Application {
    listener: TcpListener,
    /// With `--tls-cert`: the listener speaks TLS.
    tls: Option<Arc<crate::tls::Tls>>,
    /// `--tls-redirect-listen`: plain HTTP, redirected to https.
    redirect_listener: Option<TcpListener>,
    /// `--metrics-listen`, unless `off`.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    store: Arc<dyn ManagedStore>,
    writer_task: JoinHandle<()>,
    /// Ends once the last session and the HTTP state are gone.
    presence_task: JoinHandle<()>,
    /// The outbox relay, in cluster mode.
    relay_task: Option<JoinHandle<()>>,
}

/// Opens the configured store (creating the data directory for the default
/// SQLite file) and brings its schema up to date.
pub async fn open_store(
    settings: &Settings,
    options: &palaver_store::StoreOptions,
) -> anyhow::Result<Arc<dyn ManagedStore>> {
    let options = options.clone();
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

/// How often a node reads the signing keys again, to learn of a rotation
/// (and sooner: when a token names a key it does not know).
const KEY_RELOAD_EVERY: Duration = Duration::from_secs(60);

/// The access-token keys: the shared secret when one is set, else the key
/// pairs in the store (the first one created now if there is none).
pub async fn access_tokens(
    settings: &Settings,
    store: Arc<dyn palaver_domain::store::Store>,
) -> anyhow::Result<AccessTokens> {
    let token_settings = TokenSettings {
        issuer: settings.tokens.issuer.clone(),
        audience: settings.tokens.audience.clone(),
        ttl_secs: settings.tokens.access_ttl.as_secs(),
    };
    match &settings.tokens.jwt_secret {
        Some(secret) => Ok(AccessTokens::shared_secret(secret.expose(), token_settings)),
        None => AccessTokens::from_store(store, settings.tokens.algorithm, token_settings)
            .await
            .map_err(|e| anyhow::anyhow!("loading the signing keys: {e}")),
    }
}

/// SMTP when configured; else files under `<data-dir>/mail/`, said at start.
/// Where attachments' bytes go: the bucket of `attachments.url` (which
/// must answer now, or the node does not start), else the directory.
async fn attachment_blobs(settings: &Settings) -> anyhow::Result<Arc<dyn Blobs>> {
    if let Some(url) = &settings.attachments.url {
        let location = palaver_store::S3Location::parse(url)
            .map_err(|e| anyhow::anyhow!("--attachments-url: {e}"))?;
        let blobs = palaver_store::S3Blobs::open(&location)
            .await
            .with_context(|| format!("opening the attachments bucket {location}"))?;
        tracing::info!(location = %location, "attachments in S3-compatible storage");
        return Ok(Arc::new(blobs));
    }
    let dir = settings.attachments_dir();
    if settings.kafka.brokers.is_some() {
        tracing::warn!(
            dir = %dir.display(),
            "cluster mode without --attachments-url: each node keeps its own attachments, \
             which the other nodes cannot serve"
        );
    }
    let blobs = palaver_store::LocalBlobs::open(&dir)
        .await
        .with_context(|| format!("opening the attachments directory {}", dir.display()))?;
    Ok(Arc::new(blobs))
}

fn mailer(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    let from = settings
        .mail
        .from
        .parse()
        .map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
    match &settings.mail.smtp_url {
        Some(url) => {
            let url = String::from_utf8_lossy(url.expose()).into_owned();
            Ok(Arc::new(SmtpMailer::new(&url, from)?))
        }
        None => {
            let dir = settings.data_dir.join("mail");
            tracing::warn!(dir = %dir.display(), "no --smtp-url: account mail is written to files, not sent");
            Ok(Arc::new(FileMailer::new(dir, from)?))
        }
    }
}

/// Sets `palaver_store_up` every `STORE_PROBE_EVERY` to whether the store
/// answers the round trip `/readyz` makes, until `shutdown`: the metric says
/// so even when no request is there to fail.
fn spawn_store_probe(store: Arc<dyn palaver_domain::store::Store>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STORE_PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let probe = async {
                tick.tick().await;
                store.ping().await.is_ok()
            };
            let up = tokio::select! {
                _ = shutdown.cancelled() => return,
                up = probe => up,
            };
            metrics::gauge!("palaver_store_up").set(if up { 1.0 } else { 0.0 });
        }
    });
}

/// Re-reads the keys every `KEY_RELOAD_EVERY` while the services live (a
/// weak handle, so shutdown is not held up by this task).
fn spawn_key_reload(services: Weak<Services>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_RELOAD_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(services) = services.upgrade() else {
                return;
            };
            if let Err(err) = services.accounts.access_tokens().reload().await {
                tracing::warn!(error = %err, "reading the signing keys failed; keeping the known ones");
            }
        }
    });
}

impl Application {
    /// Opens storage, starts the services and binds the listener (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::telemetry::init_metrics();
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        // Names this process in the outbox and on the bus; a restarted node is
        // a new origin, so it hears what its previous life left in the outbox.
        let node_id = format!("{:016x}", rand::random::<u64>());
        let mut store_options = settings.store_options();
        if settings.kafka.brokers.is_some() {
            store_options.outbox_origin = Some(node_id.clone());
        }
        // Before anything starts: unreadable files stop the node at once.
        let tls = match (&settings.http.tls_cert, &settings.http.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(crate::tls::Tls::load(
                cert,
                key,
                settings.http.hsts_max_age,
            )?)),
            _ => None,
        };
        let store = open_store(&settings, &store_options).await?;

        let hub = Arc::new(Hub::new(settings.realtime.queue_capacity));
        // The presence task starts once the services exist; what reaches it
        // before then waits in its channel.
        let (presence, presence_inbox) = Presence::channel();
        let delivery = Arc::new(LocalDelivery::new(hub.clone(), presence.remote()));
        let (bus, node_bus, relay_task): (Arc<dyn Bus>, NodeBus, _) = match &settings.kafka.brokers
        {
            None => (Arc::new(LocalBus::new(delivery)), NodeBus::Local, None),
            Some(brokers) => {
                // Shared through the store: every node of the cluster, and no
                // one else, can sign what the others will believe.
                let cluster_key =
                    palaver_domain::bus_auth::ClusterKey::from_store(&*store.clone().as_store())
                        .await
                        .map_err(|e| anyhow::anyhow!("reading the cluster secret: {e}"))?;
                let kafka = Arc::new(
                    KafkaBus::start(
                        KafkaConfig {
                            brokers: brokers.clone(),
                            topic: settings.kafka.topic.clone(),
                            partitions: settings.kafka.partitions,
                            origin: node_id.clone(),
                            fetch_wait: settings.kafka.fetch_wait,
                            delivery_timeout: Duration::from_secs(10),
                            security: settings.kafka.security()?,
                            cluster_key,
                        },
                        delivery,
                        store.clone().as_store(),
                    )
                    .map_err(|e| anyhow::anyhow!("configuring Kafka: {e}"))?,
                );
                let relay = spawn_relay(
                    store.clone().as_store(),
                    kafka.clone(),
                    RelayConfig {
                        relay_after: settings.kafka.outbox_relay_after,
                        ..RelayConfig::default()
                    },
                );
                tracing::info!(node = %node_id, topic = %settings.kafka.topic, "cluster mode: events go through Kafka");
                (kafka.clone(), NodeBus::Kafka(kafka), Some(relay))
            }
        };
        let access = access_tokens(&settings, store.clone().as_store()).await?;
        let (services, writer_task) = Services::start(
            store.clone().as_store(),
            bus,
            access,
            mailer(&settings)?,
            HashCost {
                memory_kib: settings.passwords.memory_kib,
                iterations: settings.passwords.iterations,
                parallelism: 1,
            },
            Limits {
                max_body_bytes: settings.messages.max_body_bytes,
                refresh_token_ttl_secs: settings.tokens.refresh_ttl.as_secs() as i64,
                username_hold_secs: settings.accounts.username_hold.as_secs() as i64,
                hashing: HashingLimits {
                    concurrent: settings.passwords.concurrency,
                    waiting: settings.passwords.queue,
                },
                rates: settings.limits.clone(),
                codes: CodeLimits {
                    code_ttl_secs: settings.accounts.code_ttl.as_secs() as i64,
                    ..CodeLimits::default()
                },
                attachments: settings.attachments.limits(),
            },
            WriterConfig::default(),
        )
        .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))?;

        let blobs = attachment_blobs(&settings).await?;
        let attachments = Arc::new(services.attachments(blobs, settings.attachments.limits()));
        attachments.spawn_collecting(settings.attachments.collect_every);
        let services = Arc::new(services);
        spawn_key_reload(Arc::downgrade(&services));
        let presence_task = presence_inbox.spawn(
            node_id.clone(),
            settings.kafka.brokers.is_some(),
            settings.kafka.presence_heartbeat,
            hub.clone(),
            services.clone(),
        );

        let listener = TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("binding {}", settings.http.listen))?;
        let redirect_listener = match settings.http.tls_redirect_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the redirect listener {addr}"))?,
            ),
            None => None,
        };
        let metrics_listener = match settings.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?,
            ),
            None => None,
        };
        let state = AppState {
            services,
            attachments,
            hub,
            presence,
            bus: node_bus,
            session_quota: Arc::new(crate::session::SessionQuota::new(
                settings.realtime.max_sessions_per_user,
                settings.realtime.max_sessions_per_address,
            )),
            settings: Arc::new(settings),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        };
        Ok(Self {
            listener,
            tls,
            redirect_listener,
            metrics_listener,
            state,
            store,
            writer_task,
            presence_task,
            relay_task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where plain HTTP is redirected to https (`--tls-redirect-listen`).
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// Where metrics are served, unless `--metrics-listen off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
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
            tls,
            redirect_listener,
            metrics_listener,
            state,
            store,
            writer_task,
            presence_task,
            relay_task,
        } = self;
        let bus = state.bus.clone();
        let shutdown = state.shutdown.clone();
        let sessions = state.sessions.clone();
        if let Some(metrics) = metrics_listener {
            tracing::info!(addr = %metrics.local_addr()?, "metrics listening");
            tokio::spawn(crate::telemetry::serve_metrics(metrics, shutdown.clone()));
        }
        spawn_store_probe(store.clone().as_store(), shutdown.clone());
        let addr = listener.local_addr()?;
        tracing::info!(%addr, tls = tls.is_some(), "palaver listening");

        // Sessions learn of shutdown from the hub, one flag each: watching the
        // shared token would put its lock on every connection's wakeup.
        let hub = state.hub.clone();
        let stop_sessions = shutdown.clone();
        tokio::spawn(async move {
            stop_sessions.cancelled().await;
            hub.stop_all();
        });
        let limits = crate::connections::ConnectionLimits {
            max_total: state.settings.http.max_connections,
            max_per_address: state.settings.http.max_connections_per_address,
            header_timeout: state.settings.http.header_timeout,
            idle_timeout: state.settings.http.http2_idle_timeout,
            write_stall_timeout: state.settings.http.write_stall_timeout,
            trusted_proxies: state.settings.http.trusted_proxies.clone(),
        };
        let realtime = crate::ws::routes()
            .merge(crate::socketio::routes(&state))
            .merge(crate::stomp::routes())
            .merge(crate::signalr::routes());
        let https_port = state.settings.http.tls_redirect_port.unwrap_or(addr.port());
        let rest = http::router(state.clone(), realtime);
        let router = crate::grpc::beside(rest, state).await;
        if let Some(tls) = &tls {
            tls.spawn_reload(shutdown.clone());
        }
        // Its own connection limits, as many again as the public listener's:
        // it answers each request at once, so its connections are short.
        let redirects = redirect_listener.map(|redirect| {
            if let Ok(addr) = redirect.local_addr() {
                tracing::info!(%addr, "redirecting plain HTTP to https");
            }
            tokio::spawn(crate::connections::serve(
                redirect,
                crate::tls::redirect_router(https_port),
                limits.clone(),
                None,
                shutdown.clone(),
            ))
        });
        crate::connections::serve(listener, router, limits, tls, shutdown.clone()).await;
        if let Some(redirects) = redirects {
            let _ = redirects.await;
        }

        sessions.close();
        if tokio::time::timeout(SESSION_GRACE, sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket sessions did not close in time");
        }
        // The presence task holds the services; it ends with the last session.
        if tokio::time::timeout(FLUSH_GRACE, presence_task)
            .await
            .is_err()
        {
            tracing::error!("presence task did not end in time");
        }
        // Every `Services` clone is gone with the router, the sessions and the
        // presence task, so the writer commits what is queued and ends.
        if tokio::time::timeout(FLUSH_GRACE, writer_task)
            .await
            .is_err()
        {
            tracing::error!("message writer did not flush in time");
        }
        if let Some(relay) = relay_task {
            relay.abort();
        }
        if let NodeBus::Kafka(kafka) = bus {
            kafka.flush(BUS_FLUSH_GRACE).await;
        }
        store.close().await;
        tracing::info!("palaver stopped");
        Ok(())
    }
}
