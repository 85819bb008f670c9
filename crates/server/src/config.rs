//! Settings: typed sections, each default written once in its `Default`,
//! layered by figment: defaults, then the `--config` TOML file, then
//! `PALAVER_*` variables, then flags; checked in one place.

mod cli;
mod layers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use palaver_domain::accounts::CodeLimits;
use palaver_domain::keys::KeyAlgorithm;
use palaver_domain::outbox::RelayConfig;
use palaver_domain::passwords::{HashCost, HashingLimits};
use palaver_domain::throttle::RateLimits;
use palaver_domain::Limits;
use serde::{Deserialize, Serialize};

pub use crate::client_addr::ProxyNet;
pub use cli::{
    command, parse, AdminCommand, Cli, Command, DbCommand, KeysCommand, LimitSetting, ServeArgs,
};
pub use layers::{known_variables, unknown_variables};

/// Fully resolved settings. A section is a `[table]` of the file; flags and
/// variables keep their flat names (`--ws-write-timeout-ms`,
/// `PALAVER_WS_WRITE_TIMEOUT_MS`), mapped onto the sections in `layers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Holds the SQLite database and, without SMTP, the mail written to files.
    pub data_dir: PathBuf,
    pub http: Http,
    pub realtime: Realtime,
    pub messages: Messages,
    pub database: Database,
    pub tokens: Tokens,
    pub passwords: Passwords,
    pub accounts: Accounts,
    pub mail: Mail,
    /// The budgets of the limits table by name, and the login back-off.
    #[serde(with = "limits_table")]
    pub limits: RateLimits,
    pub kafka: Kafka,
    pub metrics: Metrics,
    pub log: Log,
    pub attachments: Attachments,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("palaver-data"),
            http: Http::default(),
            realtime: Realtime::default(),
            messages: Messages::default(),
            database: Database::default(),
            tokens: Tokens::default(),
            passwords: Passwords::default(),
            accounts: Accounts::default(),
            mail: Mail::default(),
            limits: RateLimits::default(),
            kafka: Kafka::default(),
            metrics: Metrics::default(),
            log: Log::default(),
            attachments: Attachments::default(),
        }
    }
}

/// The public listener: connections, requests, and whom to believe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    pub listen: SocketAddr,
    /// To send a request's headers, and the longest an idle connection stays.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// For a REST request's (or gRPC call's) body to arrive in full.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// The longest a connection's write may wait on a client that reads
    /// nothing (a download or any response read too slowly) before the
    /// connection is dropped.
    #[serde(with = "humantime_serde")]
    pub write_stall_timeout: Duration,
    /// Bytes per second a body must arrive at, after a grace.
    pub body_min_rate: u64,
    /// An HTTP/2 connection with no stream is closed after this.
    #[serde(with = "humantime_serde")]
    pub http2_idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ProxyNet>,
    /// `scheme://host[:port]`, lower case, no trailing slash (once checked).
    pub cors_origins: Vec<String>,
    /// PEM certificate chain (the server's first) and its private key: with
    /// both, the listener speaks TLS only. Read again when they change.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A plain-HTTP listener that answers every request with a redirect to
    /// the same host and path over https (with TLS only).
    pub tls_redirect_listen: Option<SocketAddr>,
    /// The port of those redirects' https URLs; `None`: the port of `listen`.
    pub tls_redirect_port: Option<u16>,
    /// `max-age` of the `Strict-Transport-Security` header every response
    /// carries when TLS is on.
    #[serde(with = "humantime_serde")]
    pub hsts_max_age: Duration,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_stall_timeout: Duration::from_secs(30),
            body_min_rate: 1024,
            http2_idle_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_address: 64,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_redirect_listen: None,
            tls_redirect_port: None,
            hsts_max_age: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

impl Http {
    /// Whether the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// The TLS settings fit together; the files themselves are read when
    /// the node starts.
    fn check_tls(&self) -> anyhow::Result<()> {
        use layers::spelled as name;
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "{} and {} go together: give both or neither",
            name("http.tls_cert"),
            name("http.tls_key")
        );
        for (path, set) in [
            (
                "http.tls_redirect_listen",
                self.tls_redirect_listen.is_some(),
            ),
            ("http.tls_redirect_port", self.tls_redirect_port.is_some()),
        ] {
            anyhow::ensure!(
                !set || self.tls(),
                "{} needs TLS: {} and {}",
                name(path),
                name("http.tls_cert"),
                name("http.tls_key")
            );
        }
        anyhow::ensure!(
            self.tls_redirect_port != Some(0),
            "{} must be a port from 1 to 65535",
            name("http.tls_redirect_port")
        );
        if let Some(redirect) = self.tls_redirect_listen {
            anyhow::ensure!(
                redirect != self.listen || redirect.port() == 0,
                "{} must differ from {}",
                name("http.tls_redirect_listen"),
                name("http.listen")
            );
        }
        Ok(())
    }
}

