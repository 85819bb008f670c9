//! Settings: defaults, then an optional TOML file, then `PALAVER_*` variables,
//! then flags (clap resolves the last two; flags win).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use palaver_domain::keys::KeyAlgorithm;
use palaver_domain::passwords::HashingLimits;
use palaver_domain::throttle::{Limit, LoginBackoff, RateLimit, RateLimits};
use serde::Deserialize;
use strum::IntoEnumIterator;

pub use crate::client_addr::ProxyNet;

/// One `--limit NAME=RATE`: a limit of the table (or `all` of them) and its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSetting {
    /// `None`: every limit.
    limit: Option<Limit>,
    rate: RateLimit,
}

impl LimitSetting {
    fn parse(name: &str, rate: RateLimit) -> Result<Self, String> {
        let limit = match name.trim() {
            "all" => None,
            name => Some(name.parse::<Limit>().map_err(|_| {
                let known: Vec<&str> = Limit::iter().map(Limit::name).collect();
                format!(
                    "{name:?} is no limit; the limits are all, {}",
                    known.join(", ")
                )
            })?),
        };
        Ok(Self { limit, rate })
    }

    fn apply(&self, rates: &mut RateLimits) {
        match self.limit {
            Some(limit) => rates.set(limit, self.rate),
            None => Limit::iter().for_each(|limit| rates.set(limit, self.rate)),
        }
    }
}

impl FromStr for LimitSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, rate) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected NAME=RATE"))?;
        Self::parse(name, rate.parse()?)
    }
}

/// The `PALAVER_LIMIT_<NAME>` variables among `vars`, as settings (before
/// the flags, which win).
fn limits_from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<Vec<LimitSetting>> {
    vars.filter_map(|(key, value)| {
        let name = key
            .strip_prefix(LIMIT_VARIABLE_PREFIX)?
            .to_ascii_lowercase();
        Some(
            value
                .parse()
                .and_then(|rate| LimitSetting::parse(&name, rate))
                .map_err(|e| anyhow::anyhow!("{key}: {e}")),
        )
    })
    .collect()
}

const LIMIT_VARIABLE_PREFIX: &str = "PALAVER_LIMIT_";

/// The `PALAVER_*` variables among `vars` that no option reads: most likely
/// a misspelling, which would otherwise leave a default silently in force.
pub fn unknown_variables(vars: impl Iterator<Item = String>) -> Vec<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let mut known: std::collections::BTreeSet<String> = command
        .get_arguments()
        .chain(
            command
                .get_subcommands()
                .flat_map(|sub| sub.get_arguments()),
        )
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    // Read by palaver-cli and the test scripts, not by the server.
    known.extend(["PALAVER_SERVER".to_owned()]);
    vars.filter(|key| key.starts_with("PALAVER_"))
        .filter(|key| !known.contains(key))
        .filter(|key| {
            key.strip_prefix(LIMIT_VARIABLE_PREFIX)
                .is_none_or(|name| name.to_ascii_lowercase().parse::<Limit>().is_err())
        })
        .filter(|key| !key.starts_with("PALAVER_TEST_"))
        .collect()
}

#[derive(Debug, Parser)]
#[command(
    name = "palaver",
    version,
    about = "Palaver: a self-hostable real-time chat server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for serving (the default when no command is given).
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (what `palaver` does without a command).
    Serve(ServeArgs),
    /// Bring the database schema up to date, then exit.
    Migrate(ServeArgs),
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// The keys that sign access tokens (kept in the database).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show every key: its kid, algorithm, and when it signs and retires.
    List(ServeArgs),
    /// Add a new signing key. It is published at once and signs from
    /// `--publish-ahead-secs` later, so verifiers that cache the key set see it
    /// first; the current key stops signing then and stays verifiable until
    /// its last token has expired. Keys retired longer ago are deleted.
    Rotate {
        /// `EdDSA` (Ed25519) or `RS256` [default: EdDSA].
        #[arg(long, default_value = "EdDSA")]
        algorithm: String,
        /// Seconds between publishing the key and signing with it: at least
        /// the JWKS cache time (300 s) plus how often nodes re-read keys (60 s).
        #[arg(long, default_value_t = 600)]
        publish_ahead_secs: u64,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy a whole installation (users, rooms, members, messages, tokens) into a
    /// new, empty database, then verify every table's row count.
    Copy {
        /// Source database URL, e.g. sqlite://palaver-data/palaver.db
        #[arg(long)]
        from: String,
        /// Target database URL, e.g. postgres://palaver@db/palaver (must be empty)
        #[arg(long)]
        to: String,
    },
}

