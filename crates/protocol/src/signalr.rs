//! The SignalR JSON hub protocol as a pure codec: the negotiate answer, the handshake, hub messages.
//!
//! As dotnet/aspnetcore documents it (`src/SignalR/docs/specs/HubProtocol.md`,
//! `TransportProtocols.md`): after `POST …/negotiate?negotiateVersion=1`
//! the client opens the WebSocket, sends `{"protocol":"json","version":1}`
//! and the server answers `{}` (or `{"error":"…"}` and closes). From then
//! on every message is a JSON object with a numeric `type`, each ended by
//! the record separator 0x1E; one WebSocket message holds whole records
//! only. Unknown properties are skipped and unknown message types ignored,
//! as the .NET reader does.
//!
//! The mapping onto Palaver (docs/protocol.md) is the transport's: a hub
//! method or client method is a frame `type`, its single argument the
//! frame's other fields; an answer is a completion carrying the `ack`'s
//! fields, or an error whose message starts with the machine code.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Ends every handshake and hub message.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The bounds on what one WebSocket message may make the codec decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One record, its separator left out.
    pub max_record_bytes: usize,
    /// Records in one WebSocket message.
    pub max_records: usize,
}

/// Why input is not the JSON hub protocol, or not a version served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRError {
    pub kind: SignalRErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalRErrorKind {
    /// A message that does not end with the record separator: on a
    /// WebSocket every message is whole, so the rest will not come.
    IncompleteRecord,
    /// Over [`Limits::max_record_bytes`].
    RecordTooLarge,
    /// Over [`Limits::max_records`].
    TooManyRecords,
    /// A record that is not one JSON value.
    NotJson,
    /// JSON, but not a message: a required property missing or mistyped,
    /// both `result` and `error` in a completion.
    InvalidMessage,
    /// A handshake asking for another protocol (`messagepack`) or version.
    UnsupportedProtocol,
}

impl SignalRError {
    fn new(kind: SignalRErrorKind, message: impl Into<String>) -> SignalRError {
        SignalRError {
            kind,
            message: message.into(),
        }
    }

    /// Palaver's machine code for the error (docs/protocol.md).
    pub const fn code(&self) -> &'static str {
        match self.kind {
            SignalRErrorKind::IncompleteRecord | SignalRErrorKind::NotJson => "malformed_frame",
            SignalRErrorKind::RecordTooLarge | SignalRErrorKind::TooManyRecords => {
                "frame_too_large"
            }
            SignalRErrorKind::InvalidMessage | SignalRErrorKind::UnsupportedProtocol => {
                "invalid_frame"
            }
        }
    }

    fn from_json(err: serde_json::Error) -> SignalRError {
        use serde_json::error::Category;
        let kind = match err.classify() {
            Category::Data => SignalRErrorKind::InvalidMessage,
            Category::Io | Category::Syntax | Category::Eof => SignalRErrorKind::NotJson,
        };
        SignalRError::new(kind, err.to_string())
    }
}

impl fmt::Display for SignalRError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for SignalRError {}

/// The answer to `POST /hubs/chat/negotiate?negotiateVersion=1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NegotiateResponse {
    pub connection_id: String,
    /// What the client passes back as `?id=` when it opens the WebSocket.
    pub connection_token: String,
    pub negotiate_version: u32,
    pub available_transports: Vec<AvailableTransport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableTransport {
    pub transport: TransportType,
    pub transfer_formats: Vec<TransferFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransportType {
    WebSockets,
    ServerSentEvents,
    LongPolling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferFormat {
    Text,
    Binary,
}

impl NegotiateResponse {
    /// Negotiate version 1 offering what Palaver serves: WebSockets, text
    /// (the JSON protocol).
    pub fn websockets(
        connection_id: impl Into<String>,
        connection_token: impl Into<String>,
    ) -> NegotiateResponse {
        NegotiateResponse {
            connection_id: connection_id.into(),
            connection_token: connection_token.into(),
            negotiate_version: 1,
            available_transports: vec![AvailableTransport {
                transport: TransportType::WebSockets,
                transfer_formats: vec![TransferFormat::Text],
            }],
        }
    }
}

/// The client's first record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    pub protocol: String,
    pub version: i64,
}

/// The only protocol served, and its version.
pub const PROTOCOL: &str = "json";
pub const PROTOCOL_VERSION: i64 = 1;

/// Reads the handshake from the start of the connection's first message:
/// the request, and what follows its separator in the same message (hub
/// messages, to read with [`records`]). An error's message is what
/// [`HandshakeResponse::error`] should say before the connection closes.
pub fn read_handshake<'a>(
    message: &'a [u8],
    limits: &Limits,
) -> Result<(HandshakeRequest, &'a [u8]), SignalRError> {
    let window = &message[..message.len().min(limits.max_record_bytes.saturating_add(1))];
    let Some(end) = window.iter().position(|&b| b == RECORD_SEPARATOR) else {
        return Err(if message.len() > limits.max_record_bytes {
            too_large(limits)
        } else {
            incomplete()
        });
    };
    let request: HandshakeRequest = from_object(&message[..end])?;
    if request.protocol != PROTOCOL {
        let shown: String = request.protocol.chars().take(64).collect();
        return Err(SignalRError::new(
            SignalRErrorKind::UnsupportedProtocol,
            format!("Requested protocol '{shown}' is not available."),
        ));
    }
    if request.version != PROTOCOL_VERSION {
        return Err(SignalRError::new(
            SignalRErrorKind::UnsupportedProtocol,
            format!(
                "The server does not support version {} of the '{PROTOCOL}' protocol.",
                request.version
            ),
        ));
    }
    Ok((request, &message[end + 1..]))
}

