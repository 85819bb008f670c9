//! TLS termination of the public listener: the certificate and key, read
//! from PEM files and read again when those change; the acceptor, which
//! offers HTTP/2 and HTTP/1.1 by ALPN on one port; the
//! `Strict-Transport-Security` header; and the plain-HTTP listener's one
//! answer, a redirect to https.
//!
//! A renewal replaces the files: new handshakes get the new certificate,
//! open connections keep theirs. Files that do not load (half written, a
//! key that is not the certificate's) are logged and the current
//! certificate kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::http::header::{HOST, LOCATION};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How often the certificate files are looked at (a `stat` each). A change
/// is read once it has held still from one look to the next, so a file is
/// not read while it is being written.
pub const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(1);

/// ALPN protocols, in the server's order of preference.
const H2: &[u8] = b"h2";
const HTTP_1_1: &[u8] = b"http/1.1";

/// What the listener needs to speak TLS.
pub struct Tls {
    /// Offers `h2` and `http/1.1`.
    pub acceptor: TlsAcceptor,
    /// The same certificate, offering `http/1.1` only: a refused connection
    /// is answered with an HTTP/1.1 response.
    pub refusal_acceptor: TlsAcceptor,
    /// `Strict-Transport-Security`, for every response.
    pub hsts: HeaderValue,
    certificate: Arc<ReloadingCertificate>,
}

impl Tls {
    /// Reads the certificate and key (an error names the file and what is
    /// wrong with it).
    pub fn load(cert: &Path, key: &Path, hsts_max_age: Duration) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = CertificateFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
        };
        let stamps = files.stamps();
        let current = files.read(&provider)?;
        let certificate = Arc::new(ReloadingCertificate {
            files,
            provider: provider.clone(),
            current: RwLock::new(Arc::new(current)),
            loaded_stamps: stamps,
        });
        let config = |alpn: &[&[u8]]| -> anyhow::Result<TlsAcceptor> {
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .context("the TLS protocol versions")?
                .with_no_client_auth()
                .with_cert_resolver(certificate.clone());
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(TlsAcceptor::from(Arc::new(config)))
        };
        Ok(Self {
            acceptor: config(&[H2, HTTP_1_1])?,
            refusal_acceptor: config(&[HTTP_1_1])?,
            hsts: hsts_header(hsts_max_age),
            certificate,
        })
    }

    /// Looks at the files every `RELOAD_CHECK_EVERY` until `shutdown`, and
    /// serves what they hold once they changed and load.
    pub fn spawn_reload(&self, shutdown: CancellationToken) {
        let certificate = self.certificate.clone();
        tokio::spawn(async move { certificate.follow_files(shutdown).await });
    }
}

/// `max-age` only: `includeSubDomains` and `preload` commit other hosts and
/// the browsers' built-in lists, which is the operator's decision to make
/// (a proxy in front can add them).
fn hsts_header(max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("max-age={}", max_age.as_secs()))
        .expect("digits are a valid header value")
}

#[derive(Debug)]
struct CertificateFiles {
    cert: PathBuf,
    key: PathBuf,
}

/// What a file looked like: another length, time or inode (a symlink moved
/// to a new file, as certbot and Kubernetes secrets do) is a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        // Follows symlinks: the file served, not the link.
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode,
        })
    }
}

/// Both files' stamps; `None` for a file that is not there (yet).
type Stamps = [Option<Stamp>; 2];

impl CertificateFiles {
    fn stamps(&self) -> Stamps {
        [Stamp::of(&self.cert), Stamp::of(&self.key)]
    }

    /// The certified key, after recording its certificate's end date
    /// (`palaver_tls_certificate_expiry_timestamp_seconds`).
    fn read(&self, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
        let cert_pem = std::fs::read(&self.cert)
            .with_context(|| format!("reading the TLS certificate {}", self.cert.display()))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("the TLS certificate {}: {e}", self.cert.display()))?;
        anyhow::ensure!(
            !chain.is_empty(),
            "the TLS certificate {} holds no PEM certificate",
            self.cert.display()
        );
        let key_pem = std::fs::read(&self.key)
            .with_context(|| format!("reading the TLS key {}", self.key.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            anyhow::anyhow!(
                "the TLS key {}: {e} (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)",
                self.key.display()
            )
        })?;
        let not_after = not_after(&chain[0])
            .with_context(|| format!("the TLS certificate {}", self.cert.display()))?;
        let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
            anyhow::anyhow!(
                "the TLS key {} does not fit the certificate {}: {e}",
                self.key.display(),
                self.cert.display()
            )
        })?;
        metrics::gauge!("palaver_tls_certificate_expiry_timestamp_seconds").set(not_after as f64);
        Ok(certified)
    }
}

