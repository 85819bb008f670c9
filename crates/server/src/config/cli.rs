//! The command line: commands, and the serve flags with their flat names,
//! each shown in `--help` with its default (read from `Settings::default()`)
//! and its `PALAVER_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use figment::value::Value;
use palaver_domain::throttle::{Limit, RateLimit};
use serde::{Serialize, Serializer};
use strum::IntoEnumIterator;

use super::layers::FLAT;
use super::{LogFormat, ProxyNet, Settings};

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
    /// Server admins: who may use the admin API (docs/admin.md). There is
    /// none until one is granted here.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make a user a server admin (recorded in the audit log).
    Grant {
        username: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Take the admin role from a user (recorded in the audit log).
    Revoke {
        username: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Show every server admin.
    List(ServeArgs),
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
    /// Write a consistent snapshot of the store to a new SQLite file, while
    /// the server runs.
    ///
    /// The store is the one `--data-dir` or `--database-url` names. The file
    /// holds password hashes and the keys that sign access tokens: keep it as
    /// secret as the server (docs/deploy.md, "Backups and restore").
    Backup {
        /// The file to write; one that exists is never overwritten.
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Restore a `db backup` file into an empty store, then verify every
    /// table's row count against the file.
    ///
    /// The store is the one `--data-dir` or `--database-url` names; run this
    /// before the first start on it (a start creates a signing key).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// The flags of a command that serves (or opens the store). Each one's
/// place in the sections, and so its key in the file, is in `layers::FLAT`;
/// its default is the one of `Settings::default()`, appended to its help.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct ServeArgs {
    /// TOML file with settings, in sections (`[http]`, `[realtime]`, …; see
    /// docs/configuration.md); variables and flags override it. Also
    /// `PALAVER_CONFIG`.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database, and for mail when there is no SMTP server.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where messages live: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`
    /// [default: sqlite://<data-dir>/palaver.db].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Database connections per node (SQLite: readers beside one writer).
    #[arg(long)]
    pub db_pool_size: Option<u32>,
    /// Milliseconds a request waits for a database connection before failing with
    /// 503 `store_unavailable`.
    #[arg(long)]
    pub db_acquire_timeout_ms: Option<u64>,
    /// Longest a database statement may run, in milliseconds (PostgreSQL).
    #[arg(long)]
    pub db_statement_timeout_ms: Option<u64>,
    /// Sign access tokens with this shared HS256 secret (at least 32 bytes)
    /// instead of the store's key pairs; no public key is then published.
    #[arg(long)]
    pub jwt_secret: Option<String>,
    /// Algorithm of the signing key created when the store has none: `EdDSA`
    /// (Ed25519) or `RS256`. Later keys: `palaver keys rotate`.
    #[arg(long)]
    pub jwt_algorithm: Option<String>,
    /// The `iss` of every access token, checked on every token.
    #[arg(long)]
    pub jwt_issuer: Option<String>,
    /// The `aud` of every access token, checked on every token.
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long)]
    pub access_token_ttl_secs: Option<u64>,
    /// Refresh token lifetime in seconds.
    #[arg(long)]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Largest message body in bytes.
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Largest frame of a real-time session (WebSocket frame, gRPC message) in
    /// bytes; bigger ones close the session with 1009
    /// [default: 4 × max-body-bytes + 1024].
    #[arg(long)]
    pub max_frame_bytes: Option<usize>,
    /// Frames queued for one real-time session before it is cut off as a slow consumer.
    #[arg(long)]
    pub ws_queue_capacity: Option<usize>,
    /// Milliseconds a new real-time session has to authenticate.
    #[arg(long)]
    pub ws_auth_timeout_ms: Option<u64>,
    /// Milliseconds one write to a real-time session (a batch of frames, or a
    /// close frame) may take; a client that reads too little for it to finish
    /// is dropped.
    #[arg(long)]
    pub ws_write_timeout_ms: Option<u64>,
    /// Milliseconds a client has to send a request's headers (also the longest
    /// an idle HTTP connection stays open).
    #[arg(long)]
    pub http_header_timeout_ms: Option<u64>,
    /// Milliseconds a write to a connection may wait on a client that reads
    /// nothing before the connection is dropped (slow downloads included).
    #[arg(long)]
    pub http_write_stall_timeout_ms: Option<u64>,
    /// Open connections (HTTP and WebSocket) the node accepts; more are answered
    /// 503 `too_many_connections` and closed.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Open connections from one address (an IPv6 /64); more are answered 429
    /// `too_many_connections`. Trusted proxies are exempt.
    #[arg(long)]
    pub max_connections_per_address: Option<usize>,
    /// Seconds an HTTP/2 connection (gRPC included) may stay open with no
    /// stream before it is closed with GOAWAY.
    #[arg(long)]
    pub http2_idle_timeout_secs: Option<u64>,
    /// Milliseconds a REST request's body may take to arrive in full; past
    /// it the request is answered 408 `request_timeout` and the connection
    /// closed.
    #[arg(long)]
    pub http_body_timeout_ms: Option<u64>,
    /// Bytes per second a REST request's body must arrive at, after a
    /// 2-second grace; slower is answered as a timeout.
    #[arg(long)]
    pub http_body_min_rate: Option<u64>,
    /// Real-time sessions (WebSocket, gRPC streams and every other real-time
    /// transport, counted together) one user may have open on a node; more
    /// are refused (close 4500, gRPC `RESOURCE_EXHAUSTED`).
    #[arg(long)]
    pub max_sessions_per_user: Option<usize>,
    /// Real-time sessions from one client address (an IPv6 /64), all users
    /// and transports together.
    #[arg(long)]
    pub max_sessions_per_address: Option<usize>,
    /// Where Prometheus metrics are served (`GET /metrics`), apart from the
    /// public listener: an address, or `off`.
    #[arg(long)]
    pub metrics_listen: Option<MetricsListen>,
    /// Proxies whose `X-Forwarded-For` is believed, as addresses or CIDR networks
    /// (`10.0.0.0/8,192.0.2.1`). A request's address is then the hop just before
    /// the first trusted proxy [default: none: the socket's address].
    #[arg(long, value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<ProxyNet>>,
    /// Web origins (`https://app.example.com`) whose pages may call the REST
    /// API with credentials (CORS) and open WebSockets signed in by cookie.
    /// The server's own origin never needs listing [default: none].
    #[arg(long, value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// PEM file of the certificate chain to serve TLS with (the server's
    /// certificate first), with --tls-key: the listener then speaks only TLS,
    /// HTTP/1.1 and HTTP/2 (gRPC) negotiated by ALPN. Both files are read
    /// again when they change (a renewal); new connections get the new
    /// certificate, open ones keep theirs.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// With TLS: an address for plain HTTP that answers every request with
    /// 308 to the same host and path over https, and serves nothing else
    /// (e.g. 0.0.0.0:80) [default: none].
    #[arg(long)]
    pub tls_redirect_listen: Option<SocketAddr>,
    /// The port those redirects name, when clients reach TLS on another
    /// port than the one of --listen (443 is left out of the URL) [default:
    /// the port of --listen].
    #[arg(long)]
    pub tls_redirect_port: Option<u16>,
    /// With TLS: seconds browsers must keep to https for this host
    /// (`Strict-Transport-Security: max-age=…`, sent on every response);
    /// 0 tells them to forget it.
    #[arg(long)]
    pub hsts_max_age_secs: Option<u64>,
    /// A budget of the limits table, as `NAME=RATE` (repeatable; `all=off`
    /// turns every one off). A rate is `COUNT/UNIT [burst N]` with unit `s`,
    /// `min` or `h`, or `off`. Also `PALAVER_LIMIT_<NAME>=RATE`, and `NAME =
    /// "RATE"` under `[limits]` in the file. docs/security.md lists each limit
    /// and its default.
    #[arg(long = "limit", value_name = "NAME=RATE")]
    #[serde(skip)]
    pub limit: Vec<LimitSetting>,
    /// Failed logins of one account from one address before each next attempt
    /// must wait (1 s, doubling per failure).
    #[arg(long)]
    pub login_backoff_free: Option<u32>,
    /// The longest wait after failed logins, in seconds.
    #[arg(long)]
    pub login_backoff_max_secs: Option<u64>,
    /// SMTP server for account mail: `smtp://host:25`, `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`. Without one, mails are
    /// written as files under `<data-dir>/mail/`.
    #[arg(long)]
    pub smtp_url: Option<String>,
    /// The sender of account mail.
    #[arg(long)]
    pub mail_from: Option<String>,
    /// Seconds a mailed code (e-mail verification, password reset) works.
    #[arg(long)]
    pub code_ttl_secs: Option<u64>,
    /// Days a deleted account's username cannot be registered again.
    #[arg(long)]
    pub username_hold_days: Option<u64>,
    /// argon2id memory cost in KiB.
    #[arg(long)]
    pub argon2_memory_kib: Option<u32>,
    /// argon2id passes.
    #[arg(long)]
    pub argon2_iterations: Option<u32>,
    /// Password hashes (logins, registrations, room passwords) running at once,
    /// by default one per core; each holds argon2-memory-kib of memory.
    #[arg(long)]
    pub argon2_concurrency: Option<usize>,
    /// Password hashes waiting for a turn (each at most 2 s); past that, requests
    /// needing one are answered 503 `overloaded` with `Retry-After`.
    #[arg(long)]
    pub argon2_queue: Option<usize>,
    /// Log format. Levels come from `RUST_LOG`.
    #[arg(long)]
    pub log_format: Option<LogFormat>,
    /// Cluster mode: Kafka brokers (`host:port,…`) carrying events between nodes.
    /// Unset: a single node with an in-process bus.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// The Kafka topic of Palaver's events.
    #[arg(long)]
    pub kafka_topic: Option<String>,
    /// Partitions for the topic if a node has to create it.
    #[arg(long)]
    pub kafka_partitions: Option<i32>,
    /// Milliseconds the broker may hold an empty fetch open: the floor of
    /// cross-node latency on a quiet topic.
    #[arg(long)]
    pub kafka_fetch_wait_ms: Option<u64>,
    /// Milliseconds after which an event still in the outbox (its node died, or
    /// Kafka was down) is re-sent by any node's relay.
    #[arg(long)]
    pub outbox_relay_after_ms: Option<u64>,
    /// Cluster mode: milliseconds between a node's presence heartbeats; a node
    /// silent for three of them is presumed dead and its users offline.
    #[arg(long)]
    pub presence_heartbeat_ms: Option<u64>,
    /// Cluster mode: how nodes reach the brokers: `plaintext`, `ssl`,
    /// `sasl_plaintext` or `sasl_ssl` [default: plaintext].
    #[arg(long)]
    pub kafka_security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a `sasl_*` protocol).
    #[arg(long)]
    pub kafka_sasl_mechanism: Option<String>,
    /// The nodes' SASL user (their Kafka principal).
    #[arg(long)]
    pub kafka_sasl_username: Option<String>,
    /// The SASL user's password.
    #[arg(long)]
    pub kafka_sasl_password: Option<String>,
    /// PEM file of the CAs that vouch for the brokers [default: the system's].
    #[arg(long)]
    pub kafka_ssl_ca_location: Option<PathBuf>,
    /// PEM certificate of this node, for brokers that require one (with the key).
    #[arg(long)]
    pub kafka_ssl_certificate_location: Option<PathBuf>,
    /// PEM key of this node's certificate.
    #[arg(long)]
    pub kafka_ssl_key_location: Option<PathBuf>,
    /// The passphrase of that key, if it has one.
    #[arg(long)]
    pub kafka_ssl_key_password: Option<String>,
    /// Where attachments' bytes are kept [default: <data-dir>/attachments].
    #[arg(long)]
    pub attachments_dir: Option<PathBuf>,
    /// The largest attachment in bytes; a bigger upload is refused 413 as
    /// soon as its bytes pass it.
    #[arg(long)]
    pub max_attachment_bytes: Option<u64>,
    /// The most bytes one user's attachments may hold together.
    #[arg(long)]
    pub attachment_quota_bytes: Option<u64>,
    /// Seconds an upload's body may take to arrive in full.
    #[arg(long)]
    pub attachment_upload_timeout_secs: Option<u64>,
    /// Seconds an upload waits for a message to carry it; then it is collected.
    #[arg(long)]
    pub attachment_claim_secs: Option<u64>,
    /// Milliseconds between two looks for orphaned attachments to remove.
    #[arg(long)]
    pub attachment_collect_every_ms: Option<u64>,
    /// `s3://bucket/prefix`: attachments in S3-compatible object storage
    /// (credentials, region and endpoint from the AWS_* variables)
    /// [default: the attachments directory].
    #[arg(long)]
    pub attachments_url: Option<String>,
}