/// The server's answer to the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandshakeResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HandshakeResponse {
    /// `{}`: the handshake succeeded.
    pub fn ok() -> HandshakeResponse {
        HandshakeResponse::default()
    }

    pub fn error(message: impl Into<String>) -> HandshakeResponse {
        HandshakeResponse {
            error: Some(message.into()),
        }
    }

    /// The record, separator included.
    pub fn encode(&self) -> Vec<u8> {
        record(self)
    }
}

/// The records of one WebSocket message, after the handshake. The framing
/// is checked before anything is decoded: a message that does not end with
/// the separator, holds more than [`Limits::max_records`] records or one
/// longer than [`Limits::max_record_bytes`] is refused whole.
pub fn records<'a>(message: &'a [u8], limits: &Limits) -> Result<Records<'a>, SignalRError> {
    let Some(body) = message.strip_suffix(&[RECORD_SEPARATOR]) else {
        return if message.is_empty() {
            Ok(Records { rest: message })
        } else {
            Err(incomplete())
        };
    };
    for (index, record) in body.split(|&b| b == RECORD_SEPARATOR).enumerate() {
        if index == limits.max_records {
            return Err(SignalRError::new(
                SignalRErrorKind::TooManyRecords,
                format!("more than {} records in one message", limits.max_records),
            ));
        }
        if record.len() > limits.max_record_bytes {
            return Err(too_large(limits));
        }
    }
    Ok(Records { rest: message })
}

/// Each record's hub message, in order.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl Iterator for Records<'_> {
    type Item = Result<HubMessage, SignalRError>;

    fn next(&mut self) -> Option<Self::Item> {
        let end = self.rest.iter().position(|&b| b == RECORD_SEPARATOR)?;
        let (record, rest) = (&self.rest[..end], &self.rest[end + 1..]);
        self.rest = rest;
        Some(HubMessage::decode(record))
    }
}

fn incomplete() -> SignalRError {
    SignalRError::new(
        SignalRErrorKind::IncompleteRecord,
        "a message must end with the record separator 0x1E",
    )
}

fn too_large(limits: &Limits) -> SignalRError {
    SignalRError::new(
        SignalRErrorKind::RecordTooLarge,
        format!("a record is larger than {} octets", limits.max_record_bytes),
    )
}

/// A record that must be a JSON object: serde would also read a struct
/// from an array of its fields, which no SignalR peer writes.
fn from_object<T: serde::de::DeserializeOwned>(record: &[u8]) -> Result<T, SignalRError> {
    let first = record.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(record).map_err(SignalRError::from_json)?;
        return Err(SignalRError::new(
            SignalRErrorKind::InvalidMessage,
            "a record must be a JSON object",
        ));
    }
    serde_json::from_slice(record).map_err(SignalRError::from_json)
}

fn record(value: &impl Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec(value).expect("hub messages serialize");
    out.push(RECORD_SEPARATOR);
    out
}

/// The record of a non-blocking invocation of `target` whose one argument
/// is `argument_json` (JSON, written as it is): what the server writes for
/// each frame, around bytes encoded once for every recipient.
pub fn invocation_record(target: &str, argument_json: &str) -> String {
    let target = serde_json::to_string(target).expect("strings serialize");
    format!("{{\"type\":1,\"target\":{target},\"arguments\":[{argument_json}]}}\u{1e}")
}