/// When the certificate stops being valid, in seconds since the Unix epoch.
fn not_after(certificate: &CertificateDer<'_>) -> anyhow::Result<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| anyhow::anyhow!("its first certificate does not parse: {e}"))?;
    Ok(parsed.validity().not_after.timestamp())
}

/// The certificate every new handshake gets.
#[derive(Debug)]
struct ReloadingCertificate {
    files: CertificateFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamps when `current` was read.
    loaded_stamps: Stamps,
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl ReloadingCertificate {
    async fn follow_files(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(RELOAD_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The stamps last read (or tried), and those of the last look.
        let mut tried = self.loaded_stamps;
        let mut seen = tried;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = self.files.stamps();
            let settled = now == seen;
            seen = now;
            if now == tried || !settled {
                continue;
            }
            tried = now;
            let this = self.clone();
            let read = tokio::task::spawn_blocking(move || this.files.read(&this.provider)).await;
            match read {
                Ok(Ok(certificate)) => {
                    *self.current.write() = Arc::new(certificate);
                    metrics::counter!("palaver_tls_reloads_total", "result" => "loaded")
                        .increment(1);
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
                Ok(Err(err)) => {
                    metrics::counter!("palaver_tls_reloads_total", "result" => "failed")
                        .increment(1);
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "the TLS files changed but do not load; serving the certificate read before"
                    );
                }
                Err(err) => tracing::error!(error = %err, "reading the TLS files failed"),
            }
        }
    }
}

/// The plain-HTTP listener's whole service: 308 to the same host and path
/// over https, on `https_port` (left out when 443). No
/// `Strict-Transport-Security` here: browsers take it only over https.
pub fn redirect_router(https_port: u16) -> Router {
    Router::new().fallback(move |request: Request<axum::body::Body>| async move {
        let (parts, _) = request.into_parts();
        match https_location(&parts.uri, &parts.headers, https_port) {
            Some(location) => {
                (StatusCode::PERMANENT_REDIRECT, [(LOCATION, location)]).into_response()
            }
            None => bad_host(),
        }
    })
}

fn bad_host() -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        r#"{"error":{"code":"bad_request","message":"this address only redirects to https, and needs a valid Host"}}"#,
    )
        .into_response()
}

/// `https://HOST[:PORT]/PATH?QUERY` for a request to `uri` (HTTP/2 and
/// absolute-form requests carry their authority there, the others in
/// `Host`), or `None` without a valid host.
fn https_location(uri: &Uri, headers: &HeaderMap, https_port: u16) -> Option<HeaderValue> {
    let authority = match uri.authority() {
        Some(authority) => authority.clone(),
        None => headers
            .get(HOST)?
            .to_str()
            .ok()?
            .parse::<Authority>()
            .ok()?,
    };
    let host = authority.host();
    if host.is_empty() || authority.as_str().contains('@') {
        return None;
    }
    let port = match https_port {
        443 => String::new(),
        port => format!(":{port}"),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    HeaderValue::from_str(&format!("https://{host}{port}{path}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(uri: &str, host: Option<&str>, port: u16) -> Option<String> {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        }
        https_location(&uri.parse().unwrap(), &headers, port)
            .map(|value| value.to_str().unwrap().to_owned())
    }

    #[test]
    fn redirects_keep_host_path_and_query_and_name_the_https_port() {
        let cases = [
            (
                "/rooms?x=1",
                Some("chat.example"),
                443,
                "https://chat.example/rooms?x=1",
            ),
            (
                "/",
                Some("chat.example:80"),
                8443,
                "https://chat.example:8443/",
            ),
            (
                "/a",
                Some("[2001:db8::1]:8080"),
                443,
                "https://[2001:db8::1]/a",
            ),
            ("http://chat.example/b", None, 443, "https://chat.example/b"),
            (
                "http://chat.example:80",
                Some("other.example"),
                443,
                "https://chat.example/",
            ),
        ];
        for (uri, host, port, expected) in cases {
            assert_eq!(
                location(uri, host, port).as_deref(),
                Some(expected),
                "{uri} {host:?}"
            );
        }
    }

    #[test]
    fn a_missing_or_invalid_host_gets_no_redirect() {
        for host in [
            None,
            Some(""),
            Some("a b"),
            Some("user@chat.example"),
            Some("chat.example/x"),
        ] {
            assert_eq!(location("/", host, 443), None, "{host:?}");
        }
    }

    #[test]
    fn hsts_says_max_age_only() {
        let year = Duration::from_secs(365 * 24 * 3600);
        assert_eq!(hsts_header(year), "max-age=31536000");
        assert_eq!(hsts_header(Duration::ZERO), "max-age=0");
    }
}