/// One `--limit NAME=RATE`: a limit of the table (or `all` of them) and its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSetting {
    /// `None`: every limit.
    pub limit: Option<Limit>,
    pub rate: RateLimit,
}

impl LimitSetting {
    pub fn parse(name: &str, rate: RateLimit) -> Result<Self, String> {
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

    /// Every limit this sets, by name.
    pub fn names(&self) -> Vec<&'static str> {
        match self.limit {
            Some(limit) => vec![limit.name()],
            None => Limit::iter().map(Limit::name).collect(),
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

/// `--metrics-listen`: an address, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

impl FromStr for MetricsListen {
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

impl Serialize for MetricsListen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(address) => serializer.collect_str(&address),
            None => serializer.serialize_str("off"),
        }
    }
}

/// The command line's parser, with each serve flag's default and variable
/// appended to its help.
pub fn command() -> clap::Command {
    let defaults = Value::serialize(Settings::default()).expect("the defaults serialize");
    with_defaults(Cli::command(), &defaults)
}

/// The process's command line (exits on an error or `--help`).
pub fn parse() -> Cli {
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

fn with_defaults(command: clap::Command, defaults: &Value) -> clap::Command {
    command
        .mut_args(|arg| {
            let Some(flat) = FLAT.iter().find(|f| arg.get_id() == f.name) else {
                return arg;
            };
            let mut notes = String::new();
            if let Some(default) = defaults
                .find_ref(flat.path)
                .and_then(|v| flat.unit.render(v))
            {
                notes.push_str(&format!(" [default: {default}]"));
            }
            notes.push_str(&format!(" [env: {}]", flat.variable()));
            let help = arg.get_help().map(|h| format!("{h}{notes}"));
            let long_help = arg.get_long_help().map(|h| format!("{h}{notes}"));
            let arg = match help {
                Some(help) => arg.help(help),
                None => arg,
            };
            match long_help {
                Some(long_help) => arg.long_help(long_help),
                None => arg,
            }
        })
        .mut_subcommands(|sub| with_defaults(sub, defaults))
}

/// The variable of `--config`, read before the layers it names.
pub const CONFIG_VARIABLE: &str = "PALAVER_CONFIG";

#[cfg(test)]
pub(super) fn serve_arg_ids() -> Vec<String> {
    Cli::command()
        .get_arguments()
        .map(|arg| arg.get_id().to_string())
        .filter(|id| !matches!(id.as_str(), "config" | "limit" | "help" | "version"))
        .collect()
}
