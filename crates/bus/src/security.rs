//! How a node proves itself to the Kafka brokers and checks them: TLS and
//! SASL (PLAIN, SCRAM-SHA-256/512), set alike on the producer, the consumer
//! and the admin client. The password never shows in `Debug`.

use std::fmt;
use std::path::PathBuf;

use rdkafka::config::ClientConfig;

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "plaintext" => Ok(Self::Plaintext),
            "ssl" => Ok(Self::Ssl),
            "sasl_plaintext" => Ok(Self::SaslPlaintext),
            "sasl_ssl" => Ok(Self::SaslSsl),
            _ => Err(format!(
                "kafka_security_protocol {text:?}: expected plaintext, ssl, sasl_plaintext or sasl_ssl"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// librdkafka's `sasl.mechanism`, among those that need no Kerberos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            _ => Err(format!(
                "kafka_sasl_mechanism {text:?}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The security settings of every Kafka client of a node.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    /// With `sasl_plaintext` or `sasl_ssl`.
    pub sasl: Option<Sasl>,
    /// PEM file of the CAs that vouch for the brokers (TLS); else the system's.
    pub ssl_ca_location: Option<PathBuf>,
    /// PEM certificate and key of this node, for brokers that ask for one (mutual TLS).
    pub ssl_certificate_location: Option<PathBuf>,
    pub ssl_key_location: Option<PathBuf>,
    /// The key file's passphrase, if it has one.
    pub ssl_key_password: Option<String>,
}

impl fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSecurity")
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field(
                "ssl_key_password",
                &self.ssl_key_password.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The settings as configured, before they are checked to fit together.
#[derive(Default)]
pub struct KafkaSecurityOptions {
    pub protocol: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
    pub ssl_ca_location: Option<PathBuf>,
    pub ssl_certificate_location: Option<PathBuf>,
    pub ssl_key_location: Option<PathBuf>,
    pub ssl_key_password: Option<String>,
}

impl KafkaSecurity {
    /// Checks that the options fit together: SASL settings need a `sasl_*`
    /// protocol and that protocol needs all three; TLS files need a TLS
    /// protocol; a certificate needs its key.
    pub fn new(options: KafkaSecurityOptions) -> Result<Self, String> {
        let protocol = options
            .protocol
            .as_deref()
            .map(SecurityProtocol::parse)
            .transpose()?
            .unwrap_or_default();
        let sasl_given = options.sasl_mechanism.is_some()
            || options.sasl_username.is_some()
            || options.sasl_password.is_some();
        let sasl = if protocol.uses_sasl() {
            match (
                options.sasl_mechanism,
                options.sasl_username,
                options.sasl_password,
            ) {
                (Some(mechanism), Some(username), Some(password)) => Some(Sasl {
                    mechanism: SaslMechanism::parse(&mechanism)?,
                    username,
                    password,
                }),
                _ => {
                    return Err(format!(
                        "kafka_security_protocol {} needs kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password",
                        protocol.as_str()
                    ))
                }
            }
        } else if sasl_given {
            return Err(
                "kafka_sasl_* settings need kafka_security_protocol sasl_ssl (or sasl_plaintext)"
                    .into(),
            );
        } else {
            None
        };
        let tls_given = options.ssl_ca_location.is_some()
            || options.ssl_certificate_location.is_some()
            || options.ssl_key_location.is_some()
            || options.ssl_key_password.is_some();
        if tls_given && !protocol.uses_tls() {
            return Err("kafka_ssl_* settings need kafka_security_protocol ssl or sasl_ssl".into());
        }
        if options.ssl_certificate_location.is_some() != options.ssl_key_location.is_some() {
            return Err(
                "kafka_ssl_certificate_location and kafka_ssl_key_location go together".into(),
            );
        }
        Ok(Self {
            protocol,
            sasl,
            ssl_ca_location: options.ssl_ca_location,
            ssl_certificate_location: options.ssl_certificate_location,
            ssl_key_location: options.ssl_key_location,
            ssl_key_password: options.ssl_key_password,
        })
    }

    /// Sets these on a client's configuration.
    pub fn apply(&self, client: &mut ClientConfig) {
        client.set("security.protocol", self.protocol.as_str());
        if let Some(sasl) = &self.sasl {
            client
                .set("sasl.mechanism", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        if let Some(ca) = &self.ssl_ca_location {
            client.set("ssl.ca.location", path(ca));
        }
        if let Some(certificate) = &self.ssl_certificate_location {
            client.set("ssl.certificate.location", path(certificate));
        }
        if let Some(key) = &self.ssl_key_location {
            client.set("ssl.key.location", path(key));
        }
        if let Some(password) = &self.ssl_key_password {
            client.set("ssl.key.password", password);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_ssl() -> KafkaSecurityOptions {
        KafkaSecurityOptions {
            protocol: Some("SASL_SSL".into()),
            sasl_mechanism: Some("scram-sha-512".into()),
            sasl_username: Some("palaver-node".into()),
            sasl_password: Some("hunter2-kafka".into()),
            ssl_ca_location: Some("/etc/palaver/kafka-ca.pem".into()),
            ssl_certificate_location: Some("/etc/palaver/node.pem".into()),
            ssl_key_location: Some("/etc/palaver/node.key".into()),
            ssl_key_password: Some("key-passphrase".into()),
        }
    }

    #[test]
    fn every_setting_reaches_the_client_configuration() {
        let security = KafkaSecurity::new(sasl_ssl()).unwrap();
        let mut client = ClientConfig::new();
        security.apply(&mut client);
        for (key, value) in [
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "palaver-node"),
            ("sasl.password", "hunter2-kafka"),
            ("ssl.ca.location", "/etc/palaver/kafka-ca.pem"),
            ("ssl.certificate.location", "/etc/palaver/node.pem"),
            ("ssl.key.location", "/etc/palaver/node.key"),
            ("ssl.key.password", "key-passphrase"),
        ] {
            assert_eq!(client.get(key), Some(value), "{key}");
        }
    }

    #[test]
    fn the_bundled_librdkafka_speaks_tls_and_scram() {
        // Built without OpenSSL, librdkafka refuses `sasl_ssl` and SCRAM here.
        let security = KafkaSecurity::new(KafkaSecurityOptions {
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            ssl_key_password: None,
            ..sasl_ssl()
        })
        .unwrap();
        let mut client = ClientConfig::new();
        security.apply(&mut client);
        let created: Result<rdkafka::producer::BaseProducer, _> =
            client.set("bootstrap.servers", "127.0.0.1:1").create();
        created.expect("librdkafka accepts SASL/SCRAM over TLS");
    }

    #[test]
    fn the_default_is_plaintext_without_credentials() {
        let security = KafkaSecurity::new(KafkaSecurityOptions::default()).unwrap();
        let mut client = ClientConfig::new();
        security.apply(&mut client);
        assert_eq!(client.get("security.protocol"), Some("plaintext"));
        assert_eq!(client.get("sasl.password"), None);
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let shown = format!("{:?}", KafkaSecurity::new(sasl_ssl()).unwrap());
        assert!(!shown.contains("hunter2-kafka"), "{shown}");
        assert!(!shown.contains("key-passphrase"), "{shown}");
        assert!(shown.contains("palaver-node"), "{shown}");
    }

    #[test]
    fn settings_that_do_not_fit_together_are_refused() {
        let plaintext_with_sasl = KafkaSecurityOptions {
            protocol: None,
            ..sasl_ssl()
        };
        assert!(KafkaSecurity::new(plaintext_with_sasl).is_err());
        let sasl_without_password = KafkaSecurityOptions {
            sasl_password: None,
            ..sasl_ssl()
        };
        assert!(KafkaSecurity::new(sasl_without_password).is_err());
        let tls_files_without_tls = KafkaSecurityOptions {
            protocol: Some("sasl_plaintext".into()),
            ..sasl_ssl()
        };
        assert!(KafkaSecurity::new(tls_files_without_tls).is_err());
        let certificate_without_key = KafkaSecurityOptions {
            ssl_key_location: None,
            ..sasl_ssl()
        };
        assert!(KafkaSecurity::new(certificate_without_key).is_err());
        for bad in [("protocol", "tls"), ("mechanism", "GSSAPI")] {
            let options = match bad.0 {
                "protocol" => KafkaSecurityOptions {
                    protocol: Some(bad.1.into()),
                    ..sasl_ssl()
                },
                _ => KafkaSecurityOptions {
                    sasl_mechanism: Some(bad.1.into()),
                    ..sasl_ssl()
                },
            };
            assert!(KafkaSecurity::new(options).is_err(), "{bad:?}");
        }
    }
}