/// Every option may also be set in the `--config` file under the same name in
/// snake_case (e.g. `max_body_bytes = 8192`); unknown keys there are errors.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with settings; flags and environment variables override it.
    #[arg(long, env = "PALAVER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PALAVER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and the generated JWT secret [default: ./palaver-data].
    #[arg(long, env = "PALAVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where messages live: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`
    /// [default: sqlite://<data-dir>/palaver.db].
    #[arg(long, env = "PALAVER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Database connections per node (SQLite: readers beside one writer) [default: 10].
    #[arg(long, env = "PALAVER_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,
    /// Milliseconds a request waits for a database connection before failing with
    /// 503 `store_unavailable` [default: 3000].
    #[arg(long, env = "PALAVER_DB_ACQUIRE_TIMEOUT_MS")]
    pub db_acquire_timeout_ms: Option<u64>,
    /// Longest a database statement may run, in milliseconds (PostgreSQL) [default: 5000].
    #[arg(long, env = "PALAVER_DB_STATEMENT_TIMEOUT_MS")]
    pub db_statement_timeout_ms: Option<u64>,
    /// Sign access tokens with this shared HS256 secret (at least 32 bytes)
    /// instead of the store's key pairs; no public key is then published.
    #[arg(long, env = "PALAVER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Algorithm of the signing key created when the store has none: `EdDSA`
    /// (Ed25519) or `RS256` [default: EdDSA]. Later keys: `palaver keys rotate`.
    #[arg(long, env = "PALAVER_JWT_ALGORITHM")]
    pub jwt_algorithm: Option<String>,
    /// The `iss` of every access token, checked on every token [default: palaver].
    #[arg(long, env = "PALAVER_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` of every access token, checked on every token [default: palaver].
    #[arg(long, env = "PALAVER_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Access token lifetime in seconds [default: 900].
    #[arg(long, env = "PALAVER_ACCESS_TOKEN_TTL_SECS")]
    pub access_token_ttl_secs: Option<u64>,
    /// Refresh token lifetime in seconds [default: 2592000 (30 days)].
    #[arg(long, env = "PALAVER_REFRESH_TOKEN_TTL_SECS")]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Largest message body in bytes [default: 4096].
    #[arg(long, env = "PALAVER_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest WebSocket frame in bytes; bigger frames close the connection with 1009
    /// [default: 4 × max-body-bytes + 1024].
    #[arg(long, env = "PALAVER_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Frames queued for one connection before it is cut off as a slow consumer [default: 1024].
    #[arg(long, env = "PALAVER_WS_QUEUE_CAPACITY")]
    pub ws_queue_capacity: Option<usize>,
    /// Milliseconds a new WebSocket has to authenticate [default: 10000].
    #[arg(long, env = "PALAVER_WS_AUTH_TIMEOUT_MS")]
    pub ws_auth_timeout_ms: Option<u64>,
    /// Milliseconds one write to a WebSocket (a batch of frames, or a close
    /// frame) may take; a client that reads too little for it to finish is
    /// dropped [default: 10000].
    #[arg(long, env = "PALAVER_WS_WRITE_TIMEOUT_MS")]
    pub ws_write_timeout_ms: Option<u64>,
    /// Milliseconds a client has to send a request's headers (also the longest
    /// an idle HTTP connection stays open) [default: 10000].
    #[arg(long, env = "PALAVER_HTTP_HEADER_TIMEOUT_MS")]
    pub http_header_timeout_ms: Option<u64>,
    /// Open connections (HTTP and WebSocket) the node accepts; more are answered
    /// 503 `too_many_connections` and closed [default: 10000].
    #[arg(long, env = "PALAVER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections from one address (an IPv6 /64); more are answered 429
    /// `too_many_connections`. Trusted proxies are exempt [default: 64].
    #[arg(long, env = "PALAVER_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Seconds an HTTP/2 connection (gRPC included) may stay open with no
    /// stream before it is closed with GOAWAY [default: 30].
    #[arg(long, env = "PALAVER_HTTP2_IDLE_TIMEOUT_SECS")]
    pub http2_idle_timeout_secs: Option<u64>,
    /// Milliseconds a REST request's body may take to arrive in full; past
    /// it the request is answered 408 `request_timeout` and the connection
    /// closed [default: 10000].
    #[arg(long, env = "PALAVER_HTTP_BODY_TIMEOUT_MS")]
    pub http_body_timeout_ms: Option<u64>,
    /// Bytes per second a REST request's body must arrive at, after a
    /// 2-second grace; slower is answered as a timeout [default: 1024].
    #[arg(long, env = "PALAVER_HTTP_BODY_MIN_RATE")]
    pub http_body_min_rate: Option<u64>,
    /// Real-time sessions (WebSocket, gRPC streams and every other real-time
    /// transport, counted together) one user may have open on a node; more
    /// are refused (close 4500, gRPC `RESOURCE_EXHAUSTED`) [default: 32].
    #[arg(long, env = "PALAVER_MAX_SESSIONS_PER_USER")]
    pub max_sessions_per_user: Option<usize>,
    /// Real-time sessions from one client address (an IPv6 /64), all users
    /// and transports together [default: 64].
    #[arg(long, env = "PALAVER_MAX_SESSIONS_PER_ADDRESS")]
    pub max_sessions_per_address: Option<usize>,
    /// Where Prometheus metrics are served (`GET /metrics`), apart from the
    /// public listener: an address, or `off` [default: 127.0.0.1:9090].
    #[arg(long, env = "PALAVER_METRICS_LISTEN")]
    pub metrics_listen: Option<MetricsListen>,
    /// Proxies whose `X-Forwarded-For` is believed, as addresses or CIDR networks
    /// (`10.0.0.0/8,192.0.2.1`). A request's address is then the hop just before
    /// the first trusted proxy [default: none: the socket's address].
    #[arg(long, env = "PALAVER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<ProxyNet>>,
    /// Web origins (`https://app.example.com`) whose pages may call the REST
    /// API with credentials (CORS) and open WebSockets signed in by cookie.
    /// The server's own origin never needs listing [default: none].
    #[arg(long, env = "PALAVER_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// A budget of the limits table, as `NAME=RATE` (repeatable; `all=off`
    /// turns every one off). A rate is `COUNT/UNIT [burst N]` with unit `s`,
    /// `min` or `h`, or `off`. Also `PALAVER_LIMIT_<NAME>=RATE`, and `NAME =
    /// "RATE"` under `[limits]` in the file. docs/security.md lists each limit
    /// and its default.
    #[arg(long = "limit", value_name = "NAME=RATE")]
    #[serde(skip)]
    pub limit: Vec<LimitSetting>,
    /// The file's `[limits]` table.
    #[arg(skip)]
    #[serde(default)]
    pub limits: BTreeMap<String, RateLimit>,
    /// Failed logins of one account from one address before each next attempt
    /// must wait (1 s, doubling per failure) [default: 5].
    #[arg(long, env = "PALAVER_LOGIN_BACKOFF_FREE")]
    pub login_backoff_free: Option<u32>,
    /// The longest wait after failed logins, in seconds [default: 300].
    #[arg(long, env = "PALAVER_LOGIN_BACKOFF_MAX_SECS")]
    pub login_backoff_max_secs: Option<u64>,
    /// SMTP server for account mail: `smtp://host:25`, `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`. Without one, mails are
    /// written as files under `<data-dir>/mail/`.
    #[arg(long, env = "PALAVER_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of account mail [default: Palaver <palaver@localhost>].
    #[arg(long, env = "PALAVER_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Seconds a mailed code (e-mail verification, password reset) works [default: 300].
    #[arg(long, env = "PALAVER_CODE_TTL_SECS")]
    pub code_ttl_secs: Option<u64>,
    /// Days a deleted account's username cannot be registered again [default: 30].
    #[arg(long, env = "PALAVER_USERNAME_HOLD_DAYS")]
    pub username_hold_days: Option<u64>,
    /// argon2id memory cost in KiB [default: 19456].
    #[arg(long, env = "PALAVER_ARGON2_MEMORY_KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// argon2id passes [default: 2].
    #[arg(long, env = "PALAVER_ARGON2_ITERATIONS")]
    pub argon2_iterations: Option<u32>,
    /// Password hashes (logins, registrations, room passwords) running at once;
    /// each holds argon2-memory-kib of memory [default: the number of cores].
    #[arg(long, env = "PALAVER_ARGON2_CONCURRENCY")]
    pub argon2_concurrency: Option<usize>,
    /// Password hashes waiting for a turn (each at most 2 s); past that, requests
    /// needing one are answered 503 `overloaded` with `Retry-After` [default: 64].
    #[arg(long, env = "PALAVER_ARGON2_QUEUE")]
    pub argon2_queue: Option<usize>,
    /// Log format: `text` or `json` [default: text]. Levels come from `RUST_LOG`.
    #[arg(long, env = "PALAVER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Cluster mode: Kafka brokers (`host:port,…`) carrying events between nodes.
    /// Unset: a single node with an in-process bus.
    #[arg(long, env = "PALAVER_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// The Kafka topic of Palaver's events [default: palaver.events].
    #[arg(long, env = "PALAVER_KAFKA_TOPIC")]
    pub kafka_topic: Option<String>,
    /// Partitions for the topic if a node has to create it [default: 8].
    #[arg(long, env = "PALAVER_KAFKA_PARTITIONS")]
    pub kafka_partitions: Option<i32>,
    /// Milliseconds the broker may hold an empty fetch open: the floor of
    /// cross-node latency on a quiet topic [default: 5].
    #[arg(long, env = "PALAVER_KAFKA_FETCH_WAIT_MS")]
    pub kafka_fetch_wait_ms: Option<u64>,
    /// Milliseconds after which an event still in the outbox (its node died, or
    /// Kafka was down) is re-sent by any node's relay [default: 5000].
    #[arg(long, env = "PALAVER_OUTBOX_RELAY_AFTER_MS")]
    pub outbox_relay_after_ms: Option<u64>,
    /// Cluster mode: milliseconds between a node's presence heartbeats; a node
    /// silent for three of them is presumed dead and its users offline [default: 5000].
    #[arg(long, env = "PALAVER_PRESENCE_HEARTBEAT_MS")]
    pub presence_heartbeat_ms: Option<u64>,
    /// Cluster mode: how nodes reach the brokers: `plaintext`, `ssl`,
    /// `sasl_plaintext` or `sasl_ssl` [default: plaintext].
    #[arg(long, env = "PALAVER_KAFKA_SECURITY_PROTOCOL")]
    pub kafka_security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a `sasl_*` protocol).
    #[arg(long, env = "PALAVER_KAFKA_SASL_MECHANISM")]
    pub kafka_sasl_mechanism: Option<String>,
    /// The nodes' SASL user (their Kafka principal).
    #[arg(long, env = "PALAVER_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    #[arg(long, env = "PALAVER_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// PEM file of the CAs that vouch for the brokers [default: the system's].
    #[arg(long, env = "PALAVER_KAFKA_SSL_CA_LOCATION")]
    pub kafka_ssl_ca_location: Option<PathBuf>,
    /// PEM certificate of this node, for brokers that require one (with the key).
    #[arg(long, env = "PALAVER_KAFKA_SSL_CERTIFICATE_LOCATION")]
    pub kafka_ssl_certificate_location: Option<PathBuf>,
    #[arg(long, env = "PALAVER_KAFKA_SSL_KEY_LOCATION")]
    pub kafka_ssl_key_location: Option<PathBuf>,
    #[arg(long, env = "PALAVER_KAFKA_SSL_KEY_PASSWORD", hide_env_values = true)]
    pub kafka_ssl_key_password: Option<String>,
}

