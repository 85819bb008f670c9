//! The JWT signing secret: configured, or generated once and kept in the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use palaver_domain::tokens::random_token;

use crate::config::Secret;

const FILE_NAME: &str = "jwt-secret";

pub fn load_or_create_jwt_secret(
    configured: Option<&Secret>,
    data_dir: &Path,
) -> anyhow::Result<Secret> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    let path = data_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = text.trim();
            anyhow::ensure!(
                text.len() >= 32,
                "{} holds fewer than 32 bytes",
                path.display()
            );
            return Ok(Secret::new(text.as_bytes().to_vec()));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    }
    let secret = random_token(48);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new JWT signing secret");
    Ok(Secret::new(secret.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_jwt_secret(None, dir.path()).unwrap();
        let second = load_or_create_jwt_secret(None, dir.path()).unwrap();
        assert_eq!(first.expose(), second.expose());
        assert!(first.expose().len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
