//! The signed-in user's tokens, kept between runs in the user's config
//! directory (`palaver/credentials.json`, readable by its owner only), and
//! refreshed before they expire.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use palaver_client::live::TokenSource;
use palaver_client::types::TokenResponse;
use palaver_client::{Client, Trust};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

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

    /// Spends the refresh token for a new pair, asking `server` (a client of
    /// `self.server`).
    pub async fn refreshed(&self, server: &Client) -> palaver_client::Result<Self> {
        let tokens = server.refresh(&self.refresh_token).await?;
        Ok(Self::from_login(&self.server, tokens))
    }
}

/// The kept sign-in while a command runs: every access token it hands out is
/// fresh, refreshed (and the new pair saved) when the old one is about to
/// expire, so a `tail` or `chat` left running for days stays signed in.
/// Clones share one sign-in, so a live session and the REST calls beside it
/// never spend the same refresh token twice.
#[derive(Clone)]
pub struct SignIn {
    path: Arc<PathBuf>,
    kept: Arc<Mutex<Credentials>>,
    /// The server's client without a token, sharing one connection pool and
    /// the trust of every connection made for this sign-in.
    server: Client,
    pub user_id: i64,
}

impl SignIn {
    pub fn new(path: &Path, credentials: Credentials, trust: Trust) -> Self {
        Self {
            path: Arc::new(path.to_owned()),
            server: Client::with_trust(&credentials.server, trust),
            user_id: credentials.user_id,
            kept: Arc::new(Mutex::new(credentials)),
        }
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        self.server.base_url()
    }

    /// What connections to the server trust over TLS.
    pub fn trust(&self) -> &Trust {
        self.server.trust()
    }

    /// A valid access token, refreshing first if need be. A refused refresh
    /// is the server's 401: the login has ended.
    pub async fn fresh_token(&self) -> palaver_client::Result<String> {
        let mut kept = self.kept.lock().await;
        if kept.needs_refresh() {
            let fresh = kept.refreshed(&self.server).await?;
            // The old refresh token is spent now: keep the new pair even if
            // it cannot be saved, or this run would sign itself out.
            if let Err(err) = save(&self.path, &fresh) {
                eprintln!("warning: the refreshed sign-in was not saved ({err:#}); the next run needs `palaver-cli login`");
            }
            *kept = fresh;
        }
        Ok(kept.access_token.clone())
    }

    /// A REST client with a fresh token.
    pub async fn client(&self) -> palaver_client::Result<Client> {
        Ok(self.server.with_token(self.fresh_token().await?))
    }
}

impl TokenSource for SignIn {
    fn access_token(&mut self) -> BoxFuture<'_, palaver_client::Result<String>> {
        Box::pin(self.fresh_token())
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
