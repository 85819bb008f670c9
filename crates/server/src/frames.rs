//! What a client sees: the one mapping from domain values (events, messages,
//! errors, presence) to server frames, and their encodings (`EncodedFrame`).
//!
//! The hub only carries what is built here; the session only writes it.

use std::sync::OnceLock;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use palaver_domain::events::DomainEvent;
use palaver_domain::model::{Message, User};
use palaver_domain::store::ReactionCount;
use palaver_domain::time::Timestamp;
use palaver_domain::{Error, RoomId, UserId};
use palaver_protocol::ws::{FrameError, RoomPosition, ServerFrame};

use crate::wire;

/// How long a `typing` indicator lasts without a repeat.
pub const TYPING_EXPIRES_MS: u64 = 3000;

/// A frame encoded once for all its recipients, whatever carries them: JSON
/// at once (for WebSockets), every other encoding when the first connection
/// that needs it asks (most frames never reach one, and then never pay).
#[derive(Debug)]
pub struct EncodedFrame {
    json: Utf8Bytes,
    protobuf: OnceLock<Bytes>,
    raw_json: OnceLock<Box<serde_json::value::RawValue>>,
    signalr: OnceLock<Option<Utf8Bytes>>,
}

impl EncodedFrame {
    /// The JSON text of the frame.
    pub fn json(&self) -> &Utf8Bytes {
        &self.json
    }

    /// The JSON as a value an encoder embeds in JSON of its own (a Socket.IO
    /// event's argument) as it is: checked once, on the first ask, for every
    /// recipient.
    pub fn raw_json(&self) -> &serde_json::value::RawValue {
        self.raw_json.get_or_init(|| {
            serde_json::value::RawValue::from_string(self.json.as_str().to_owned())
                .expect("a frame we encoded is JSON")
        })
    }

    /// The SignalR record invoking the client method the frame's `type`
    /// names with the frame as its argument; `None` for JSON without a
    /// leading type (never written here).
    pub fn signalr_invocation(&self) -> Option<&Utf8Bytes> {
        self.signalr
            .get_or_init(|| signalr_invocation(self.json.as_str()).map(Utf8Bytes::from))
            .as_ref()
    }

    /// The encoded `palaver.v1.ServerFrame`. Read back from the JSON, which
    /// is the frame's one source: the two encodings cannot disagree.
    pub fn protobuf(&self) -> &Bytes {
        self.protobuf.get_or_init(|| {
            let frame: ServerFrame =
                serde_json::from_str(self.json.as_str()).expect("a frame we encoded decodes");
            protobuf(&frame)
        })
    }
}

/// A frame to be shared by every recipient.
pub fn encode(frame: &ServerFrame) -> EncodedFrame {
    EncodedFrame {
        json: json(frame),
        protobuf: OnceLock::new(),
        raw_json: OnceLock::new(),
        signalr: OnceLock::new(),
    }
}