/// Every real-time session transport (WebSocket, gRPC streams and the rest).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Realtime {
    /// `None`: room for a maximal message body (see `Settings::max_frame_bytes`).
    pub max_frame_bytes: Option<usize>,
    /// Frames queued to one session before it is cut off as a slow consumer.
    pub queue_capacity: usize,
    /// For a new session to authenticate.
    #[serde(with = "humantime_serde")]
    pub auth_timeout: Duration,
    /// For one write (a batch of frames, or a close frame) to a session.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    pub max_sessions_per_user: usize,
    pub max_sessions_per_address: usize,
}

impl Default for Realtime {
    fn default() -> Self {
        Self {
            max_frame_bytes: None,
            queue_capacity: 1024,
            auth_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_sessions_per_user: 32,
            max_sessions_per_address: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Messages {
    pub max_body_bytes: usize,
}

impl Default for Messages {
    fn default() -> Self {
        Self {
            max_body_bytes: Limits::default().max_body_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `None`: the SQLite file in `data_dir`.
    pub url: Option<Secret>,
    pub pool_size: u32,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

impl Default for Database {
    fn default() -> Self {
        let store = palaver_store::StoreOptions::default();
        Self {
            url: None,
            pool_size: store.pool_size,
            acquire_timeout: store.acquire_timeout,
            statement_timeout: store.statement_timeout,
        }
    }
}

/// Access and refresh tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tokens {
    /// `Some`: HS256 with this shared secret instead of the store's key pairs.
    pub jwt_secret: Option<Secret>,
    /// Of the first key pair the store creates.
    #[serde(with = "key_algorithm")]
    pub algorithm: KeyAlgorithm,
    pub issuer: String,
    pub audience: String,
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            algorithm: KeyAlgorithm::EdDsa,
            issuer: "palaver".into(),
            audience: "palaver".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(Limits::default().refresh_token_ttl_secs as u64),
        }
    }
}

/// argon2id: its cost, and how many hashes run or wait at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Passwords {
    pub memory_kib: u32,
    pub iterations: u32,
    pub concurrency: usize,
    pub queue: usize,
}

impl Default for Passwords {
    fn default() -> Self {
        let (cost, hashing) = (HashCost::default(), HashingLimits::default());
        Self {
            memory_kib: cost.memory_kib,
            iterations: cost.iterations,
            concurrency: hashing.concurrent,
            queue: hashing.waiting,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    /// How long a mailed code (verification, password reset) works.
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// How long a deleted account's username cannot be registered again.
    #[serde(with = "humantime_serde")]
    pub username_hold: Duration,
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(CodeLimits::default().code_ttl_secs as u64),
            username_hold: Duration::from_secs(Limits::default().username_hold_secs as u64),
        }
    }
}

/// Files uploaded into rooms.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Attachments {
    /// Where their bytes are kept: `None` for `<data_dir>/attachments/`.
    pub dir: Option<PathBuf>,
    /// The largest file.
    pub max_bytes: u64,
    /// The most bytes one user's files may hold together.
    pub quota_bytes: u64,
    /// For an upload's body to arrive in full (it replaces
    /// `http.body_timeout` for uploads; `http.body_min_rate` still holds).
    #[serde(with = "humantime_serde")]
    pub upload_timeout: Duration,
    /// How long an upload waits for a message to carry it before it is collected.
    #[serde(with = "humantime_serde")]
    pub claim_within: Duration,
    /// How often orphaned files are looked for and removed.
    #[serde(with = "humantime_serde")]
    pub collect_every: Duration,
    /// `s3://bucket/prefix`: their bytes in S3-compatible object storage
    /// (credentials and endpoint from the `AWS_*` variables) rather than
    /// in `dir`; what cluster mode needs, since `dir` is per node.
    pub url: Option<String>,
}

impl Default for Attachments {
    fn default() -> Self {
        let limits = palaver_domain::attachments::AttachmentLimits::default();
        Self {
            dir: None,
            max_bytes: limits.max_bytes,
            quota_bytes: limits.quota_bytes,
            upload_timeout: Duration::from_secs(300),
            claim_within: limits.claim_within,
            collect_every: Duration::from_secs(300),
            url: None,
        }
    }
}

impl Attachments {
    pub fn limits(&self) -> palaver_domain::attachments::AttachmentLimits {
        palaver_domain::attachments::AttachmentLimits {
            max_bytes: self.max_bytes,
            quota_bytes: self.quota_bytes,
            claim_within: self.claim_within,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    /// `None`: mail is written to files under `<data_dir>/mail/`.
    pub smtp_url: Option<Secret>,
    pub from: String,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Palaver <palaver@localhost>".into(),
        }
    }
}

/// Cluster mode: the brokers carrying events between nodes, and how nodes
/// reach them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Kafka {
    /// `Some`: cluster mode.
    pub brokers: Option<String>,
    pub topic: String,
    pub partitions: i32,
    #[serde(with = "humantime_serde")]
    pub fetch_wait: Duration,
    #[serde(with = "humantime_serde")]
    pub outbox_relay_after: Duration,
    #[serde(with = "humantime_serde")]
    pub presence_heartbeat: Duration,
    pub security_protocol: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<Secret>,
    pub ssl_ca_location: Option<PathBuf>,
    pub ssl_certificate_location: Option<PathBuf>,
    pub ssl_key_location: Option<PathBuf>,
    pub ssl_key_password: Option<Secret>,
}

