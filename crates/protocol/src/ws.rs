//! WebSocket frames (`GET /api/v1/ws`): JSON text frames tagged by `"type"`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rest::User;

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame for clients that cannot set headers (browsers).
    /// `resume` here is applied before any live message is delivered.
    Auth {
        token: String,
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
}

/// A room's position in the `ready` frame.
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
    Ready {
        user: User,
        rooms: Vec<RoomPosition>,
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
            }
        );
        let resume: ClientFrame =
            serde_json::from_str(r#"{"type":"resume","rooms":{"3":17}}"#).unwrap();
        let ClientFrame::Resume { rooms, .. } = resume else {
            panic!("not a resume frame")
        };
        assert_eq!(rooms.get("3"), Some(&17));
    }

    #[test]
    fn server_error_frame_names_ref() {
        let json = ServerFrame::Error {
            code: "not_found".into(),
            message: "m".into(),
            reference: Some("c1".into()),
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"not_found","message":"m","ref":"c1"}"#
        );
    }
}