/// The JSON text of one frame, for one recipient.
pub fn json(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

/// The `type` of a server frame's JSON (serde writes the tag first): what
/// transports that name each frame by its type (a Socket.IO event, a
/// SignalR client method) read without decoding a shared frame again.
pub fn frame_type(json: &str) -> Option<&str> {
    let rest = json.strip_prefix(r#"{"type":""#)?;
    rest.split_once('"').map(|(kind, _)| kind)
}

/// A server frame's JSON as the SignalR invocation of the client method its
/// `type` names, written around the frame's bytes.
pub fn signalr_invocation(json: &str) -> Option<String> {
    let Some(target) = frame_type(json) else {
        tracing::error!("a server frame without a leading type");
        return None;
    };
    Some(palaver_protocol::signalr::invocation_record(target, json))
}

/// The protobuf bytes of one frame, for one recipient.
pub fn protobuf(frame: &ServerFrame) -> Bytes {
    prost::Message::encode_to_vec(&palaver_grpc::frame_from_ws(frame)).into()
}

/// The `message` frame of a stored message (live or replayed).
pub fn message(message: &Message) -> ServerFrame {
    message_with_reactions(message, &[])
}

/// The `message` frame of a replayed message, with its reactions as the
/// connection's user sees them (`counts`: this message's).
pub fn message_with_reactions(message: &Message, counts: &[ReactionCount]) -> ServerFrame {
    ServerFrame::Message {
        room: message.room_id.0,
        seq: message.seq,
        sender_id: message.sender_id.0,
        body: message.body.clone(),
        created_at: message.created_at.to_rfc3339(),
        client_id: message.client_id.clone(),
        reply_to: message.reply_to,
        reactions: wire::reaction_counts(counts),
        attachments: message
            .attachments
            .iter()
            .map(crate::wire::attachment)
            .collect(),
    }
}

/// The answer to a `send`, once the message is stored.
pub fn ack(message: &Message) -> ServerFrame {
    ServerFrame::Ack {
        client_id: message.client_id.clone(),
        room: message.room_id.0,
        seq: message.seq,
        created_at: message.created_at.to_rfc3339(),
    }
}

/// Room positions per `ready` or `rooms` frame: a user in many rooms gets
/// several frames of a bounded size rather than one that grows with them.
pub const POSITIONS_PER_FRAME: usize = 100;

/// A session's opening frames: who the client is and where each room stands,
/// `ready` first, then `rooms` frames while positions remain.
pub fn ready(user: &User, positions: &[(RoomId, u64)]) -> Vec<ServerFrame> {
    let mut pages = positions.chunks(POSITIONS_PER_FRAME).map(|page| {
        page.iter()
            .map(|(id, last_seq)| RoomPosition {
                id: id.0,
                last_seq: *last_seq,
            })
            .collect::<Vec<_>>()
    });
    let pages_after_first = positions.len().saturating_sub(1) / POSITIONS_PER_FRAME;
    let mut frames = Vec::with_capacity(1 + pages_after_first);
    frames.push(ServerFrame::Ready {
        user: wire::user(user),
        rooms: pages.next().unwrap_or_default(),
        more: pages_after_first > 0,
    });
    frames.extend(pages.enumerate().map(|(index, rooms)| ServerFrame::Rooms {
        rooms,
        more: index + 1 < pages_after_first,
    }));
    frames
}

/// A user's overall status changed.
pub fn presence(user: UserId, online: bool, at: Timestamp) -> ServerFrame {
    ServerFrame::Presence {
        user_id: user.0,
        status: if online { "online" } else { "offline" }.into(),
        last_seen: at.to_rfc3339(),
    }
}

/// A domain error, as the client sees it (its cause was logged where it happened).
pub fn error(err: &Error, reference: Option<String>) -> ServerFrame {
    ServerFrame::Error {
        code: err.code().into(),
        message: err.to_string(),
        reference,
        // Rounded up: waiting a little too long is safe, too little is not.
        retry_after_ms: err
            .retry_after()
            .map(|wait| wait.as_micros().div_ceil(1000) as u64),
    }
}

/// An error of the protocol itself (bad frame, wrong phase).
pub fn protocol_error(
    code: &str,
    message: impl Into<String>,
    reference: Option<String>,
) -> ServerFrame {
    ServerFrame::Error {
        code: code.into(),
        message: message.into(),
        reference,
        retry_after_ms: None,
    }
}

/// Text that is not a client frame.
pub fn frame_error(err: FrameError) -> ServerFrame {
    protocol_error(err.code, err.message, err.reference)
}

/// The frame the room's connections see for a room event; `None` for
/// events that are not shown as a frame of their own (presence and node
/// heartbeats feed the presence task).
pub fn for_event(event: &DomainEvent) -> Option<ServerFrame> {
    Some(match event {
        DomainEvent::MessagePosted(posted) => message(posted),
        DomainEvent::MessageEdited(edited) => ServerFrame::MessageEdited {
            room: edited.room_id.0,
            seq: edited.seq,
            body: edited.body.clone(),
            edited_at: edited.edited_at.unwrap_or(edited.created_at).to_rfc3339(),
        },
        DomainEvent::MessageDeleted { room_id, seq } => ServerFrame::MessageDeleted {
            room: room_id.0,
            seq: *seq,
        },
        DomainEvent::ReadMarkerMoved {
            room_id,
            user_id,
            seq,
        } => ServerFrame::Read {
            room: room_id.0,
            user_id: user_id.0,
            seq: *seq,
        },
        DomainEvent::MemberJoined {
            room_id, user_id, ..
        } => ServerFrame::MemberJoined {
            room: room_id.0,
            user_id: user_id.0,
        },
        DomainEvent::MemberLeft { room_id, user_id } => ServerFrame::MemberLeft {
            room: room_id.0,
            user_id: user_id.0,
        },
        DomainEvent::MemberRemoved {
            room_id,
            user_id,
            banned,
        } => ServerFrame::MemberRemoved {
            room: room_id.0,
            user_id: user_id.0,
            banned: *banned,
        },
        DomainEvent::RoleChanged {
            room_id,
            user_id,
            role,
        } => ServerFrame::RoleChanged {
            room: room_id.0,
            user_id: user_id.0,
            role: role.as_str().to_owned(),
        },
        DomainEvent::RoomUpdated(room) => ServerFrame::RoomUpdated {
            room: wire::room_profile(room),
        },
        DomainEvent::RoomDeleted { room_id, reason } => ServerFrame::RoomDeleted {
            room: room_id.0,
            reason: reason.clone(),
        },
        DomainEvent::Invited {
            room_id,
            room_name,
            by,
            ..
        } => ServerFrame::Invited {
            room: room_id.0,
            name: room_name.clone(),
            by: by.0,
        },
        DomainEvent::Typing { room_id, user_id } => ServerFrame::Typing {
            room: room_id.0,
            user_id: user_id.0,
            expires_in_ms: TYPING_EXPIRES_MS,
        },
        DomainEvent::ReactionAdded(reaction) => ServerFrame::ReactionAdded {
            room: reaction.room_id.0,
            seq: reaction.seq,
            user_id: reaction.user_id.0,
            emoji: reaction.emoji.as_str().to_owned(),
        },
        DomainEvent::ReactionRemoved(reaction) => ServerFrame::ReactionRemoved {
            room: reaction.room_id.0,
            seq: reaction.seq,
            user_id: reaction.user_id.0,
            emoji: reaction.emoji.as_str().to_owned(),
        },
        DomainEvent::Mentioned {
            room_id,
            seq,
            sender_id,
            ..
        } => ServerFrame::Mentioned {
            room: room_id.0,
            seq: *seq,
            sender_id: sender_id.0,
        },
        DomainEvent::Presence { .. }
        | DomainEvent::NodeHeartbeat { .. }
        | DomainEvent::SessionsEnded { .. }
        | DomainEvent::AdminAction(_)
        // One frame per room: `user_deleted`.
        | DomainEvent::UserDeleted { .. } => return None,
    })
}

/// What the members of `room` see of a deleted account.
pub fn user_deleted(room: RoomId, user: UserId, erased: bool) -> ServerFrame {
    ServerFrame::UserDeleted {
        room: room.0,
        user_id: user.0,
        erased,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frames_type_is_read_from_its_leading_tag() {
        let frame = ServerFrame::Pong {
            reference: Some("r".into()),
        };
        assert_eq!(frame_type(&frame.to_json()), Some("pong"));
        assert_eq!(frame_type(r#"{"room":1,"type":"message"}"#), None);
        assert_eq!(frame_type("{\"type\":\"ready"), None);
    }

    fn alice() -> User {
        User {
            id: UserId(1),
            username: "alice".into(),
            display_name: "alice".into(),
            created_at: Timestamp(0),
            deleted: false,
        }
    }

    /// Every position, in order, from a session's opening frames; and
    /// whether each frame but the last says more follow.
    fn read_pages(frames: &[ServerFrame]) -> Vec<i64> {
        let mut ids = Vec::new();
        for (index, frame) in frames.iter().enumerate() {
            let (rooms, more) = match (index, frame) {
                (0, ServerFrame::Ready { rooms, more, .. }) => (rooms, *more),
                (_, ServerFrame::Rooms { rooms, more }) if index > 0 => (rooms, *more),
                other => panic!("unexpected frame {other:?}"),
            };
            assert!(rooms.len() <= POSITIONS_PER_FRAME);
            assert_eq!(more, index + 1 < frames.len(), "frame {index}");
            ids.extend(rooms.iter().map(|p| p.id));
        }
        ids
    }

    #[test]
    fn ready_pages_its_positions_and_loses_none() {
        for count in [0, 1, 99, 100, 101, 250, 300] {
            let positions: Vec<(RoomId, u64)> =
                (1..=count).map(|id| (RoomId(id), id as u64)).collect();
            let frames = ready(&alice(), &positions);
            let expected_frames = (count as usize).div_ceil(POSITIONS_PER_FRAME).max(1);
            assert_eq!(frames.len(), expected_frames, "{count} rooms");
            assert_eq!(read_pages(&frames), (1..=count).collect::<Vec<_>>());
        }
    }
}