/// Where metrics are served: an address, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

impl MetricsListen {
    pub const DEFAULT: MetricsListen = MetricsListen(Some(SocketAddr::V4(
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9090),
    )));
}

impl std::str::FromStr for MetricsListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(MetricsListen(None));
        }
        text.trim()
            .parse()
            .map(|addr| MetricsListen(Some(addr)))
            .map_err(|_| format!("{text:?} is neither an address like 127.0.0.1:9090 nor `off`"))
    }
}

impl<'de> Deserialize<'de> for MetricsListen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `origin` as browsers send it in `Origin`: `scheme://host[:port]`, lower
/// case, nothing after the authority.
fn web_origin(origin: &str) -> anyhow::Result<String> {
    let bad = || {
        anyhow::anyhow!("cors_origins: {origin:?} is not an origin like https://app.example.com")
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

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Fully resolved, validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: the SQLite file in `data_dir`.
    pub database_url: Option<Secret>,
    pub db_pool_size: u32,
    pub db_acquire_timeout_ms: u64,
    pub db_statement_timeout_ms: u64,
    pub jwt_secret: Option<Secret>,
    pub jwt_algorithm: KeyAlgorithm,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub max_body_bytes: usize,
    pub max_frame_bytes: usize,
    pub ws_queue_capacity: usize,
    pub ws_auth_timeout_ms: u64,
    pub ws_write_timeout_ms: u64,
    pub http_header_timeout_ms: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub http2_idle_timeout_secs: u64,
    pub http_body_timeout_ms: u64,
    pub http_body_min_rate: u64,
    pub max_sessions_per_user: usize,
    pub max_sessions_per_address: usize,
    /// `None`: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    pub trusted_proxies: Vec<ProxyNet>,
    /// `scheme://host[:port]`, lower case, no trailing slash.
    pub cors_origins: Vec<String>,
    pub rates: RateLimits,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub code_ttl_secs: u64,
    pub username_hold_days: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_concurrency: usize,
    pub argon2_queue: usize,
    pub log_format: LogFormat,
    /// `Some`: cluster mode.
    pub kafka_brokers: Option<String>,
    pub kafka_topic: String,
    pub kafka_partitions: i32,
    pub kafka_fetch_wait_ms: u64,
    pub outbox_relay_after_ms: u64,
    pub presence_heartbeat_ms: u64,
    /// TLS and SASL of the Kafka clients (passwords redacted in `Debug`).
    pub kafka_security: palaver_bus::KafkaSecurity,
}

impl Settings {
    /// Defaults for everything; `data_dir` must still be chosen.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self::resolve(ServeArgs::default(), ServeArgs::default(), data_dir.into())
            .expect("defaults are valid")
    }

    pub fn load(mut args: ServeArgs) -> anyhow::Result<Self> {
        let mut limits = limits_from_env(std::env::vars())?;
        limits.append(&mut args.limit);
        args.limit = limits;
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("palaver-data"));
        Self::resolve(args, file, data_dir)
    }

    fn resolve(args: ServeArgs, file: ServeArgs, data_dir: PathBuf) -> anyhow::Result<Self> {
        let max_body_bytes = args.max_body_bytes.or(file.max_body_bytes).unwrap_or(4096);
        let defaults = RateLimits::default();
        let settings = Settings {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            database_url: args
                .database_url
                .or(file.database_url)
                .map(|url| Secret::new(url.into_bytes())),
            db_pool_size: args.db_pool_size.or(file.db_pool_size).unwrap_or(10),
            db_acquire_timeout_ms: args
                .db_acquire_timeout_ms
                .or(file.db_acquire_timeout_ms)
                .unwrap_or(3000),
            db_statement_timeout_ms: args
                .db_statement_timeout_ms
                .or(file.db_statement_timeout_ms)
                .unwrap_or(5000),
            jwt_secret: args
                .jwt_secret
                .or(file.jwt_secret)
                .map(|s| Secret::new(s.into_bytes())),
            jwt_algorithm: match args.jwt_algorithm.or(file.jwt_algorithm) {
                Some(name) => KeyAlgorithm::parse(&name)
                    .map_err(|_| anyhow::anyhow!("jwt_algorithm must be EdDSA or RS256"))?,
                None => KeyAlgorithm::EdDsa,
            },
            jwt_issuer: args
                .jwt_issuer
                .or(file.jwt_issuer)
                .unwrap_or_else(|| "palaver".into()),
            jwt_audience: args
                .jwt_audience
                .or(file.jwt_audience)
                .unwrap_or_else(|| "palaver".into()),
            access_token_ttl_secs: args
                .access_token_ttl_secs
                .or(file.access_token_ttl_secs)
                .unwrap_or(15 * 60),
            refresh_token_ttl_secs: args
                .refresh_token_ttl_secs
                .or(file.refresh_token_ttl_secs)
                .unwrap_or(30 * 24 * 3600),
            max_body_bytes,
            max_frame_bytes: args
                .max_frame_bytes
                .or(file.max_frame_bytes)
                .unwrap_or(max_body_bytes * 4 + 1024),
            ws_queue_capacity: args
                .ws_queue_capacity
                .or(file.ws_queue_capacity)
                .unwrap_or(1024),
            ws_auth_timeout_ms: args
                .ws_auth_timeout_ms
                .or(file.ws_auth_timeout_ms)
                .unwrap_or(10_000),
            ws_write_timeout_ms: args
                .ws_write_timeout_ms
                .or(file.ws_write_timeout_ms)
                .unwrap_or(10_000),
            http_header_timeout_ms: args
                .http_header_timeout_ms
                .or(file.http_header_timeout_ms)
                .unwrap_or(10_000),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(10_000),
            max_connections_per_address: args
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .unwrap_or(64),
            http2_idle_timeout_secs: args
                .http2_idle_timeout_secs
                .or(file.http2_idle_timeout_secs)
                .unwrap_or(30),
            http_body_timeout_ms: args
                .http_body_timeout_ms
                .or(file.http_body_timeout_ms)
                .unwrap_or(10_000),
            http_body_min_rate: args
                .http_body_min_rate
                .or(file.http_body_min_rate)
                .unwrap_or(1024),
            max_sessions_per_user: args
                .max_sessions_per_user
                .or(file.max_sessions_per_user)
                .unwrap_or(32),
            max_sessions_per_address: args
                .max_sessions_per_address
                .or(file.max_sessions_per_address)
                .unwrap_or(64),
            metrics_listen: args
                .metrics_listen
                .or(file.metrics_listen)
                .unwrap_or(MetricsListen::DEFAULT)
                .0,
            trusted_proxies: args
                .trusted_proxies
                .or(file.trusted_proxies)
                .unwrap_or_default(),
            cors_origins: args
                .cors_origins
                .or(file.cors_origins)
                .unwrap_or_default()
                .iter()
                .map(|origin| web_origin(origin))
                .collect::<anyhow::Result<_>>()?,
            rates: {
                let mut rates = RateLimits::default();
                for (name, rate) in &file.limits {
                    LimitSetting::parse(name, *rate)
                        .map_err(|e| anyhow::anyhow!("[limits] {e}"))?
                        .apply(&mut rates);
                }
                for setting in &args.limit {
                    setting.apply(&mut rates);
                }
                rates.login_backoff = LoginBackoff {
                    free: args
                        .login_backoff_free
                        .or(file.login_backoff_free)
                        .unwrap_or(defaults.login_backoff.free),
                    max: args
                        .login_backoff_max_secs
                        .or(file.login_backoff_max_secs)
                        .map(Duration::from_secs)
                        .unwrap_or(defaults.login_backoff.max),
                };
                rates
            },
            smtp_url: args
                .smtp_url
                .or(file.smtp_url)
                .map(|url| Secret::new(url.into_bytes())),
            mail_from: args
                .mail_from
                .or(file.mail_from)
                .unwrap_or_else(|| "Palaver <palaver@localhost>".into()),
            code_ttl_secs: args.code_ttl_secs.or(file.code_ttl_secs).unwrap_or(300),
            username_hold_days: args
                .username_hold_days
                .or(file.username_hold_days)
                .unwrap_or(30),
            argon2_memory_kib: args
                .argon2_memory_kib
                .or(file.argon2_memory_kib)
                .unwrap_or(19 * 1024),
            argon2_iterations: args
                .argon2_iterations
                .or(file.argon2_iterations)
                .unwrap_or(2),
            argon2_concurrency: args
                .argon2_concurrency
                .or(file.argon2_concurrency)
                .unwrap_or_else(|| HashingLimits::default().concurrent),
            argon2_queue: args
                .argon2_queue
                .or(file.argon2_queue)
                .unwrap_or_else(|| HashingLimits::default().waiting),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            kafka_brokers: args.kafka_brokers.or(file.kafka_brokers),
            kafka_topic: args
                .kafka_topic
                .or(file.kafka_topic)
                .unwrap_or_else(|| "palaver.events".into()),
            kafka_partitions: args.kafka_partitions.or(file.kafka_partitions).unwrap_or(8),
            kafka_fetch_wait_ms: args
                .kafka_fetch_wait_ms
                .or(file.kafka_fetch_wait_ms)
                .unwrap_or(5),
            outbox_relay_after_ms: args
                .outbox_relay_after_ms
                .or(file.outbox_relay_after_ms)
                .unwrap_or(5000),
            presence_heartbeat_ms: args
                .presence_heartbeat_ms
                .or(file.presence_heartbeat_ms)
                .unwrap_or(5000),
            kafka_security: palaver_bus::KafkaSecurity::new(palaver_bus::KafkaSecurityOptions {
                protocol: args
                    .kafka_security_protocol
                    .or(file.kafka_security_protocol),
                sasl_mechanism: args.kafka_sasl_mechanism.or(file.kafka_sasl_mechanism),
                sasl_username: args.kafka_sasl_username.or(file.kafka_sasl_username),
                sasl_password: args.kafka_sasl_password.or(file.kafka_sasl_password),
                ssl_ca_location: args.kafka_ssl_ca_location.or(file.kafka_ssl_ca_location),
                ssl_certificate_location: args
                    .kafka_ssl_certificate_location
                    .or(file.kafka_ssl_certificate_location),
                ssl_key_location: args.kafka_ssl_key_location.or(file.kafka_ssl_key_location),
                ssl_key_password: args.kafka_ssl_key_password.or(file.kafka_ssl_key_password),
            })
            .map_err(anyhow::Error::msg)?,
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = self.database_url() {
            palaver_store::Engine::of(&url).map_err(|e| anyhow::anyhow!("database_url: {e}"))?;
        }
        anyhow::ensure!(self.db_pool_size >= 1, "db_pool_size must be at least 1");
        if let Some(secret) = &self.jwt_secret {
            anyhow::ensure!(
                secret.expose().len() >= 32,
                "jwt_secret must be at least 32 bytes"
            );
        }
        anyhow::ensure!(
            self.max_body_bytes >= 1,
            "max_body_bytes must be at least 1"
        );
        // A frame must be able to carry a maximal body, JSON-escaped (up to 6
        // bytes per byte for control characters is pathological; 4× covers text).
        anyhow::ensure!(
            self.max_frame_bytes > self.max_body_bytes,
            "max_frame_bytes must exceed max_body_bytes"
        );
        anyhow::ensure!(
            self.ws_queue_capacity >= 1,
            "ws_queue_capacity must be at least 1"
        );
        anyhow::ensure!(
            self.max_connections >= 1 && self.max_connections_per_address >= 1,
            "max_connections and max_connections_per_address must be at least 1"
        );
        anyhow::ensure!(
            self.ws_write_timeout_ms >= 1 && self.http_header_timeout_ms >= 1,
            "ws_write_timeout_ms and http_header_timeout_ms must be at least 1"
        );
        anyhow::ensure!(
            self.http2_idle_timeout_secs >= 1
                && self.http_body_timeout_ms >= 1
                && self.http_body_min_rate >= 1,
            "http2_idle_timeout_secs, http_body_timeout_ms and http_body_min_rate must be at least 1"
        );
        anyhow::ensure!(
            self.max_sessions_per_user >= 1 && self.max_sessions_per_address >= 1,
            "max_sessions_per_user and max_sessions_per_address must be at least 1"
        );
        if let Some(metrics) = self.metrics_listen {
            anyhow::ensure!(
                metrics != self.listen || metrics.port() == 0,
                "metrics_listen must differ from listen: metrics are not served publicly"
            );
        }
        anyhow::ensure!(
            self.argon2_concurrency >= 1,
            "argon2_concurrency must be at least 1"
        );
        anyhow::ensure!(
            self.access_token_ttl_secs >= 1,
            "access_token_ttl_secs must be at least 1"
        );
        anyhow::ensure!(
            self.refresh_token_ttl_secs >= 1,
            "refresh_token_ttl_secs must be at least 1"
        );
        if let Some(brokers) = &self.kafka_brokers {
            anyhow::ensure!(!brokers.trim().is_empty(), "kafka_brokers is empty");
        }
        anyhow::ensure!(!self.kafka_topic.is_empty(), "kafka_topic is empty");
        anyhow::ensure!(!self.jwt_issuer.is_empty(), "jwt_issuer is empty");
        self.mail_from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| anyhow::anyhow!("mail_from {:?}: {e}", self.mail_from))?;
        anyhow::ensure!(
            self.code_ttl_secs >= 30,
            "code_ttl_secs must be at least 30"
        );
        anyhow::ensure!(
            self.username_hold_days <= 36_500,
            "username_hold_days must be at most 36500"
        );
        anyhow::ensure!(!self.jwt_audience.is_empty(), "jwt_audience is empty");
        anyhow::ensure!(
            self.presence_heartbeat_ms >= 100,
            "presence_heartbeat_ms must be at least 100"
        );
        anyhow::ensure!(
            self.kafka_partitions >= 1,
            "kafka_partitions must be at least 1"
        );
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("palaver.db")
    }

    /// The configured database URL (it may hold a password: never log it unredacted).
    pub fn database_url(&self) -> Option<String> {
        self.database_url
            .as_ref()
            .map(|url| String::from_utf8_lossy(url.expose()).into_owned())
    }

    pub fn store_options(&self) -> palaver_store::StoreOptions {
        palaver_store::StoreOptions {
            pool_size: self.db_pool_size,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
            outbox_origin: None,
        }
    }
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("palaver").chain(args.iter().copied()))
            .unwrap()
            .serve
    }

    #[test]
    fn defaults_listen_locally_with_data_in_palaver_data() {
        let settings = Settings::load(parse(&[])).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            settings.database_path(),
            PathBuf::from("palaver-data/palaver.db")
        );
        assert!(settings.jwt_secret.is_none());
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("palaver.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 100\n").unwrap();
        let settings = Settings::load(parse(&[
            "--config",
            file.to_str().unwrap(),
            "--max-body-bytes",
            "200",
        ]))
        .unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(settings.max_body_bytes, 200);
    }

    #[test]
    fn limits_come_from_the_file_the_environment_and_flags_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("palaver.toml");
        std::fs::write(
            &file,
            "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\n\
             [limits]\nsend_per_user = \"5/s burst 10\"\nedit_per_user = \"1/min\"\n",
        )
        .unwrap();
        let mut args = parse(&[
            "--config",
            file.to_str().unwrap(),
            "--limit",
            "login_per_address=off",
            "--limit=typing_per_user=1/s",
            "--max-connections-per-address",
            "8",
        ]);
        let env = [
            ("PALAVER_LIMIT_EDIT_PER_USER".to_owned(), "2/min".to_owned()),
            ("PALAVER_LIMIT_TYPING_PER_USER".to_owned(), "off".to_owned()),
            ("PALAVER_LISTEN".to_owned(), "ignored here".to_owned()),
        ];
        let mut limits = limits_from_env(env.into_iter()).unwrap();
        limits.append(&mut args.limit);
        args.limit = limits;
        let file_args = read_file(&file).unwrap();
        let settings = Settings::resolve(args, file_args, PathBuf::from("d")).unwrap();
        let rates = &settings.rates;
        assert_eq!(rates.get(Limit::SendPerUser).to_string(), "5/s burst 10");
        assert_eq!(rates.get(Limit::EditPerUser).to_string(), "2/min");
        assert_eq!(rates.get(Limit::TypingPerUser).to_string(), "1/s");
        assert_eq!(rates.get(Limit::LoginPerAddress), RateLimit(None));
        assert_eq!(
            rates.get(Limit::RegisterPerAddress),
            Limit::RegisterPerAddress.default_rate()
        );
        assert_eq!(settings.trusted_proxies.len(), 2);
        assert_eq!(settings.max_connections_per_address, 8);
        let all_off = Settings::load(parse(&[
            "--limit",
            "all=off",
            "--limit",
            "send_per_user=1/s",
        ]))
        .unwrap()
        .rates;
        assert_eq!(all_off.get(Limit::JoinPerAddress), RateLimit(None));
        assert_eq!(all_off.get(Limit::SendPerUser).to_string(), "1/s");
        for bad in ["send_per_user=5 per second", "sends=1/s", "send_per_user"] {
            assert!(
                Cli::try_parse_from(["palaver", "--limit", bad]).is_err(),
                "{bad}"
            );
        }
        let env = [("PALAVER_LIMIT_SENDS".to_owned(), "1/s".to_owned())];
        assert!(limits_from_env(env.into_iter()).is_err());
        std::fs::write(&file, "[limits]\nsends = \"1/s\"\n").unwrap();
        assert!(Settings::load(parse(&["--config", file.to_str().unwrap()])).is_err());
        let proxies = parse(&["--trusted-proxies", "10.0.0.0/8,::1"]).trusted_proxies;
        assert_eq!(proxies.map(|p| p.len()), Some(2));
    }

    #[test]
    fn unknown_palaver_variables_are_reported() {
        let vars = [
            "PALAVER_LISTEN",
            "PALAVER_LISEN",
            "PALAVER_LIMIT_SEND_PER_USER",
            "PALAVER_TEST_STORE",
            "HOME",
        ]
        .map(String::from);
        assert_eq!(unknown_variables(vars.into_iter()), ["PALAVER_LISEN"]);
    }

    #[test]
    fn metrics_listen_on_loopback_by_default_elsewhere_or_nowhere() {
        let default = Settings::load(parse(&[])).unwrap();
        assert_eq!(
            default.metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        let off = Settings::load(parse(&["--metrics-listen", "off"])).unwrap();
        assert_eq!(off.metrics_listen, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("palaver.toml");
        std::fs::write(&file, "metrics_listen = \"10.0.0.5:9100\"\n").unwrap();
        let there = Settings::load(parse(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(there.metrics_listen, Some("10.0.0.5:9100".parse().unwrap()));
        assert!(Cli::try_parse_from(["palaver", "--metrics-listen", "public"]).is_err());
        let same = [
            "--listen",
            "127.0.0.1:9000",
            "--metrics-listen",
            "127.0.0.1:9000",
        ];
        assert!(Settings::load(parse(&same)).is_err());
    }

    #[test]
    fn unknown_file_keys_and_short_secrets_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("palaver.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        assert!(Settings::load(parse(&["--config", file.to_str().unwrap()])).is_err());
        assert!(Settings::load(parse(&["--jwt-secret", "short"])).is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret = "x".repeat(40);
        let url = "postgres://palaver:hunter2@db/palaver";
        let settings =
            Settings::load(parse(&["--jwt-secret", &secret, "--database-url", url])).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains(&secret));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn kafka_security_settings_resolve_and_their_passwords_stay_hidden() {
        let settings = Settings::load(parse(&[
            "--kafka-brokers",
            "kafka-1:9093",
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "palaver-node",
            "--kafka-sasl-password",
            "kafka-hunter2",
            "--kafka-ssl-ca-location",
            "/etc/palaver/kafka-ca.pem",
        ]))
        .unwrap();
        let security = &settings.kafka_security;
        assert_eq!(security.protocol, palaver_bus::SecurityProtocol::SaslSsl);
        let sasl = security.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, palaver_bus::SaslMechanism::ScramSha512);
        assert_eq!(sasl.password, "kafka-hunter2");
        assert_eq!(
            security.ssl_ca_location.as_deref(),
            Some(Path::new("/etc/palaver/kafka-ca.pem"))
        );
        let shown = format!("{settings:?}");
        assert!(!shown.contains("kafka-hunter2"), "{shown}");
        assert!(shown.contains("palaver-node"));
        // SASL credentials over plaintext by omission are refused, not ignored.
        assert!(Settings::load(parse(&["--kafka-sasl-username", "palaver-node"])).is_err());
    }

    #[test]
    fn unsupported_database_urls_are_rejected_at_start() {
        assert!(Settings::load(parse(&["--database-url", "mysql://db/palaver"])).is_err());
        assert!(Settings::load(parse(&["--database-url", "sqlite://x.db"])).is_ok());
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from([
            "palaver",
            "db",
            "copy",
            "--from",
            "sqlite://a.db",
            "--to",
            "postgres://b",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Db(DbCommand::Copy { .. }))
        ));
        let cli =
            Cli::try_parse_from(["palaver", "migrate", "--database-url", "sqlite://a.db"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Migrate(_))));
    }
}