impl Default for Kafka {
    fn default() -> Self {
        Self {
            brokers: None,
            topic: "palaver.events".into(),
            partitions: 8,
            fetch_wait: Duration::from_millis(5),
            outbox_relay_after: RelayConfig::default().relay_after,
            presence_heartbeat: Duration::from_secs(5),
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            ssl_key_password: None,
        }
    }
}

impl Kafka {
    /// TLS and SASL of the Kafka clients, if the settings fit together
    /// (checked at start).
    pub fn security(&self) -> anyhow::Result<palaver_bus::KafkaSecurity> {
        let text = |secret: &Option<Secret>| secret.as_ref().map(Secret::text);
        palaver_bus::KafkaSecurity::new(palaver_bus::KafkaSecurityOptions {
            protocol: self.security_protocol.clone(),
            sasl_mechanism: self.sasl_mechanism.clone(),
            sasl_username: self.sasl_username.clone(),
            sasl_password: text(&self.sasl_password),
            ssl_ca_location: self.ssl_ca_location.clone(),
            ssl_certificate_location: self.ssl_certificate_location.clone(),
            ssl_key_location: self.ssl_key_location.clone(),
            ssl_key_password: text(&self.ssl_key_password),
        })
        .map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Where `GET /metrics` is served, apart from the public listener;
    /// `None` (`off`): nowhere.
    #[serde(with = "address_or_off")]
    pub listen: Option<SocketAddr>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret that never shows up in logs, `Debug` output or serialized settings.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Secret(text.into_bytes()))
    }
}

