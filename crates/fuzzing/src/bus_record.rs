use palaver_domain::bus_auth::{ClusterKey, Record, Refused};
use palaver_domain::events;

/// The secret of the cluster the harness plays a node of.
const SECRET: &[u8] = b"the fuzzed cluster's own secret.";

/// A record another node, or anyone able to produce to the Kafka topic,
/// wrote: `data` is split into the record key, the `origin` header, the
/// `mac` header (absent, the right one, a near miss, or any 64 bytes) and
/// the payload, which a node only reads once the MAC checks.
pub fn bus_record(data: &[u8]) {
    let [key_len, origin_len, mode, rest @ ..] = data else {
        return;
    };
    let (key, rest) = rest.split_at((*key_len as usize % 24).min(rest.len()));
    let (origin, rest) = rest.split_at((*origin_len as usize % 24).min(rest.len()));
    let cluster = ClusterKey::new(SECRET);
    let (mac, payload): (Option<Vec<u8>>, &[u8]) = match mode % 4 {
        0 => (None, rest),
        1 | 3 => {
            let record = Record {
                key,
                origin,
                payload: rest,
            };
            let mut mac = cluster.sign(record).into_bytes();
            if mode % 4 == 3 {
                let at = rest.len() % mac.len();
                mac[at] = if mac[at] == b'0' { b'1' } else { b'0' };
            }
            (Some(mac), rest)
        }
        _ => {
            let (mac, payload) = rest.split_at(64.min(rest.len()));
            (Some(mac.to_vec()), payload)
        }
    };
    let record = Record {
        key,
        origin,
        payload,
    };
    let opened = cluster.open(record, mac.as_deref());
    let genuine = cluster.sign(record);
    let signed = mac
        .as_deref()
        .is_some_and(|mac| mac.eq_ignore_ascii_case(genuine.as_bytes()));
    match &opened {
        Err(Refused::MissingMac) => assert!(mac.is_none()),
        Err(Refused::BadMac) => assert!(mac.is_some() && !signed, "the right MAC refused"),
        // Only what the cluster signed reaches the decoder.
        Ok(_) | Err(Refused::Malformed(_)) => assert!(signed, "opened without the right MAC"),
    }
    if let Ok(Some(event)) = opened {
        // What a node believes means the same when it writes it on.
        let again = events::encode(&event);
        assert_eq!(
            events::decode(again.as_bytes()).unwrap(),
            Some(event),
            "{again}"
        );
    }
}
