//! The signed-in user's tokens, kept between runs in the user's config
//! directory (`palaver/credentials.json`, readable by its owner only), and
//! refreshed before they expire.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use palaver_client::types::TokenResponse;
use palaver_client::Client;
use serde::{Deserialize, Serialize};

/// Refresh when the access token has less than this left.
const REFRESH_MARGIN_SECS: u64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// The server these tokens belong to.
    pub server: String,
    pub username: String,
    pub user_id: i64,
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Credentials {
    pub fn from_login(server: &str, tokens: TokenResponse) -> Self {
        Self {
            server: server.trim_end_matches('/').to_owned(),
            username: tokens.user.username.clone().unwrap_or_default(),
            user_id: tokens.user.id,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: now() + tokens.expires_in,
        }
    }

    pub fn needs_refresh(&self) -> bool {
        self.expires_at <= now() + REFRESH_MARGIN_SECS
    }

    /// Spends the refresh token for a new pair.
    pub async fn refreshed(&self) -> palaver_client::Result<Self> {
        let tokens = Client::new(&self.server)
            .refresh(&self.refresh_token)
            .await?;
        Ok(Self::from_login(&self.server, tokens))
    }
}

/// Where credentials live: `dir` (from `--config-dir`), else the platform's
/// config directory.
pub fn path(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let base = match dir {
        Some(dir) => dir.to_owned(),
        None => match std::env::var_os("XDG_CONFIG_HOME") {
            Some(xdg) if !xdg.is_empty() => PathBuf::from(xdg),
            _ => {
                let home = std::env::var_os("HOME")
                    .ok_or_else(|| anyhow::anyhow!("no HOME: pass --config-dir"))?;
                PathBuf::from(home).join(".config")
            }
        },
    };
    Ok(base.join("palaver").join("credentials.json"))
}

pub fn load(path: &Path) -> anyhow::Result<Option<Credentials>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Writes the file with mode 0600 from its creation (never readable by
/// others, not even for a moment), replacing any earlier one atomically.
pub fn save(path: &Path, credentials: &Credentials) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().expect("a file path");
    std::fs::create_dir_all(dir)?;
    let staging = dir.join(".credentials.json.new");
    let _ = std::fs::remove_file(&staging);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staging)?;
    file.write_all(&serde_json::to_vec_pretty(credentials)?)?;
    file.sync_all()?;
    std::fs::rename(&staging, path)?;
    Ok(())
}

pub fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}
