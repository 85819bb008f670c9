//! The layers over the defaults (the file, the environment, the flags) as
//! figment providers, and the one table that maps each flat name (flag and
//! `PALAVER_*` variable) to its place in the sections.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};
use palaver_domain::throttle::{Limit, RateLimit};

use self::Unit::{Days, List, Millis, Same, Secs};
use super::cli::{LimitSetting, ServeArgs, CONFIG_VARIABLE};

/// How a flag's or a variable's value becomes the setting's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// As it is.
    Same,
    /// Comma-separated in a variable.
    List,
    /// A whole number of milliseconds, seconds or days, for a duration.
    Millis,
    Secs,
    Days,
}

/// A flat name (`ws_write_timeout_ms`: `--ws-write-timeout-ms`,
/// `PALAVER_WS_WRITE_TIMEOUT_MS`) and where its value goes in the sections.
#[derive(Debug)]
pub struct Flat {
    pub name: &'static str,
    pub path: &'static str,
    pub unit: Unit,
}

const fn flat(name: &'static str, path: &'static str, unit: Unit) -> Flat {
    Flat { name, path, unit }
}

/// Every serve flag but `--config` and `--limit`, in `--help`'s order.
pub const FLAT: &[Flat] = &[
    flat("listen", "http.listen", Same),
    flat("data_dir", "data_dir", Same),
    flat("database_url", "database.url", Same),
    flat("db_pool_size", "database.pool_size", Same),
    flat("db_acquire_timeout_ms", "database.acquire_timeout", Millis),
    flat(
        "db_statement_timeout_ms",
        "database.statement_timeout",
        Millis,
    ),
    flat("jwt_secret", "tokens.jwt_secret", Same),
    flat("jwt_algorithm", "tokens.algorithm", Same),
    flat("jwt_issuer", "tokens.issuer", Same),
    flat("jwt_audience", "tokens.audience", Same),
    flat("access_token_ttl_secs", "tokens.access_ttl", Secs),
    flat("refresh_token_ttl_secs", "tokens.refresh_ttl", Secs),
    flat("max_body_bytes", "messages.max_body_bytes", Same),
    flat("max_frame_bytes", "realtime.max_frame_bytes", Same),
    flat("ws_queue_capacity", "realtime.queue_capacity", Same),
    flat("ws_auth_timeout_ms", "realtime.auth_timeout", Millis),
    flat("ws_write_timeout_ms", "realtime.write_timeout", Millis),
    flat("http_header_timeout_ms", "http.header_timeout", Millis),
    flat(
        "http_write_stall_timeout_ms",
        "http.write_stall_timeout",
        Millis,
    ),
    flat("max_connections", "http.max_connections", Same),
    flat(
        "max_connections_per_address",
        "http.max_connections_per_address",
        Same,
    ),
    flat("http2_idle_timeout_secs", "http.http2_idle_timeout", Secs),
    flat("http_body_timeout_ms", "http.body_timeout", Millis),
    flat("http_body_min_rate", "http.body_min_rate", Same),
    flat(
        "max_sessions_per_user",
        "realtime.max_sessions_per_user",
        Same,
    ),
    flat(
        "max_sessions_per_address",
        "realtime.max_sessions_per_address",
        Same,
    ),
    flat("metrics_listen", "metrics.listen", Same),
    flat("trusted_proxies", "http.trusted_proxies", List),
    flat("cors_origins", "http.cors_origins", List),
    flat("tls_cert", "http.tls_cert", Same),
    flat("tls_key", "http.tls_key", Same),
    flat("tls_redirect_listen", "http.tls_redirect_listen", Same),
    flat("tls_redirect_port", "http.tls_redirect_port", Same),
    flat("hsts_max_age_secs", "http.hsts_max_age", Secs),
    flat("login_backoff_free", "limits.login_backoff_free", Same),
    flat("login_backoff_max_secs", "limits.login_backoff_max", Secs),
    flat("smtp_url", "mail.smtp_url", Same),
    flat("mail_from", "mail.from", Same),
    flat("code_ttl_secs", "accounts.code_ttl", Secs),
    flat("username_hold_days", "accounts.username_hold", Days),
    flat("argon2_memory_kib", "passwords.memory_kib", Same),
    flat("argon2_iterations", "passwords.iterations", Same),
    flat("argon2_concurrency", "passwords.concurrency", Same),
    flat("argon2_queue", "passwords.queue", Same),
    flat("log_format", "log.format", Same),
    flat("kafka_brokers", "kafka.brokers", Same),
    flat("kafka_topic", "kafka.topic", Same),
    flat("kafka_partitions", "kafka.partitions", Same),
    flat("kafka_fetch_wait_ms", "kafka.fetch_wait", Millis),
    flat("outbox_relay_after_ms", "kafka.outbox_relay_after", Millis),
    flat("presence_heartbeat_ms", "kafka.presence_heartbeat", Millis),
    flat("kafka_security_protocol", "kafka.security_protocol", Same),
    flat("kafka_sasl_mechanism", "kafka.sasl_mechanism", Same),
    flat("kafka_sasl_username", "kafka.sasl_username", Same),
    flat("kafka_sasl_password", "kafka.sasl_password", Same),
    flat("kafka_ssl_ca_location", "kafka.ssl_ca_location", Same),
    flat(
        "kafka_ssl_certificate_location",
        "kafka.ssl_certificate_location",
        Same,
    ),
    flat("kafka_ssl_key_location", "kafka.ssl_key_location", Same),
    flat("kafka_ssl_key_password", "kafka.ssl_key_password", Same),
    flat("attachments_dir", "attachments.dir", Same),
    flat("max_attachment_bytes", "attachments.max_bytes", Same),
    flat("attachment_quota_bytes", "attachments.quota_bytes", Same),
    flat(
        "attachment_upload_timeout_secs",
        "attachments.upload_timeout",
        Secs,
    ),
    flat("attachment_claim_secs", "attachments.claim_within", Secs),
    flat(
        "attachment_collect_every_ms",
        "attachments.collect_every",
        Millis,
    ),
    flat("attachments_url", "attachments.url", Same),
];