/// Settings are serialized to be shown (the defaults in `--help`), never to
/// be read back, so a secret is written redacted.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl Settings {
    /// Defaults for everything but `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// The settings of `args` over the process's environment, over the
    /// `--config` file (or `PALAVER_CONFIG`'s), over the defaults.
    pub fn load(args: ServeArgs) -> anyhow::Result<Self> {
        Self::load_from(&args, std::env::vars())
    }

    /// As `load`, with the environment given.
    pub fn load_from(
        args: &ServeArgs,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let environment = layers::Environment::new(vars);
        let mut figment = Figment::new();
        if let Some(path) = args.config.clone().or_else(|| environment.config_file()) {
            figment = figment.merge(layers::File::read(&path)?);
        }
        // Lossy: a variable's value is text, read as a number where one is due.
        let settings: Settings = figment
            .merge(environment)
            .merge(layers::Flags(args))
            .extract_lossy()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        settings.checked()
    }

    /// Every check of the settings, and the one normalization (origins).
    fn checked(mut self) -> anyhow::Result<Self> {
        use layers::spelled as name;
        let at_least_one = [
            ("database.pool_size", self.database.pool_size as u64),
            (
                "messages.max_body_bytes",
                self.messages.max_body_bytes as u64,
            ),
            (
                "realtime.queue_capacity",
                self.realtime.queue_capacity as u64,
            ),
            (
                "realtime.max_sessions_per_user",
                self.realtime.max_sessions_per_user as u64,
            ),
            (
                "realtime.max_sessions_per_address",
                self.realtime.max_sessions_per_address as u64,
            ),
            ("http.max_connections", self.http.max_connections as u64),
            (
                "http.max_connections_per_address",
                self.http.max_connections_per_address as u64,
            ),
            ("http.body_min_rate", self.http.body_min_rate),
            ("passwords.concurrency", self.passwords.concurrency as u64),
            ("attachments.max_bytes", self.attachments.max_bytes),
            ("kafka.partitions", self.kafka.partitions.max(0) as u64),
        ];
        for (path, value) in at_least_one {
            anyhow::ensure!(value >= 1, "{} must be at least 1", name(path));
        }
        let at_least = [
            ("http.header_timeout", self.http.header_timeout, 1),
            ("http.body_timeout", self.http.body_timeout, 1),
            ("http.write_stall_timeout", self.http.write_stall_timeout, 1),
            ("http.http2_idle_timeout", self.http.http2_idle_timeout, 1),
            ("realtime.write_timeout", self.realtime.write_timeout, 1),
            ("tokens.access_ttl", self.tokens.access_ttl, 1000),
            ("tokens.refresh_ttl", self.tokens.refresh_ttl, 1000),
            ("accounts.code_ttl", self.accounts.code_ttl, 30_000),
            (
                "attachments.upload_timeout",
                self.attachments.upload_timeout,
                1000,
            ),
            (
                "attachments.claim_within",
                self.attachments.claim_within,
                1000,
            ),
            (
                "attachments.collect_every",
                self.attachments.collect_every,
                100,
            ),
            (
                "kafka.presence_heartbeat",
                self.kafka.presence_heartbeat,
                100,
            ),
        ];
        for (path, value, least_ms) in at_least {
            let least = Duration::from_millis(least_ms);
            anyhow::ensure!(
                value >= least,
                "{} must be at least {}",
                name(path),
                humantime::format_duration(least)
            );
        }
        anyhow::ensure!(
            self.accounts.username_hold <= Duration::from_secs(36_500 * 24 * 3600),
            "{} must be at most 36500 days",
            name("accounts.username_hold")
        );
        if let Some(url) = &self.attachments.url {
            anyhow::ensure!(
                self.attachments.dir.is_none(),
                "set one of {} and {}, not both",
                name("attachments.dir"),
                name("attachments.url")
            );
            palaver_store::S3Location::parse(url)
                .map_err(|e| anyhow::anyhow!("{}: {e}", name("attachments.url")))?;
        }
        if let Some(url) = self.database_url() {
            palaver_store::Engine::of(&url)
                .map_err(|e| anyhow::anyhow!("{}: {e}", name("database.url")))?;
        }
        if let Some(secret) = &self.tokens.jwt_secret {
            anyhow::ensure!(
                secret.expose().len() >= 32,
                "{} must be at least 32 bytes",
                name("tokens.jwt_secret")
            );
        }
        for (path, value) in [
            ("tokens.issuer", &self.tokens.issuer),
            ("tokens.audience", &self.tokens.audience),
            ("kafka.topic", &self.kafka.topic),
        ] {
            anyhow::ensure!(!value.is_empty(), "{} is empty", name(path));
        }
        if let Some(brokers) = &self.kafka.brokers {
            anyhow::ensure!(
                !brokers.trim().is_empty(),
                "{} is empty",
                name("kafka.brokers")
            );
        }
        // A frame must be able to carry a maximal body, JSON-escaped (up to 6
        // bytes per byte for control characters is pathological; 4× covers text).
        anyhow::ensure!(
            self.max_frame_bytes() > self.messages.max_body_bytes,
            "{} must exceed {}",
            name("realtime.max_frame_bytes"),
            name("messages.max_body_bytes")
        );
        if let Some(metrics) = self.metrics.listen {
            anyhow::ensure!(
                metrics != self.http.listen || metrics.port() == 0,
                "{} must differ from {}: metrics are not served publicly",
                name("metrics.listen"),
                name("http.listen")
            );
        }
        self.http.check_tls()?;
        self.mail
            .from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| anyhow::anyhow!("{} {:?}: {e}", name("mail.from"), self.mail.from))?;
        self.kafka.security()?;
        self.http.cors_origins = self
            .http
            .cors_origins
            .iter()
            .map(|origin| web_origin(origin))
            .collect::<anyhow::Result<_>>()?;
        Ok(self)
    }

    /// Largest frame (or gRPC message) a session takes: as set, or room for
    /// a maximal message body.
    pub fn max_frame_bytes(&self) -> usize {
        self.realtime
            .max_frame_bytes
            .unwrap_or(self.messages.max_body_bytes * 4 + 1024)
    }

    /// Where attachments' bytes are kept (in embedded mode).
    pub fn attachments_dir(&self) -> PathBuf {
        (self.attachments.dir.clone()).unwrap_or_else(|| self.data_dir.join("attachments"))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("palaver.db")
    }

    /// The configured database URL (it may hold a password: never log it unredacted).
    pub fn database_url(&self) -> Option<String> {
        self.database.url.as_ref().map(Secret::text)
    }

    pub fn store_options(&self) -> palaver_store::StoreOptions {
        palaver_store::StoreOptions {
            pool_size: self.database.pool_size,
            acquire_timeout: self.database.acquire_timeout,
            statement_timeout: self.database.statement_timeout,
            outbox_origin: None,
        }
    }
}

