//! Settings: defaults, then an optional TOML file, then `PALAVER_*` variables,
//! then flags (clap resolves the last two; flags win).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "palaver",
    version,
    about = "Palaver: a self-hostable real-time chat server"
)]
pub struct Cli {
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Every option may also be set in the `--config` file under the same name in
/// snake_case (e.g. `max_body_bytes = 8192`).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with settings; flags and environment variables override it.
    #[arg(long, env = "PALAVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PALAVER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and the generated JWT secret [default: ./palaver-data].
    #[arg(long, env = "PALAVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HS256 signing secret for access tokens (at least 32 bytes). When unset, one
    /// is generated on first start and kept in `<data-dir>/jwt-secret`.
    #[arg(long, env = "PALAVER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
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
    /// argon2id memory cost in KiB [default: 19456].
    #[arg(long, env = "PALAVER_ARGON2_MEMORY_KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// argon2id passes [default: 2].
    #[arg(long, env = "PALAVER_ARGON2_ITERATIONS")]
    pub argon2_iterations: Option<u32>,
    /// Log format: `text` or `json` [default: text]. Levels come from `RUST_LOG`.
    #[arg(long, env = "PALAVER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The `--config` file: the same options, all optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    jwt_secret: Option<String>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    max_frame_bytes: Option<usize>,
    ws_queue_capacity: Option<usize>,
    ws_auth_timeout_ms: Option<u64>,
    argon2_memory_kib: Option<u32>,
    argon2_iterations: Option<u32>,
    log_format: Option<LogFormat>,
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
    pub jwt_secret: Option<Secret>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub max_body_bytes: usize,
    pub max_frame_bytes: usize,
    pub ws_queue_capacity: usize,
    pub ws_auth_timeout_ms: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub log_format: LogFormat,
}

impl Settings {
    /// Defaults for everything; `data_dir` must still be chosen.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self::resolve(
            ServeArgs::default(),
            FileSettings::default(),
            data_dir.into(),
        )
        .expect("defaults are valid")
    }

    pub fn load(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("palaver-data"));
        Self::resolve(args, file, data_dir)
    }

    fn resolve(args: ServeArgs, file: FileSettings, data_dir: PathBuf) -> anyhow::Result<Self> {
        let max_body_bytes = args.max_body_bytes.or(file.max_body_bytes).unwrap_or(4096);
        let settings = Settings {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            jwt_secret: args
                .jwt_secret
                .or(file.jwt_secret)
                .map(|s| Secret::new(s.into_bytes())),
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
            argon2_memory_kib: args
                .argon2_memory_kib
                .or(file.argon2_memory_kib)
                .unwrap_or(19 * 1024),
            argon2_iterations: args
                .argon2_iterations
                .or(file.argon2_iterations)
                .unwrap_or(2),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
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
            self.access_token_ttl_secs >= 1,
            "access_token_ttl_secs must be at least 1"
        );
        anyhow::ensure!(
            self.refresh_token_ttl_secs >= 1,
            "refresh_token_ttl_secs must be at least 1"
        );
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("palaver.db")
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
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
        let settings = Settings::load(parse(&["--jwt-secret", &secret])).unwrap();
        assert!(!format!("{settings:?}").contains(&secret));
    }
}