/// A hub message (its `type`: 1 to 9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub enum HubMessage {
    /// 1: call `target` with `arguments`; without an `invocation_id` the
    /// caller expects no answer (non-blocking).
    Invocation {
        invocation_id: Option<String>,
        target: String,
        arguments: Vec<Value>,
        /// Streams the caller will upload to the call.
        stream_ids: Vec<String>,
    },
    /// 2: one item of a stream.
    StreamItem { invocation_id: String, item: Value },
    /// 3: the end of an invocation.
    Completion {
        invocation_id: String,
        outcome: Outcome,
    },
    /// 4: call `target`, expecting a stream of items.
    StreamInvocation {
        invocation_id: String,
        target: String,
        arguments: Vec<Value>,
        stream_ids: Vec<String>,
    },
    /// 5: the caller no longer wants the answer.
    CancelInvocation { invocation_id: String },
    /// 6: keep-alive; nothing answers it.
    Ping,
    /// 7: the sender closes the connection; `allow_reconnect` tells a
    /// client with automatic reconnects to use them.
    Close {
        error: Option<String>,
        allow_reconnect: bool,
    },
    /// 8: stateful reconnect's acknowledgement. Palaver never offers
    /// stateful reconnect (its own seq and resume are the recovery), so a
    /// client has no reason to send it; it is read to be ignored.
    Ack { sequence_id: u64 },
    /// 9: stateful reconnect's restart point; read to be ignored, like `Ack`.
    Sequence { sequence_id: u64 },
    /// A type this version of the protocol does not define: ignored, as
    /// the .NET reader ignores it.
    Other { kind: i64 },
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No `result` and no `error`: a method without a return value.
    Void,
    Result(Value),
    Error(String),
}

impl HubMessage {
    /// One record, its separator left out.
    pub fn decode(record: &[u8]) -> Result<HubMessage, SignalRError> {
        from_object(record)
    }

    /// The record, separator included.
    pub fn encode(&self) -> Vec<u8> {
        record(self)
    }

    /// A server event: the client method `target` (a frame `type`) called
    /// with one argument, without expecting an answer.
    pub fn invocation(target: impl Into<String>, argument: Value) -> HubMessage {
        HubMessage::Invocation {
            invocation_id: None,
            target: target.into(),
            arguments: vec![argument],
            stream_ids: Vec::new(),
        }
    }

    /// The success of the client's invocation `invocation_id`.
    pub fn completion_result(invocation_id: impl Into<String>, result: Value) -> HubMessage {
        HubMessage::Completion {
            invocation_id: invocation_id.into(),
            outcome: Outcome::Result(result),
        }
    }

    /// The failure of the client's invocation `invocation_id`: the error
    /// is `"<code>: <message>"`, so a client reads the machine code first.
    pub fn completion_error(
        invocation_id: impl Into<String>,
        code: &str,
        message: &str,
    ) -> HubMessage {
        HubMessage::Completion {
            invocation_id: invocation_id.into(),
            outcome: Outcome::Error(format!("{code}: {message}")),
        }
    }

    /// The server closing the connection for a reason (`"<code>: <reason>"`).
    pub fn close_with_error(code: &str, reason: &str, allow_reconnect: bool) -> HubMessage {
        HubMessage::Close {
            error: Some(format!("{code}: {reason}")),
            allow_reconnect,
        }
    }
}

