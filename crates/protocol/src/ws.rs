//! WebSocket frames (`GET /api/v1/ws`): JSON text frames tagged by `"type"`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rest::User;

/// Frames a client sends.
///
/// `ClientFrameType` (derived) names the variants as `"type"` spells them, so
/// a parse error can tell an unknown type from a known one with bad fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::EnumDiscriminants)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum_discriminants(
    name(ClientFrameType),
    derive(strum::EnumString, strum::VariantNames),
    strum(serialize_all = "snake_case")
)]
pub enum ClientFrame {
    /// First frame for clients that cannot set headers (browsers).
    /// `resume` here is applied before any live message is delivered.
    Auth {
        /// Omitted by a browser signed in by cookie (from an allowed origin).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<BTreeMap<String, u64>>,
    },
    Send {
        room: i64,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// The seq of the message (in the same room) this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// Ids of the sender's own uploads to this room that no message
        /// carries yet (REST `POST /rooms/{id}/attachments`); at most 10.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    /// Replace the body of one's own message; everyone gets `message_edited`.
    Edit {
        room: i64,
        seq: u64,
        body: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Delete one's own message (owners and admins: anyone's); everyone gets `message_deleted`.
    Delete {
        room: i64,
        seq: u64,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// "I am typing" in a room: repeat every 2 s while typing; the other
    /// members get `typing` (at most one per 1.5 s per connection and room).
    Typing {
        room: i64,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Move one's read marker forward to `seq`; the room gets `read`.
    Read {
        room: i64,
        seq: u64,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Room id (as a string key) → the last `seq` the client has seen.
    Resume {
        rooms: BTreeMap<String, u64>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    Ping {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// React to a message with `emoji` (one emoji, or `:name:`); everyone
    /// gets `reaction_added`, unless the reaction was there already.
    React {
        room: i64,
        seq: u64,
        emoji: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Take one's reaction back; everyone gets `reaction_removed`, unless it
    /// was not there.
    Unreact {
        room: i64,
        seq: u64,
        emoji: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

/// Why a text is not a client frame: the `error` frame's `code`, `message`,
/// and the `client_id` or `ref` of the text when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// `malformed_frame`, `unknown_type` or `invalid_frame` (docs/protocol.md).
    pub code: &'static str,
    pub message: String,
    pub reference: Option<String>,
}

impl ClientFrame {
    /// What an answer to this frame names it by: its `client_id` (`send`) or `ref`.
    pub fn reference(&self) -> Option<&str> {
        match self {
            ClientFrame::Auth { .. } => None,
            ClientFrame::Send { client_id, .. } => client_id.as_deref(),
            ClientFrame::Edit { reference, .. }
            | ClientFrame::Delete { reference, .. }
            | ClientFrame::Typing { reference, .. }
            | ClientFrame::Read { reference, .. }
            | ClientFrame::Resume { reference, .. }
            | ClientFrame::Ping { reference, .. }
            | ClientFrame::React { reference, .. }
            | ClientFrame::Unreact { reference, .. } => reference.as_deref(),
        }
    }

    /// Parses one text frame, classifying a failure as docs/protocol.md does.
    pub fn parse(raw: &str) -> Result<ClientFrame, FrameError> {
        use std::str::FromStr;
        let err = match serde_json::from_str::<ClientFrame>(raw) {
            Ok(frame) => return Ok(frame),
            Err(err) => err,
        };
        let value = serde_json::from_str::<serde_json::Value>(raw).ok();
        let reference = value.as_ref().and_then(|v| {
            v.get("client_id")
                .or_else(|| v.get("ref"))
                .and_then(|r| r.as_str())
                .map(str::to_owned)
        });
        let error = |code, message: String| FrameError {
            code,
            message,
            reference: reference.clone(),
        };
        let Some(value) = value else {
            return Err(error("malformed_frame", "frame is not valid JSON".into()));
        };
        let Some(kind) = value.get("type").filter(|_| value.is_object()) else {
            return Err(error(
                "malformed_frame",
                "frame must be a JSON object with a \"type\"".into(),
            ));
        };
        match kind.as_str().map(ClientFrameType::from_str) {
            Some(Ok(_)) => Err(error("invalid_frame", err.to_string())),
            _ => Err(error(
                "unknown_type",
                format!(
                    "unknown frame type; expected one of {}",
                    <ClientFrameType as strum::VariantNames>::VARIANTS.join(", ")
                ),
            )),
        }
    }
}

/// A room's position in the `ready` and `rooms` frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPosition {
    pub id: i64,
    /// Live delivery on this connection starts after this seq; use `resume` for
    /// anything older that the client missed.
    pub last_seq: u64,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The session's first frame. A user in many rooms gets their positions
    /// a page at a time: `more` says `rooms` frames follow, before anything else.
    Ready {
        user: User,
        rooms: Vec<RoomPosition>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// The next page of `ready`'s positions; the last has `more: false`.
    Rooms {
        rooms: Vec<RoomPosition>,
        more: bool,
    },
    /// To the sending connection once the message is durably stored.
    Ack {
        client_id: Option<String>,
        room: i64,
        seq: u64,
        created_at: String,
    },
    /// To every connection of every member, in `seq` order per room.
    Message {
        room: i64,
        seq: u64,
        sender_id: i64,
        body: String,
        created_at: String,
        client_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// Its reactions, when replayed or caught up (`me`: this
        /// connection's user); absent on a live message, which has none yet.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reactions: Vec<crate::rest::ReactionCount>,
        /// The files it carries: their metadata only, never their bytes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<crate::rest::attachments::Attachment>,
    },
    /// A message's body was replaced by its sender.
    MessageEdited {
        room: i64,
        seq: u64,
        body: String,
        edited_at: String,
    },
    /// A message was deleted: its seq stays, its body is gone.
    MessageDeleted {
        room: i64,
        seq: u64,
    },
    /// A member's read marker moved forward to `seq`.
    Read {
        room: i64,
        user_id: i64,
        seq: u64,
    },
    MemberJoined {
        room: i64,
        user_id: i64,
    },
    MemberLeft {
        room: i64,
        user_id: i64,
    },
    /// An owner or admin removed the member (`banned`: and barred them).
    MemberRemoved {
        room: i64,
        user_id: i64,
        banned: bool,
    },
    /// A member's account was deleted: its messages in the room now show
    /// "Deleted user" as sender (`GET /users/{id}`), and with `erased` their
    /// bodies are blank and they count as deleted. Its `member_left` follows.
    UserDeleted {
        room: i64,
        user_id: i64,
        erased: bool,
    },
    /// A member's role is now `owner`, `admin` or `member`.
    RoleChanged {
        room: i64,
        user_id: i64,
        role: String,
    },
    /// The room's name, password, code or owner changed.
    RoomUpdated {
        room: crate::rest::Room,
    },
    /// The room is gone; nothing more arrives for it.
    RoomDeleted {
        room: i64,
        /// Set when a server admin took the room down: why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `by` invited you into `room` (not yet yours: accept with `POST
    /// /invitations/{room}/accept`, or decline).
    Invited {
        room: i64,
        name: String,
        by: i64,
    },
    /// `user_id` is typing in `room`; show it until `expires_in_ms` pass
    /// without another `typing`, or a message from them arrives.
    Typing {
        room: i64,
        user_id: i64,
        expires_in_ms: u64,
    },
    /// Someone who shares a room with you came online or went offline.
    Presence {
        user_id: i64,
        /// `online` or `offline`.
        status: String,
        /// Online: now. Offline: when their last connection closed.
        last_seen: String,
    },
    Pong {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// A frame could not be processed; the connection stays open.
    Error {
        code: String,
        message: String,
        /// The failing frame's `client_id` or `ref`, when it had one.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// With `rate_limited` and `overloaded`: how long to wait before
        /// sending the frame again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// `user_id` reacted to the message `seq` with `emoji`. One frame for
    /// every member: a client counts it in its own aggregate (`me` when
    /// `user_id` is its user).
    ReactionAdded {
        room: i64,
        seq: u64,
        user_id: i64,
        emoji: String,
    },
    /// `user_id` took their `emoji` off the message `seq`.
    ReactionRemoved {
        room: i64,
        seq: u64,
        user_id: i64,
        emoji: String,
    },
    /// The message `seq` of `room`, from `sender_id`, mentions you: to your
    /// connections alone, even while the room is muted or out of view.
    Mentioned {
        room: i64,
        seq: u64,
        sender_id: i64,
    },
}

impl ServerFrame {
    /// Serialize to the JSON text of a frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail: no maps with non-string
        // keys, no custom serializers.
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_from_documented_examples() {
        let send: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room":3,"body":"hi","client_id":"c1"}"#)
                .unwrap();
        assert_eq!(
            send,
            ClientFrame::Send {
                room: 3,
                body: "hi".into(),
                client_id: Some("c1".into()),
                reply_to: None,
                attachments: Vec::new(),
            }
        );
        let resume: ClientFrame =
            serde_json::from_str(r#"{"type":"resume","rooms":{"3":17}}"#).unwrap();
        let ClientFrame::Resume { rooms, .. } = resume else {
            panic!("not a resume frame")
        };
        assert_eq!(rooms.get("3"), Some(&17));
    }

    fn one_of_each_type() -> Vec<ClientFrame> {
        let reference = Some("r".to_owned());
        vec![
            ClientFrame::Auth {
                token: Some("t".into()),
                resume: None,
            },
            ClientFrame::Send {
                room: 1,
                body: "b".into(),
                client_id: Some("c".into()),
                reply_to: None,
                attachments: Vec::new(),
            },
            ClientFrame::Edit {
                room: 1,
                seq: 1,
                body: "b".into(),
                reference: reference.clone(),
            },
            ClientFrame::Delete {
                room: 1,
                seq: 1,
                reference: reference.clone(),
            },
            ClientFrame::Typing {
                room: 1,
                reference: reference.clone(),
            },
            ClientFrame::Read {
                room: 1,
                seq: 1,
                reference: reference.clone(),
            },
            ClientFrame::Resume {
                rooms: BTreeMap::new(),
                reference: reference.clone(),
            },
            ClientFrame::Ping {
                reference: reference.clone(),
            },
            ClientFrame::React {
                room: 1,
                seq: 1,
                emoji: "👍".into(),
                reference: reference.clone(),
            },
            ClientFrame::Unreact {
                room: 1,
                seq: 1,
                emoji: ":tada:".into(),
                reference,
            },
        ]
    }

    #[test]
    fn frame_types_are_spelled_as_serde_spells_them() {
        use std::str::FromStr;
        let frames = one_of_each_type();
        assert_eq!(
            frames.len(),
            <ClientFrameType as strum::VariantNames>::VARIANTS.len(),
            "one sample per frame type"
        );
        for frame in frames {
            let json = serde_json::to_value(&frame).unwrap();
            let spelled = json["type"].as_str().unwrap();
            assert_eq!(
                ClientFrameType::from_str(spelled),
                Ok(ClientFrameType::from(&frame))
            );
            assert_eq!(ClientFrame::parse(&json.to_string()), Ok(frame));
        }
    }

    #[test]
    fn a_known_type_with_bad_fields_is_invalid_for_every_type() {
        for frame in one_of_each_type() {
            let mut json = serde_json::to_value(&frame).unwrap();
            let kind = json["type"].as_str().unwrap().to_owned();
            // A field of the wrong type, whatever fields the frame has.
            let object = json.as_object_mut().unwrap();
            let field = object
                .keys()
                .find(|k| *k != "type" && *k != "ref" && *k != "client_id");
            match field.cloned() {
                Some(field) => object.insert(field, serde_json::json!([])),
                // `ping` has no field but `ref`: a `ref` that is not a string.
                None => object.insert("ref".into(), serde_json::json!(7)),
            };
            let err = ClientFrame::parse(&json.to_string()).unwrap_err();
            assert_eq!(err.code, "invalid_frame", "{kind}: {}", err.message);
        }
    }

    #[test]
    fn parse_errors_are_classified_and_echo_references() {
        let code = |raw: &str| ClientFrame::parse(raw).unwrap_err();
        assert_eq!(code("{nope").code, "malformed_frame");
        assert_eq!(code("[1,2]").code, "malformed_frame");
        assert_eq!(code(r#"{"body":"x"}"#).code, "malformed_frame");
        let unknown = code(r#"{"type":"dance","ref":"r1"}"#);
        assert_eq!(
            (unknown.code, unknown.reference.as_deref()),
            ("unknown_type", Some("r1"))
        );
        assert_eq!(code(r#"{"type":7}"#).code, "unknown_type");
        let invalid = code(r#"{"type":"send","client_id":"c9"}"#);
        assert_eq!(
            (invalid.code, invalid.reference.as_deref()),
            ("invalid_frame", Some("c9"))
        );
        assert_eq!(
            code(r#"{"type":"edit","room":1,"ref":"e1"}"#).code,
            "invalid_frame"
        );
    }

    #[test]
    fn server_error_frame_names_ref() {
        let json = ServerFrame::Error {
            code: "not_found".into(),
            message: "m".into(),
            reference: Some("c1".into()),
            retry_after_ms: None,
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"not_found","message":"m","ref":"c1"}"#
        );
    }
}
