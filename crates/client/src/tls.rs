//! Which servers the client believes over TLS: the system's root
//! certificates, plus any CA certificates it is given (a private CA, or a
//! self-signed server's own certificate). REST, the WebSocket and gRPC all
//! take their trust from one [`Trust`], on rustls with the ring provider. The
//! server's name is always verified; there is no way to turn that off.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::{ClientError, Result};

/// ALPN of REST and the WebSocket: the REST client speaks HTTP/1.1 only
/// (reqwest without `http2`), and a WebSocket upgrade needs HTTP/1.1.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The certificates a client trusts; cheap to clone.
///
/// `Trust::default()` is the system's roots. Clients made without a `Trust`
/// use that, so an `https://` server with a certificate from a public CA
/// works as it is.
#[derive(Clone)]
pub struct Trust {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// CA certificates trusted beside the system's roots.
    extra: Vec<CertificateDer<'static>>,
    /// Built on first use: a plain-`http` client never reads the system's store.
    roots: OnceLock<Arc<RootCertStore>>,
    http1: OnceLock<Arc<ClientConfig>>,
}

impl Default for Trust {
    /// One per process, shared by every client made without a `Trust`.
    fn default() -> Self {
        static SYSTEM: OnceLock<Trust> = OnceLock::new();
        SYSTEM
            .get_or_init(|| Trust {
                inner: Arc::new(Inner::default()),
            })
            .clone()
    }
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("extra_cas", &self.inner.extra.len())
            .finish()
    }
}

impl Trust {
    /// The system's root certificates only.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system's roots and every certificate in `pem` (one or more
    /// `CERTIFICATE` blocks). PEM holding no certificate is an error.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self> {
        let extra = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Trust(format!("reading the CA certificates: {e}")))?;
        if extra.is_empty() {
            return Err(ClientError::Trust(
                "no PEM CERTIFICATE block among the CA certificates".into(),
            ));
        }
        // A certificate rustls cannot take as a trust anchor is refused now,
        // not at the first connection.
        let mut check = RootCertStore::empty();
        for cert in &extra {
            check
                .add(cert.clone())
                .map_err(|e| ClientError::Trust(format!("a CA certificate is not usable: {e}")))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                extra,
                ..Inner::default()
            }),
        })
    }

    /// [`Trust::with_ca_pem`] of the file at `path`.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| ClientError::Trust(format!("reading {}: {e}", path.display())))?;
        Self::with_ca_pem(&pem).map_err(|e| match e {
            ClientError::Trust(reason) => {
                ClientError::Trust(format!("{}: {reason}", path.display()))
            }
            other => other,
        })
    }

    /// The roots: the system's (read once per process) and the extra CAs.
    fn roots(&self) -> Arc<RootCertStore> {
        self.inner
            .roots
            .get_or_init(|| {
                let mut roots = RootCertStore::empty();
                // Certificates of the system's store that rustls cannot use
                // are skipped, as every rustls client does.
                roots.add_parsable_certificates(system_roots().iter().cloned());
                roots.add_parsable_certificates(self.inner.extra.iter().cloned());
                Arc::new(roots)
            })
            .clone()
    }

    /// A rustls configuration offering `alpn`.
    fn config(&self, alpn: &[&[u8]]) -> ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls' default protocol versions")
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// The configuration of REST and WebSocket connections (HTTP/1.1).
    pub(crate) fn http1(&self) -> Arc<ClientConfig> {
        self.inner
            .http1
            .get_or_init(|| Arc::new(self.config(&[ALPN_HTTP1])))
            .clone()
    }

    /// gRPC's: tonic builds its own rustls configuration (ring, ALPN `h2`,
    /// the name of the endpoint's host) from these trust anchors.
    pub(crate) fn grpc(&self) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new().trust_anchors(self.roots().roots.clone())
    }
}

/// The system's root certificates, read once per process. A system without a
/// store has none: only CAs given explicitly are trusted then.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// An error and its causes, as one line: TLS failures (an unknown issuer, a
/// name the certificate does not hold) are the cause of a cause.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_a_certificate_is_refused() {
        let err = Trust::with_ca_pem(b"not a certificate").unwrap_err();
        assert!(matches!(err, ClientError::Trust(_)), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Trust::with_ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn the_rest_configuration_offers_http1_only() {
        let config = Trust::system().http1();
        assert_eq!(config.alpn_protocols, vec![ALPN_HTTP1.to_vec()]);
    }
}