/// Every property of every message type, as JSON spells it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(rename = "type")]
    kind: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arguments: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stream_ids: Vec<String>,
    /// `Some(Null)` for `"item":null`, `None` when absent.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    item: Option<Value>,
    /// As `item`: a `null` result is a result.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_reconnect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence_id: Option<u64>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl TryFrom<Wire> for HubMessage {
    type Error = String;

    fn try_from(wire: Wire) -> Result<HubMessage, String> {
        let missing = |property: &str| format!("missing required property '{property}'");
        // An empty id is no id, as .NET reads it.
        let id = wire.invocation_id.filter(|id| !id.is_empty());
        let required_id = || id.clone().ok_or_else(|| missing("invocationId"));
        let target = || {
            wire.target
                .clone()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| missing("target"))
        };
        let arguments = || wire.arguments.clone().ok_or_else(|| missing("arguments"));
        let sequence_id = || wire.sequence_id.ok_or_else(|| missing("sequenceId"));
        Ok(match wire.kind {
            1 => HubMessage::Invocation {
                target: target()?,
                arguments: arguments()?,
                invocation_id: id,
                stream_ids: wire.stream_ids,
            },
            2 => HubMessage::StreamItem {
                invocation_id: required_id()?,
                item: wire.item.ok_or_else(|| missing("item"))?,
            },
            3 => HubMessage::Completion {
                invocation_id: required_id()?,
                outcome: match (wire.result, wire.error) {
                    (Some(_), Some(_)) => {
                        return Err(
                            "the 'error' and 'result' properties are mutually exclusive".to_owned()
                        )
                    }
                    (Some(result), None) => Outcome::Result(result),
                    (None, Some(error)) => Outcome::Error(error),
                    (None, None) => Outcome::Void,
                },
            },
            4 => HubMessage::StreamInvocation {
                invocation_id: required_id()?,
                target: target()?,
                arguments: arguments()?,
                stream_ids: wire.stream_ids,
            },
            5 => HubMessage::CancelInvocation {
                invocation_id: required_id()?,
            },
            6 => HubMessage::Ping,
            7 => HubMessage::Close {
                error: wire.error,
                allow_reconnect: wire.allow_reconnect.unwrap_or(false),
            },
            8 => HubMessage::Ack {
                sequence_id: sequence_id()?,
            },
            9 => HubMessage::Sequence {
                sequence_id: sequence_id()?,
            },
            kind => HubMessage::Other { kind },
        })
    }
}