/// `origin` as browsers send it in `Origin`: `scheme://host[:port]`, lower
/// case, nothing after the authority.
fn web_origin(origin: &str) -> anyhow::Result<String> {
    let bad = || {
        anyhow::anyhow!(
            "{}: {origin:?} is not an origin like https://app.example.com",
            layers::spelled("http.cors_origins")
        )
    };
    let uri: axum::http::Uri = origin.trim().parse().map_err(|_| bad())?;
    let scheme = uri.scheme_str().ok_or_else(bad)?;
    let authority = uri.authority().ok_or_else(bad)?;
    let rest = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    anyhow::ensure!(
        matches!(scheme, "http" | "https") && matches!(rest, "" | "/"),
        bad()
    );
    Ok(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// An address, or `off` for none.
mod address_or_off {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        address: &Option<SocketAddr>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match address {
            Some(address) => serializer.collect_str(address),
            None => serializer.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<super::cli::MetricsListen>()
            .map(|listen| listen.0)
            .map_err(serde::de::Error::custom)
    }
}

/// A signing algorithm by its JOSE name.
mod key_algorithm {
    use palaver_domain::keys::KeyAlgorithm;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        algorithm: &KeyAlgorithm,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(algorithm.jose_name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<KeyAlgorithm, D::Error> {
        let text = String::deserialize(deserializer)?;
        KeyAlgorithm::parse(&text)
            .map_err(|_| serde::de::Error::custom(format!("{text:?}: expected EdDSA or RS256")))
    }
}

/// `[limits]`: `NAME = "RATE"` for any limit of the table (`all` for every
/// one, applied before the others), and the login back-off's two settings.
mod limits_table {
    use std::fmt;
    use std::time::Duration;

    use palaver_domain::throttle::{Limit, RateLimit, RateLimits};
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};
    use strum::IntoEnumIterator;

    use super::cli::LimitSetting;

    pub const BACKOFF_FREE: &str = "login_backoff_free";
    pub const BACKOFF_MAX: &str = "login_backoff_max";

    pub fn serialize<S: Serializer>(limits: &RateLimits, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (limit, rate) in limits.iter() {
            map.serialize_entry(limit.name(), &rate.to_string())?;
        }
        map.serialize_entry(BACKOFF_FREE, &limits.login_backoff.free)?;
        map.serialize_entry(
            BACKOFF_MAX,
            &humantime::format_duration(limits.login_backoff.max).to_string(),
        )?;
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RateLimits, D::Error> {
        deserializer.deserialize_map(Table)
    }

    struct Table;

    impl<'de> Visitor<'de> for Table {
        type Value = RateLimits;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a table of limit names and rates")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RateLimits, A::Error> {
            let mut limits = RateLimits::default();
            let mut rates = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                match name.as_str() {
                    BACKOFF_FREE => limits.login_backoff.free = map.next_value()?,
                    BACKOFF_MAX => {
                        limits.login_backoff.max = map
                            .next_value::<humantime_serde::Serde<Duration>>()?
                            .into_inner()
                    }
                    _ => {
                        let rate: RateLimit = map.next_value()?;
                        rates.push(
                            LimitSetting::parse(&name, rate).map_err(serde::de::Error::custom)?,
                        );
                    }
                }
            }
            // `all` first, whatever the order of the keys: a named limit
            // beside it is an exception to it.
            rates.sort_by_key(|setting| setting.limit.is_some());
            for setting in rates {
                match setting.limit {
                    Some(limit) => limits.set(limit, setting.rate),
                    None => Limit::iter().for_each(|limit| limits.set(limit, setting.rate)),
                }
            }
            Ok(limits)
        }
    }
}

#[cfg(test)]
mod tests;