const LIMIT_VARIABLE_PREFIX: &str = "PALAVER_LIMIT_";

impl Flat {
    pub fn variable(&self) -> String {
        format!("PALAVER_{}", self.name.to_ascii_uppercase())
    }

    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    fn at(path: &str) -> Option<&'static Flat> {
        FLAT.iter().find(|flat| flat.path == path)
    }
}

/// A setting as a message names it: its place in the file, and its flag.
pub fn spelled(path: &str) -> String {
    match Flat::at(path) {
        Some(flat) => format!("{path} ({})", flat.flag()),
        None => path.to_owned(),
    }
}

impl Unit {
    /// The setting's value for a flag's or a variable's (a variable's is
    /// always text).
    pub fn convert(self, value: Value) -> Result<Value, String> {
        let (suffix, unit) = match self {
            Unit::Same => return Ok(value),
            Unit::List => {
                return Ok(match value {
                    Value::String(_, text) => Value::from(
                        text.split(',')
                            .map(str::trim)
                            .filter(|item| !item.is_empty())
                            .map(Value::from)
                            .collect::<Vec<_>>(),
                    ),
                    list => list,
                })
            }
            Unit::Millis => ("ms", "milliseconds"),
            Unit::Secs => ("s", "seconds"),
            Unit::Days => ("days", "days"),
        };
        let count = match &value {
            Value::String(_, text) => text.trim().parse::<u64>().ok(),
            number => number.to_u128().and_then(|n| u64::try_from(n).ok()),
        };
        count
            .map(|count| Value::from(format!("{count}{suffix}")))
            .ok_or_else(|| format!("expected a whole number of {unit}"))
    }

    /// A setting's value (as serialized) the way its flag takes it; `None`
    /// for none.
    pub fn render(self, value: &Value) -> Option<String> {
        let duration = || {
            value
                .as_str()
                .and_then(|t| humantime::parse_duration(t).ok())
        };
        match self {
            Unit::Same => match value {
                Value::String(_, text) => Some(text.clone()),
                Value::Num(..) => value
                    .to_u128()
                    .map(|n| n.to_string())
                    .or_else(|| value.to_i128().map(|n| n.to_string())),
                _ => None,
            },
            Unit::List => match value {
                Value::Array(_, items) if !items.is_empty() => Some(
                    items
                        .iter()
                        .filter_map(|item| Unit::Same.render(item))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => None,
            },
            Unit::Millis => duration().map(|d| d.as_millis().to_string()),
            Unit::Secs => duration().map(|d| d.as_secs().to_string()),
            Unit::Days => duration().map(|d| (d.as_secs() / 86_400).to_string()),
        }
    }
}

/// Puts `value` at `path` (`section.key`) in `dict`.
fn insert(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            dict.insert(path.to_owned(), value);
        }
        Some((section, rest)) => {
            let entry = dict
                .entry(section.to_owned())
                .or_insert_with(|| Dict::new().into());
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// `limits.NAME` for each limit `setting` sets: a later layer's `all`
/// overrides each limit an earlier layer named.
fn insert_limit(dict: &mut Dict, setting: &LimitSetting) {
    for name in setting.names() {
        insert(
            dict,
            &format!("limits.{name}"),
            setting.rate.to_string().into(),
        );
    }
}

fn layer(dict: Dict) -> Map<Profile, Dict> {
    Map::from([(Profile::Default, dict)])
}

/// The `--config` file, read at once so that a missing file is an error.
pub struct File {
    path: PathBuf,
    text: String,
}

impl File {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            text,
        })
    }
}

