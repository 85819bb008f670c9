//! Which records on the cluster bus a node wrote: every record a node
//! produces carries an HMAC-SHA256 of its key, origin and payload, keyed by a
//! secret that only the nodes know (generated once, kept in the store they
//! share). A node believes a record only when that MAC checks, before it
//! reads anything else of it; so a client that can merely produce to the
//! topic cannot speak for a user or pre-empt a real message's seq.
//!
//! A genuine record replayed is still genuine: replays are made harmless by
//! what receives them (sessions drop seqs they delivered, `remote::still_true`
//! asks the store), not here. `docs/events.md` describes the header.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use ring::hmac;

use crate::error::{Error, Result};
use crate::events::{self, DecodeError, DomainEvent};
use crate::store::KeyStore;

/// The record header holding the MAC: 64 lowercase hex digits.
pub const MAC_HEADER: &str = "mac";

/// Bytes of a generated cluster secret.
const SECRET_BYTES: usize = 32;

/// Starts every MAC's input, so a MAC of this scheme means nothing elsewhere
/// (and a later scheme can tell itself apart).
const CONTEXT: &[u8] = b"palaver.bus.v1";

/// What a MAC covers: the record as the broker carries it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record key (a room or user id in decimal, or a node's hash).
    pub key: &'a [u8],
    /// The `origin` header: the node whose transaction wrote the event.
    pub origin: &'a [u8],
    /// The event's JSON (`crate::events`).
    pub payload: &'a [u8],
}

/// Why a record was not believed.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("record without a MAC")]
    MissingMac,
    #[error("record whose MAC does not check")]
    BadMac,
    #[error(transparent)]
    Malformed(#[from] DecodeError),
}

impl Refused {
    /// The metric label: `missing_mac`, `bad_mac` or `malformed`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::MissingMac => "missing_mac",
            Refused::BadMac => "bad_mac",
            Refused::Malformed(_) => "malformed",
        }
    }
}

/// The key every node of one cluster signs and checks records with.
#[derive(Clone)]
pub struct ClusterKey(hmac::Key);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The cluster's key: the secret the store keeps, created by the first
    /// node to ask (of several starting at once on an empty store, one's
    /// candidate is kept and all read it back).
    pub async fn from_store(store: &dyn KeyStore) -> Result<Self> {
        let mut candidate = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut candidate);
        let stored = store.cluster_secret(&STANDARD.encode(candidate)).await?;
        let secret = STANDARD
            .decode(stored.trim())
            .ok()
            .filter(|secret| secret.len() >= SECRET_BYTES)
            .ok_or_else(|| {
                tracing::error!("the stored cluster secret is not 32 base64 bytes");
                Error::Internal
            })?;
        Ok(Self::new(&secret))
    }

    /// The MAC header's value for `record`.
    pub fn sign(&self, record: Record<'_>) -> String {
        let tag = hmac::sign(&self.0, &input(record));
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `mac` (the header's value, if any) is `record`'s. Checked in
    /// constant time.
    pub fn verify(
        &self,
        record: Record<'_>,
        mac: Option<&[u8]>,
    ) -> std::result::Result<(), Refused> {
        let mac = mac.ok_or(Refused::MissingMac)?;
        let tag = parse_hex(mac).ok_or(Refused::BadMac)?;
        hmac::verify(&self.0, &input(record), &tag).map_err(|_| Refused::BadMac)
    }

    /// A record from another node: its event if the MAC checks and the
    /// payload is one; `Ok(None)` for an event type or version this build
    /// does not know (see `events::decode`).
    pub fn open(
        &self,
        record: Record<'_>,
        mac: Option<&[u8]>,
    ) -> std::result::Result<Option<DomainEvent>, Refused> {
        self.verify(record, mac)?;
        Ok(events::decode(record.payload)?)
    }
}

/// `CONTEXT`, then each part as its length (8 bytes, big-endian) and its
/// bytes: no two different records give the same input.
fn input(record: Record<'_>) -> Vec<u8> {
    let mut input = Vec::with_capacity(
        CONTEXT.len() + 24 + record.key.len() + record.origin.len() + record.payload.len(),
    );
    input.extend_from_slice(CONTEXT);
    for part in [record.key, record.origin, record.payload] {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part);
    }
    input
}

/// 64 hex digits (either case) as 32 bytes.
fn parse_hex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = br#"{"v":1,"type":"member_left","room_id":3,"user_id":9}"#;

    fn record(payload: &[u8]) -> Record<'_> {
        Record {
            key: b"3",
            origin: b"node-a",
            payload,
        }
    }

    #[test]
    fn a_signed_record_opens_and_any_change_to_it_is_refused() {
        let key = ClusterKey::new(b"one cluster's secret, 32 bytes..");
        let mac = key.sign(record(PAYLOAD));
        assert_eq!(mac.len(), 64);
        assert!(key
            .open(record(PAYLOAD), Some(mac.as_bytes()))
            .unwrap()
            .is_some());
        assert!(key
            .verify(record(PAYLOAD), Some(mac.to_uppercase().as_bytes()))
            .is_ok());

        let other_payload = br#"{"v":1,"type":"member_left","room_id":3,"user_id":8}"#;
        let changed = [
            record(other_payload),
            Record {
                key: b"4",
                ..record(PAYLOAD)
            },
            Record {
                origin: b"node-b",
                ..record(PAYLOAD)
            },
            // The same bytes split differently between the parts.
            Record {
                key: b"3n",
                origin: b"ode-a",
                ..record(PAYLOAD)
            },
        ];
        for forged in changed {
            assert!(
                matches!(
                    key.verify(forged, Some(mac.as_bytes())),
                    Err(Refused::BadMac)
                ),
                "{forged:?}"
            );
        }
        let other_cluster = ClusterKey::new(b"another cluster's secret, 32 b..");
        assert!(matches!(
            other_cluster.verify(record(PAYLOAD), Some(mac.as_bytes())),
            Err(Refused::BadMac)
        ));
    }

    #[test]
    fn a_missing_or_malformed_mac_is_refused_before_the_payload_is_read() {
        let key = ClusterKey::new(&[7; 32]);
        let garbage = b"not json at all";
        assert!(matches!(
            key.open(record(garbage), None),
            Err(Refused::MissingMac)
        ));
        for mac in [
            &b""[..],
            b"00",
            &[b'z'; 64],
            &[b'0'; 66],
            "é".repeat(32).as_bytes(),
        ] {
            assert!(
                matches!(key.open(record(garbage), Some(mac)), Err(Refused::BadMac)),
                "{mac:?}"
            );
        }
        // Signed garbage gets as far as the decoder.
        let mac = key.sign(record(garbage));
        assert!(matches!(
            key.open(record(garbage), Some(mac.as_bytes())),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn the_documented_mac_is_the_computed_one() {
        // docs/events.md gives this construction for readers who verify.
        let key = ClusterKey::new(b"secret");
        let mut input = b"palaver.bus.v1".to_vec();
        for part in [&b"3"[..], b"node-a", PAYLOAD] {
            input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            input.extend_from_slice(part);
        }
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"secret"), &input);
        let hex: String = expected
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(key.sign(record(PAYLOAD)), hex);
    }
}