impl From<HubMessage> for Wire {
    fn from(message: HubMessage) -> Wire {
        match message {
            HubMessage::Invocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
            } => Wire {
                kind: 1,
                invocation_id,
                target: Some(target),
                arguments: Some(arguments),
                stream_ids,
                ..Wire::default()
            },
            HubMessage::StreamItem {
                invocation_id,
                item,
            } => Wire {
                kind: 2,
                invocation_id: Some(invocation_id),
                item: Some(item),
                ..Wire::default()
            },
            HubMessage::Completion {
                invocation_id,
                outcome,
            } => {
                let (result, error) = match outcome {
                    Outcome::Void => (None, None),
                    Outcome::Result(result) => (Some(result), None),
                    Outcome::Error(error) => (None, Some(error)),
                };
                Wire {
                    kind: 3,
                    invocation_id: Some(invocation_id),
                    result,
                    error,
                    ..Wire::default()
                }
            }
            HubMessage::StreamInvocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
            } => Wire {
                kind: 4,
                invocation_id: Some(invocation_id),
                target: Some(target),
                arguments: Some(arguments),
                stream_ids,
                ..Wire::default()
            },
            HubMessage::CancelInvocation { invocation_id } => Wire {
                kind: 5,
                invocation_id: Some(invocation_id),
                ..Wire::default()
            },
            HubMessage::Ping => Wire {
                kind: 6,
                ..Wire::default()
            },
            HubMessage::Close {
                error,
                allow_reconnect,
            } => Wire {
                kind: 7,
                error,
                // Written only when true, as .NET writes it.
                allow_reconnect: allow_reconnect.then_some(true),
                ..Wire::default()
            },
            HubMessage::Ack { sequence_id } => Wire {
                kind: 8,
                sequence_id: Some(sequence_id),
                ..Wire::default()
            },
            HubMessage::Sequence { sequence_id } => Wire {
                kind: 9,
                sequence_id: Some(sequence_id),
                ..Wire::default()
            },
            HubMessage::Other { kind } => Wire {
                kind,
                ..Wire::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: Limits = Limits {
        max_record_bytes: 128,
        max_records: 4,
    };

    fn decode_all(message: &[u8]) -> Result<Vec<HubMessage>, SignalRError> {
        records(message, &LIMITS)?.collect()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_json_handshake_is_accepted_and_what_follows_it_is_returned() {
        let message = b"{\"protocol\":\"json\",\"version\":1,\"extra\":[1]}\x1e{\"type\":6}\x1e";
        let (request, rest) = read_handshake(message, &LIMITS).unwrap();
        assert_eq!(request.protocol, "json");
        assert_eq!(rest, b"{\"type\":6}\x1e");
        assert_eq!(decode_all(rest).unwrap(), vec![HubMessage::Ping]);
        assert_eq!(text(HandshakeResponse::ok().encode()), "{}\u{1e}");
    }

    #[test]
    fn messagepack_and_other_versions_are_refused_with_a_handshake_error() {
        let err = read_handshake(b"{\"protocol\":\"messagepack\",\"version\":1}\x1e", &LIMITS)
            .unwrap_err();
        assert_eq!(err.kind, SignalRErrorKind::UnsupportedProtocol);
        assert_eq!(
            err.message,
            "Requested protocol 'messagepack' is not available."
        );
        assert_eq!(
            text(HandshakeResponse::error(err.message).encode()),
            "{\"error\":\"Requested protocol 'messagepack' is not available.\"}\u{1e}"
        );
        let err =
            read_handshake(b"{\"protocol\":\"json\",\"version\":2}\x1e", &LIMITS).unwrap_err();
        assert_eq!(err.kind, SignalRErrorKind::UnsupportedProtocol);
        let cases: [(&[u8], SignalRErrorKind); 4] = [
            (
                b"{\"protocol\":\"json\",\"version\":1}",
                SignalRErrorKind::IncompleteRecord,
            ),
            (
                b"{\"protocol\":\"json\"}\x1e",
                SignalRErrorKind::InvalidMessage,
            ),
            (b"{\"protocol\":\"json\",\x1e", SignalRErrorKind::NotJson),
            (&[b' '; 200], SignalRErrorKind::RecordTooLarge),
        ];
        for (input, kind) in cases {
            assert_eq!(read_handshake(input, &LIMITS).unwrap_err().kind, kind);
        }
    }

    #[test]
    fn invocations_read_as_the_specification_writes_them() {
        let messages = decode_all(
            b"{\"type\":1,\"invocationId\":\"0\",\"target\":\"send\",\"arguments\":[{\"room\":7,\"body\":\"hi\"}],\"streamIds\":[],\"headers\":{\"a\":\"b\"}}\x1e\
              {\"type\":1,\"target\":\"typing\",\"arguments\":[{\"room\":7}]}\x1e\
              {\"target\":\"ping\",\"invocationId\":\"\",\"arguments\":[],\"type\":1}\x1e",
        )
        .unwrap();
        assert_eq!(
            messages,
            vec![
                HubMessage::Invocation {
                    invocation_id: Some("0".into()),
                    target: "send".into(),
                    arguments: vec![json!({"room": 7, "body": "hi"})],
                    stream_ids: vec![],
                },
                HubMessage::invocation("typing", json!({"room": 7})),
                HubMessage::Invocation {
                    invocation_id: None,
                    target: "ping".into(),
                    arguments: vec![],
                    stream_ids: vec![],
                },
            ]
        );
    }

    #[test]
    fn every_message_type_reads_back_what_it_writes() {
        let every = [
            HubMessage::Invocation {
                invocation_id: Some("1".into()),
                target: "send".into(),
                arguments: vec![json!({"body": "x"}), json!(null)],
                stream_ids: vec!["s1".into()],
            },
            HubMessage::StreamItem {
                invocation_id: "1".into(),
                item: json!(null),
            },
            HubMessage::Completion {
                invocation_id: "2".into(),
                outcome: Outcome::Void,
            },
            HubMessage::completion_result("3", json!(null)),
            HubMessage::completion_error("4", "not_found", "no such room"),
            HubMessage::StreamInvocation {
                invocation_id: "5".into(),
                target: "t".into(),
                arguments: vec![],
                stream_ids: vec![],
            },
            HubMessage::CancelInvocation {
                invocation_id: "5".into(),
            },
            HubMessage::Ping,
            HubMessage::Close {
                error: None,
                allow_reconnect: false,
            },
            HubMessage::close_with_error("shutting_down", "server shutting down", true),
            HubMessage::Ack { sequence_id: 3 },
            HubMessage::Sequence { sequence_id: 4 },
            HubMessage::Other { kind: 42 },
        ];
        let message: Vec<u8> = every.iter().flat_map(HubMessage::encode).collect();
        let limits = Limits {
            max_record_bytes: 256,
            max_records: every.len(),
        };
        let back: Vec<HubMessage> = records(&message, &limits)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, every);
    }

    #[test]
    fn server_messages_are_spelled_as_clients_expect() {
        assert_eq!(
            text(HubMessage::invocation("message", json!({"room": 7, "seq": 3})).encode()),
            "{\"type\":1,\"target\":\"message\",\"arguments\":[{\"room\":7,\"seq\":3}]}\u{1e}"
        );
        assert_eq!(
            text(HubMessage::completion_result("0", json!({"room": 7, "seq": 3})).encode()),
            "{\"type\":3,\"invocationId\":\"0\",\"result\":{\"room\":7,\"seq\":3}}\u{1e}"
        );
        assert_eq!(
            text(HubMessage::completion_error("1", "rate_limited", "too many requests").encode()),
            "{\"type\":3,\"invocationId\":\"1\",\"error\":\"rate_limited: too many requests\"}\u{1e}"
        );
        assert_eq!(text(HubMessage::Ping.encode()), "{\"type\":6}\u{1e}");
        assert_eq!(
            text(HubMessage::close_with_error("slow_consumer", "slow consumer", true).encode()),
            "{\"type\":7,\"error\":\"slow_consumer: slow consumer\",\"allowReconnect\":true}\u{1e}"
        );
        assert_eq!(
            text(
                HubMessage::Close {
                    error: None,
                    allow_reconnect: false
                }
                .encode()
            ),
            "{\"type\":7}\u{1e}"
        );
    }

    #[test]
    fn a_message_missing_what_its_type_requires_is_invalid() {
        let invalid: [&[u8]; 9] = [
            b"{\"target\":\"send\",\"arguments\":[]}\x1e",
            b"{\"type\":1,\"arguments\":[]}\x1e",
            b"{\"type\":1,\"target\":\"send\"}\x1e",
            b"{\"type\":1,\"target\":\"\",\"arguments\":[]}\x1e",
            b"{\"type\":2,\"invocationId\":\"1\"}\x1e",
            b"{\"type\":3,\"invocationId\":\"1\",\"result\":1,\"error\":\"x\"}\x1e",
            b"{\"type\":5,\"invocationId\":\"\"}\x1e",
            b"{\"type\":\"1\"}\x1e",
            b"{\"type\":6,\"type\":6}\x1e",
        ];
        for record in invalid {
            let err = decode_all(record).unwrap_err();
            assert_eq!(
                err.kind,
                SignalRErrorKind::InvalidMessage,
                "{}",
                String::from_utf8_lossy(record)
            );
            assert_eq!(err.code(), "invalid_frame");
        }
        for not_json in [
            b"\x1e".as_slice(),
            b"{\x1e",
            b"[6] 2\x1e",
            b"{\"type\":6} x\x1e",
        ] {
            assert_eq!(
                decode_all(not_json).unwrap_err().kind,
                SignalRErrorKind::NotJson
            );
        }
        // A struct's fields as an array: JSON, but not a message.
        for not_object in [b"[6]\x1e".as_slice(), b" 6\x1e", b"\"x\"\x1e"] {
            assert_eq!(
                decode_all(not_object).unwrap_err().kind,
                SignalRErrorKind::InvalidMessage
            );
        }
        assert_eq!(
            read_handshake(b"[\"json\",1]\x1e", &LIMITS)
                .unwrap_err()
                .kind,
            SignalRErrorKind::InvalidMessage
        );
    }

    #[test]
    fn framing_is_checked_whole_before_anything_is_decoded() {
        assert_eq!(decode_all(b"").unwrap(), vec![]);
        assert_eq!(
            records(b"{\"type\":6}\x1e{\"type\":6}", &LIMITS)
                .unwrap_err()
                .kind,
            SignalRErrorKind::IncompleteRecord
        );
        let five = b"{\"type\":6}\x1e".repeat(5);
        assert_eq!(
            records(&five, &LIMITS).unwrap_err().kind,
            SignalRErrorKind::TooManyRecords
        );
        assert_eq!(decode_all(&five[..five.len() / 5 * 4]).unwrap().len(), 4);
        let big = [b"{\"type\":6,\"x\":\"".as_slice(), &[b'a'; 120], b"\"}\x1e"].concat();
        let err = records(&big, &LIMITS).unwrap_err();
        assert_eq!(
            (err.kind, err.code()),
            (SignalRErrorKind::RecordTooLarge, "frame_too_large")
        );
    }

    #[test]
    fn the_negotiate_response_offers_websockets_as_text() {
        let body = serde_json::to_value(NegotiateResponse::websockets("c-1", "t-1")).unwrap();
        assert_eq!(
            body,
            json!({
                "connectionId": "c-1",
                "connectionToken": "t-1",
                "negotiateVersion": 1,
                "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text"]}]
            })
        );
    }
}