impl Provider for File {
    fn metadata(&self) -> Metadata {
        Metadata::from("TOML file", self.path.as_path()).interpolater(|_, keys| keys.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let dict = Toml::string(&self.text)
            .data()
            // Figment adds the file's name to the error.
            .map_err(|e| Error::from(e.to_string()))?
            .remove(&Profile::Default)
            .unwrap_or_default();
        // A key of the flat spelling is an unknown key; say where it went.
        if let Some(flat) = FLAT
            .iter()
            .find(|flat| flat.name != flat.path && dict.contains_key(flat.name))
        {
            let (section, key) = flat.path.split_once('.').unwrap_or(("", flat.path));
            let duration = match flat.unit {
                Same | List => "",
                Millis | Secs | Days => ", a duration such as \"10s\"",
            };
            return Err(Error::from(format!(
                "unknown key {:?}: in the file it is {key} under [{section}]{duration}",
                flat.name,
            )));
        }
        Ok(layer(dict))
    }
}

/// The `PALAVER_*` variables of the table, and `PALAVER_LIMIT_<NAME>`; an
/// empty one counts as unset.
pub struct Environment {
    vars: Vec<(String, String)>,
}

impl Environment {
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            vars: vars
                .into_iter()
                .filter(|(key, value)| key.starts_with("PALAVER_") && !value.is_empty())
                .collect(),
        }
    }

    /// `PALAVER_CONFIG`.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.vars
            .iter()
            .find(|(key, _)| key == CONFIG_VARIABLE)
            .map(|(_, value)| PathBuf::from(value))
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("the environment").interpolater(|_, keys| variable_at(keys))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut dict = Dict::new();
        let mut limits = Vec::new();
        for (key, value) in &self.vars {
            if let Some(name) = key.strip_prefix(LIMIT_VARIABLE_PREFIX) {
                let setting = value
                    .parse::<RateLimit>()
                    .and_then(|rate| LimitSetting::parse(&name.to_ascii_lowercase(), rate))
                    .map_err(|e| Error::from(format!("{key}: {e}")))?;
                limits.push(setting);
            } else if let Some(flat) = FLAT.iter().find(|flat| flat.variable() == *key) {
                let value = flat
                    .unit
                    .convert(value.as_str().into())
                    .map_err(|e| Error::from(format!("{key}: {e}")))?;
                insert(&mut dict, flat.path, value);
            }
        }
        // `PALAVER_LIMIT_ALL` first: a named limit beside it is an exception.
        limits.sort_by_key(|setting| setting.limit.is_some());
        for setting in &limits {
            insert_limit(&mut dict, setting);
        }
        Ok(layer(dict))
    }
}

/// The variable that sets `keys`, for messages.
fn variable_at(keys: &[&str]) -> String {
    let path = keys.join(".");
    match (Flat::at(&path), keys) {
        (Some(flat), _) => flat.variable(),
        (None, ["limits", name]) => format!("{LIMIT_VARIABLE_PREFIX}{}", name.to_uppercase()),
        _ => path,
    }
}

/// The flags given, over everything else; `--limit`s in their order.
pub struct Flags<'a>(pub &'a ServeArgs);

impl Provider for Flags<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named("the command line").interpolater(|_, keys| flag_at(keys))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut dict = Dict::new();
        let Value::Dict(_, given) = Value::serialize(self.0)? else {
            return Err(Error::from(
                "the flags do not serialize as a table".to_owned(),
            ));
        };
        for (name, value) in given {
            if let Value::Empty(..) = value {
                continue;
            }
            let flat = FLAT
                .iter()
                .find(|flat| flat.name == name)
                .ok_or_else(|| Error::from(format!("--{name} has no place in the settings")))?;
            let value = flat
                .unit
                .convert(value)
                .map_err(|e| Error::from(format!("{}: {e}", flat.flag())))?;
            insert(&mut dict, flat.path, value);
        }
        for setting in &self.0.limit {
            insert_limit(&mut dict, setting);
        }
        Ok(layer(dict))
    }
}

/// The flag that sets `keys`, for messages.
fn flag_at(keys: &[&str]) -> String {
    let path = keys.join(".");
    match (Flat::at(&path), keys) {
        (Some(flat), _) => flat.flag(),
        (None, ["limits", name]) => format!("--limit {name}"),
        _ => path,
    }
}

/// Every `PALAVER_*` variable that sets something (beside the
/// `PALAVER_LIMIT_<NAME>` ones).
pub fn known_variables() -> BTreeSet<String> {
    FLAT.iter()
        .map(Flat::variable)
        .chain([CONFIG_VARIABLE.to_owned()])
        .collect()
}

/// The `PALAVER_*` variables among `vars` that nothing reads: most likely
/// a misspelling, which would otherwise leave a default silently in force.
pub fn unknown_variables(vars: impl Iterator<Item = String>) -> Vec<String> {
    /// palaver-cli's own settings, often set in the same shell.
    const CLIENT_VARIABLES: [&str; 3] = ["PALAVER_SERVER", "PALAVER_CA_FILE", "PALAVER_CONFIG_DIR"];
    let known = known_variables();
    vars.filter(|key| key.starts_with("PALAVER_"))
        .filter(|key| !known.contains(key))
        .filter(|key| {
            key.strip_prefix(LIMIT_VARIABLE_PREFIX).is_none_or(|name| {
                let name = name.to_ascii_lowercase();
                name != "all" && name.parse::<Limit>().is_err()
            })
        })
        // Read by palaver-cli and the test scripts, not by the server.
        .filter(|key| {
            !CLIENT_VARIABLES.contains(&key.as_str()) && !key.starts_with("PALAVER_TEST_")
        })
        .collect()
}
