//! The SignalR codec on what a client may send: framing and limits checked first, every message read back as written.

use palaver_protocol::signalr::{
    read_handshake, records, HandshakeResponse, HubMessage, Limits, SignalRError, SignalRErrorKind,
    PROTOCOL, PROTOCOL_VERSION, RECORD_SEPARATOR,
};
use serde_json::Value;

/// Small enough that the fuzzer reaches both limits.
const LIMITS: Limits = Limits {
    max_record_bytes: 512,
    max_records: 8,
};

/// One WebSocket message after a selector byte: even, the connection's
/// first (a handshake, then perhaps hub messages); odd, a later one.
pub fn signalr_message(data: &[u8]) {
    let [selector, input @ ..] = data else {
        return;
    };
    let message = if selector % 2 == 0 {
        match read_handshake(input, &LIMITS) {
            Ok((request, rest)) => {
                assert_eq!(
                    (request.protocol.as_str(), request.version),
                    (PROTOCOL, PROTOCOL_VERSION)
                );
                assert!(input.ends_with(rest) && rest.len() < input.len());
                rest
            }
            Err(err) => {
                // The refusal is one well-formed record, whatever it quotes.
                let response = HandshakeResponse::error(err.message.clone()).encode();
                assert_eq!(response.last(), Some(&RECORD_SEPARATOR));
                let body = &response[..response.len() - 1];
                assert!(!body.contains(&RECORD_SEPARATOR));
                let again: HandshakeResponse = serde_json::from_slice(body).unwrap();
                assert_eq!(again.error, Some(err.message));
                return;
            }
        }
    } else {
        input
    };
    let framing = framing(message);
    match records(message, &LIMITS) {
        Err(err) => assert_eq!(Err(err.kind), framing, "framing"),
        Ok(decoded) => {
            assert_eq!(Ok(()), framing, "framing");
            let mut count = 0;
            for result in decoded {
                count += 1;
                match result {
                    Ok(message) => written_back(&message),
                    Err(SignalRError { kind, .. }) => assert!(
                        matches!(
                            kind,
                            SignalRErrorKind::NotJson | SignalRErrorKind::InvalidMessage
                        ),
                        "{kind:?} after the framing was checked"
                    ),
                }
            }
            assert!(count <= LIMITS.max_records);
        }
    }
}

/// The framing verdict, written independently of the codec: whole records
/// only, as many as allowed, none too long.
fn framing(message: &[u8]) -> Result<(), SignalRErrorKind> {
    if message.is_empty() {
        return Ok(());
    }
    if message.last() != Some(&RECORD_SEPARATOR) {
        return Err(SignalRErrorKind::IncompleteRecord);
    }
    let records: Vec<&[u8]> = message[..message.len() - 1]
        .split(|&b| b == RECORD_SEPARATOR)
        .collect();
    // The first limit crossed, reading in order.
    for (index, record) in records.iter().enumerate() {
        if index >= LIMITS.max_records {
            return Err(SignalRErrorKind::TooManyRecords);
        }
        if record.len() > LIMITS.max_record_bytes {
            return Err(SignalRErrorKind::RecordTooLarge);
        }
    }
    Ok(())
}

/// Written and read again, a message is the same message (numbers within
/// the precision serde_json's default float reading keeps).
fn written_back(message: &HubMessage) {
    let bytes = message.encode();
    assert_eq!(bytes.last(), Some(&RECORD_SEPARATOR));
    let record = &bytes[..bytes.len() - 1];
    assert!(
        !record.contains(&RECORD_SEPARATOR),
        "a separator escaped JSON"
    );
    let again = HubMessage::decode(record)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(record)));
    let (before, after) = (
        serde_json::to_value(message).unwrap(),
        serde_json::to_value(&again).unwrap(),
    );
    assert!(
        same(&before, &after),
        "{before} became {after}: {}",
        String::from_utf8_lossy(record)
    );
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                        (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
                    }
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Hub-message-looking text: the properties of every type, values of
    /// each JSON kind, separators, and the handshake.
    fn signalrish() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            prop_oneof![
                Just("{\"protocol\":\"json\",\"version\":1}\u{1e}"),
                Just("{\"protocol\":\"messagepack\",\"version\":1}\u{1e}"),
                Just("{\"type\":"),
                Just("\"type\":"),
                Just("\"invocationId\":\"0\""),
                Just("\"invocationId\":"),
                Just("\"target\":\"send\""),
                Just("\"target\":"),
                Just("\"arguments\":["),
                Just("\"streamIds\":[\"s\"]"),
                Just("\"item\":"),
                Just("\"result\":"),
                Just("\"error\":\"not_found: x\""),
                Just("\"allowReconnect\":true"),
                Just("\"sequenceId\":"),
                Just("\"headers\":{\"a\":\"b\"}"),
                Just("{\"room\":7,\"body\":\"hi\",\"client_id\":\"c1\"}"),
                Just("{"),
                Just("}"),
                Just("["),
                Just("]"),
                Just(","),
                Just(":"),
                Just("null"),
                Just("true"),
                Just("\u{1e}"),
                Just("}\u{1e}"),
            ]
            .prop_map(str::to_owned),
            (0i64..12).prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            "\\PC{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        (any::<u8>(), prop::collection::vec(token, 0..32)).prop_map(|(selector, tokens)| {
            std::iter::once(selector)
                .chain(tokens.concat().into_bytes())
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn generated_inputs(data in prop_oneof![signalrish(), prop::collection::vec(any::<u8>(), 0..256)]) {
            signalr_message(&data);
        }
    }

    #[test]
    fn every_kept_input_passes() {
        let inputs = crate::kept_inputs("signalr_message", &["corpus", "regressions"]);
        assert!(inputs.len() >= 5, "seed inputs for signalr_message");
        for input in inputs {
            signalr_message(&input);
        }
    }

    #[test]
    fn the_seeds_decode_to_messages() {
        // The seeds are what real clients send: they must decode, or the
        // fuzzer starts from errors.
        for input in crate::kept_inputs("signalr_message", &["corpus"]) {
            let message = match input[0] % 2 {
                0 => read_handshake(&input[1..], &LIMITS).unwrap().1,
                _ => &input[1..],
            };
            for decoded in records(message, &LIMITS).unwrap() {
                decoded.unwrap();
            }
        }
    }
}
