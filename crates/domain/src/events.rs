//! Domain events, and their versioned JSON form: what the transactional
//! outbox stores and what the Kafka topic carries, so other services can
//! consume it.
//! `docs/events.md` is its public description; change both together.
//!
//! Compatibility rule: version 1 only ever gains fields and event types. A
//! reader skips types it does not know (`Ok(None)`), so an older node keeps
//! running beside a newer one during a rolling upgrade.

use serde::{Deserialize, Serialize};

use crate::admin::{AdminAction, AuditDetail, AuditEntry, AuditTarget};
use crate::attachments::Attachment;
use crate::ids::{RoomId, UserId};
use crate::messages::emoji::Emoji;
use crate::model::{Message, Role, RoomKind, RoomProfile};
use crate::store::Reaction;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    MessagePosted(Message),
    /// The message with its new body and `edited_at`.
    MessageEdited(Message),
    MessageDeleted {
        room_id: RoomId,
        seq: u64,
    },
    ReadMarkerMoved {
        room_id: RoomId,
        user_id: UserId,
        seq: u64,
    },
    MemberJoined {
        room_id: RoomId,
        user_id: UserId,
        /// The room's newest seq when the user joined; live delivery to the new
        /// member starts after it.
        last_seq: u64,
    },
    MemberLeft {
        room_id: RoomId,
        user_id: UserId,
    },
    /// An owner or admin removed the member (and, if `banned`, barred them).
    MemberRemoved {
        room_id: RoomId,
        user_id: UserId,
        banned: bool,
    },
    RoleChanged {
        room_id: RoomId,
        user_id: UserId,
        role: Role,
    },
    /// The room's public description changed (name, password, code, owner).
    RoomUpdated(RoomProfile),
    /// The room was deleted by its owner, or taken down by a server admin
    /// (with the `reason` its members are shown).
    RoomDeleted {
        room_id: RoomId,
        reason: Option<String>,
    },
    /// `by` invited `user_id` into the room: told to the invitee alone, who
    /// becomes a member only by accepting.
    Invited {
        room_id: RoomId,
        room_name: String,
        user_id: UserId,
        by: UserId,
    },
    /// Someone is typing in a room. Ephemeral: never stored, never in the outbox.
    Typing {
        room_id: RoomId,
        user_id: UserId,
    },
    /// On `node`, the user went from no connection to some (`online`) or back.
    /// Ephemeral, like `NodeHeartbeat`.
    Presence {
        node: String,
        user_id: UserId,
        online: bool,
        at: Timestamp,
    },
    /// These logins of the user ended (signed out, revoked, password changed):
    /// their connections close, and their refresh tokens no longer work.
    SessionsEnded {
        user_id: UserId,
        sessions: Vec<String>,
    },
    /// The account was deleted: its messages in `rooms` (those it was a
    /// member of) now show the tombstone as sender, and with `erased` are
    /// blanked. Its memberships' and sessions' ends are events of their own.
    UserDeleted {
        user_id: UserId,
        rooms: Vec<RoomId>,
        erased: bool,
    },
    /// A server admin (or the operator) acted: the audit log's new entry.
    AdminAction(AuditEntry),
    /// Cluster mode, every few seconds: everyone with a connection on `node`.
    /// A node whose heartbeats stop is presumed dead and its users offline.
    NodeHeartbeat {
        node: String,
        online: Vec<UserId>,
        at: Timestamp,
    },
    /// A member reacted to a message with an emoji.
    ReactionAdded(Reaction),
    /// A member took their reaction back.
    ReactionRemoved(Reaction),
    /// The message `seq` of the room, just posted by `sender_id`, mentions
    /// `user_ids` (members, when it was stored): told to each of them alone,
    /// after the message's `MessagePosted`.
    Mentioned {
        room_id: RoomId,
        seq: u64,
        sender_id: UserId,
        user_ids: Vec<UserId>,
    },
}

impl DomainEvent {
    /// The bus key (Kafka: the record key, hence the partition): the room id
    /// for room events, so a room's events keep their order; the node for
    /// presence and heartbeats, so a heartbeat can never overtake an earlier
    /// announcement of the same node (and undo it).
    pub fn key(&self) -> i64 {
        match self {
            DomainEvent::Presence { node, .. } | DomainEvent::NodeHeartbeat { node, .. } => {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                node.hash(&mut hasher);
                hasher.finish() as i64
            }
            // A user's account events keep their order.
            DomainEvent::SessionsEnded { user_id, .. }
            | DomainEvent::UserDeleted { user_id, .. } => user_id.0,
            room_event => room_event.room_id().0,
        }
    }

    /// Whether the event describes a committed change (and so goes through the
    /// outbox) rather than a passing state (typing, presence).
    pub fn is_durable(&self) -> bool {
        !matches!(
            self,
            DomainEvent::Typing { .. }
                | DomainEvent::Presence { .. }
                | DomainEvent::NodeHeartbeat { .. }
        )
    }

    /// The room a room event belongs to (0 for presence, heartbeats and
    /// account events).
    pub fn room_id(&self) -> RoomId {
        match self {
            DomainEvent::Presence { .. }
            | DomainEvent::NodeHeartbeat { .. }
            | DomainEvent::SessionsEnded { .. }
            | DomainEvent::UserDeleted { .. }
            // One key for the whole audit log: admin actions keep their order.
            | DomainEvent::AdminAction(_) => RoomId(0),
            DomainEvent::MessagePosted(m) | DomainEvent::MessageEdited(m) => m.room_id,
            DomainEvent::MessageDeleted { room_id, .. }
            | DomainEvent::ReadMarkerMoved { room_id, .. }
            | DomainEvent::MemberJoined { room_id, .. }
            | DomainEvent::MemberLeft { room_id, .. }
            | DomainEvent::MemberRemoved { room_id, .. }
            | DomainEvent::RoleChanged { room_id, .. }
            | DomainEvent::Typing { room_id, .. }
            | DomainEvent::RoomDeleted { room_id, .. }
            | DomainEvent::Invited { room_id, .. }
            | DomainEvent::Mentioned { room_id, .. } => *room_id,
            DomainEvent::RoomUpdated(room) => room.id,
            DomainEvent::ReactionAdded(reaction) | DomainEvent::ReactionRemoved(reaction) => {
                reaction.room_id
            }
        }
    }
}

/// An event's row in the transactional outbox, written in the transaction of
/// its change: the row's id and the event's JSON, encoded once (what the
/// outbox holds and what the bus carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub payload: std::sync::Arc<str>,
}

/// A committed event waiting in the transactional outbox until a bus holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub room_id: RoomId,
    /// The node whose transaction wrote it.
    pub origin: String,
    /// The event in its versioned JSON form (`crate::events`).
    pub payload: String,
}

/// The format version written by this build.
pub const VERSION: u32 = 1;

/// A file a posted message carries: its metadata, never its bytes.
#[derive(Serialize, Deserialize)]
struct AttachmentV1 {
    id: String,
    uploader_id: i64,
    name: String,
    size: u64,
    content_type: String,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    /// Unix milliseconds.
    created_at: i64,
}

impl AttachmentV1 {
    fn of(attachment: &Attachment) -> Self {
        Self {
            id: attachment.id.clone(),
            uploader_id: attachment.uploader_id.0,
            name: attachment.name.clone(),
            size: attachment.size,
            content_type: attachment.content_type.clone(),
            sha256: attachment.sha256.clone(),
            width: attachment.width,
            height: attachment.height,
            created_at: attachment.created_at.0,
        }
    }

    fn carried_by(self, room: RoomId, seq: u64) -> Attachment {
        Attachment {
            id: self.id,
            room_id: room,
            uploader_id: UserId(self.uploader_id),
            name: self.name,
            size: self.size,
            content_type: self.content_type,
            sha256: self.sha256,
            width: self.width,
            height: self.height,
            created_at: Timestamp(self.created_at),
            message_seq: Some(seq),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<E> {
    v: u32,
    #[serde(flatten)]
    event: E,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventV1 {
    MessagePosted {
        room_id: i64,
        seq: u64,
        sender_id: i64,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// Unix milliseconds.
        created_at: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentV1>,
    },
    MessageEdited {
        room_id: i64,
        seq: u64,
        sender_id: i64,
        body: String,
        created_at: i64,
        edited_at: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    MessageDeleted {
        room_id: i64,
        seq: u64,
    },
    ReadMarkerMoved {
        room_id: i64,
        user_id: i64,
        seq: u64,
    },
    MemberJoined {
        room_id: i64,
        user_id: i64,
        last_seq: u64,
    },
    MemberLeft {
        room_id: i64,
        user_id: i64,
    },
    MemberRemoved {
        room_id: i64,
        user_id: i64,
        banned: bool,
    },
    RoleChanged {
        room_id: i64,
        user_id: i64,
        role: String,
    },
    RoomUpdated {
        room_id: i64,
        /// The room's public description, as `GET /api/v1/rooms/{id}` shows it.
        room: RoomV1,
    },
    RoomDeleted {
        room_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Invited {
        room_id: i64,
        room_name: String,
        user_id: i64,
        by: i64,
    },
    Typing {
        room_id: i64,
        user_id: i64,
    },
    Presence {
        node: String,
        user_id: i64,
        online: bool,
        at: i64,
    },
    NodeHeartbeat {
        node: String,
        online: Vec<i64>,
        at: i64,
    },
    SessionsEnded {
        user_id: i64,
        sessions: Vec<String>,
    },
    UserDeleted {
        user_id: i64,
        rooms: Vec<i64>,
        erased: bool,
    },
    ReactionAdded(ReactionV1),
    ReactionRemoved(ReactionV1),
    AdminAction {
        id: i64,
        /// Unix milliseconds.
        at: i64,
        /// `null`: the operator, on the command line.
        admin_id: Option<i64>,
        action: String,
        target_kind: String,
        target_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default)]
        detail: AuditDetail,
    },
    Mentioned {
        room_id: i64,
        seq: u64,
        sender_id: i64,
        user_ids: Vec<i64>,
    },
}

/// A reaction: who reacted to which message with what.
#[derive(Serialize, Deserialize)]
struct ReactionV1 {
    room_id: i64,
    seq: u64,
    user_id: i64,
    emoji: String,
}

impl ReactionV1 {
    fn new(reaction: &Reaction) -> Self {
        Self {
            room_id: reaction.room_id.0,
            seq: reaction.seq,
            user_id: reaction.user_id.0,
            emoji: reaction.emoji.as_str().to_owned(),
        }
    }

    fn reaction(self) -> Result<Reaction, DecodeError> {
        Ok(Reaction {
            room_id: RoomId(self.room_id),
            seq: self.seq,
            user_id: UserId(self.user_id),
            emoji: Emoji::parse(&self.emoji)
                .map_err(|_| DecodeError(format!("bad emoji {:?}", self.emoji)))?,
        })
    }
}

/// A room as `GET /api/v1/rooms/{id}` shows it.
#[derive(Serialize, Deserialize)]
struct RoomV1 {
    id: i64,
    name: String,
    code: String,
    owner_id: i64,
    /// RFC 3339.
    created_at: String,
    has_password: bool,
    /// `group` or `direct`.
    kind: String,
}

impl RoomV1 {
    fn new(room: &RoomProfile) -> Self {
        Self {
            id: room.id.0,
            name: room.name.clone(),
            code: room.code.clone(),
            owner_id: room.owner_id.0,
            created_at: room.created_at.to_rfc3339(),
            has_password: room.has_password,
            kind: room.kind.as_str().to_owned(),
        }
    }

    fn profile(self) -> Result<RoomProfile, DecodeError> {
        Ok(RoomProfile {
            id: RoomId(self.id),
            name: self.name,
            code: self.code,
            owner_id: UserId(self.owner_id),
            created_at: Timestamp::parse_rfc3339(&self.created_at)
                .ok_or_else(|| DecodeError(format!("bad time {:?}", self.created_at)))?,
            has_password: self.has_password,
            kind: RoomKind::parse(&self.kind)
                .ok_or_else(|| DecodeError(format!("unknown room kind {:?}", self.kind)))?,
        })
    }
}

/// Just enough of an event to decide whether this build can read it.
#[derive(Deserialize)]
struct Header {
    v: u32,
    #[serde(rename = "type")]
    kind: String,
}

const KNOWN_TYPES: [&str; 20] = [
    "admin_action",
    "sessions_ended",
    "user_deleted",
    "typing",
    "presence",
    "node_heartbeat",
    "member_removed",
    "role_changed",
    "room_updated",
    "room_deleted",
    "invited",
    "message_posted",
    "message_edited",
    "message_deleted",
    "read_marker_moved",
    "member_joined",
    "member_left",
    "reaction_added",
    "reaction_removed",
    "mentioned",
];

#[derive(Debug, thiserror::Error)]
#[error("malformed event: {0}")]
pub struct DecodeError(String);

pub fn encode(event: &DomainEvent) -> String {
    let event = match event {
        DomainEvent::MessagePosted(m) => EventV1::MessagePosted {
            room_id: m.room_id.0,
            seq: m.seq,
            sender_id: m.sender_id.0,
            body: m.body.clone(),
            client_id: m.client_id.clone(),
            created_at: m.created_at.0,
            reply_to: m.reply_to,
            attachments: m.attachments.iter().map(AttachmentV1::of).collect(),
        },
        DomainEvent::MessageEdited(m) => EventV1::MessageEdited {
            room_id: m.room_id.0,
            seq: m.seq,
            sender_id: m.sender_id.0,
            body: m.body.clone(),
            created_at: m.created_at.0,
            edited_at: m.edited_at.unwrap_or(m.created_at).0,
            reply_to: m.reply_to,
        },
        DomainEvent::MessageDeleted { room_id, seq } => EventV1::MessageDeleted {
            room_id: room_id.0,
            seq: *seq,
        },
        DomainEvent::ReadMarkerMoved {
            room_id,
            user_id,
            seq,
        } => EventV1::ReadMarkerMoved {
            room_id: room_id.0,
            user_id: user_id.0,
            seq: *seq,
        },
        DomainEvent::MemberJoined {
            room_id,
            user_id,
            last_seq,
        } => EventV1::MemberJoined {
            room_id: room_id.0,
            user_id: user_id.0,
            last_seq: *last_seq,
        },
        DomainEvent::MemberLeft { room_id, user_id } => EventV1::MemberLeft {
            room_id: room_id.0,
            user_id: user_id.0,
        },
        DomainEvent::MemberRemoved {
            room_id,
            user_id,
            banned,
        } => EventV1::MemberRemoved {
            room_id: room_id.0,
            user_id: user_id.0,
            banned: *banned,
        },
        DomainEvent::RoleChanged {
            room_id,
            user_id,
            role,
        } => EventV1::RoleChanged {
            room_id: room_id.0,
            user_id: user_id.0,
            role: role.as_str().to_owned(),
        },
        DomainEvent::RoomUpdated(room) => EventV1::RoomUpdated {
            room_id: room.id.0,
            room: RoomV1::new(room),
        },
        DomainEvent::RoomDeleted { room_id, reason } => EventV1::RoomDeleted {
            room_id: room_id.0,
            reason: reason.clone(),
        },
        DomainEvent::Invited {
            room_id,
            room_name,
            user_id,
            by,
        } => EventV1::Invited {
            room_id: room_id.0,
            room_name: room_name.clone(),
            user_id: user_id.0,
            by: by.0,
        },
        DomainEvent::Typing { room_id, user_id } => EventV1::Typing {
            room_id: room_id.0,
            user_id: user_id.0,
        },
        DomainEvent::Presence {
            node,
            user_id,
            online,
            at,
        } => EventV1::Presence {
            node: node.clone(),
            user_id: user_id.0,
            online: *online,
            at: at.0,
        },
        DomainEvent::NodeHeartbeat { node, online, at } => EventV1::NodeHeartbeat {
            node: node.clone(),
            online: online.iter().map(|u| u.0).collect(),
            at: at.0,
        },
        DomainEvent::SessionsEnded { user_id, sessions } => EventV1::SessionsEnded {
            user_id: user_id.0,
            sessions: sessions.clone(),
        },
        DomainEvent::UserDeleted {
            user_id,
            rooms,
            erased,
        } => EventV1::UserDeleted {
            user_id: user_id.0,
            rooms: rooms.iter().map(|r| r.0).collect(),
            erased: *erased,
        },
        DomainEvent::AdminAction(entry) => EventV1::AdminAction {
            id: entry.id,
            at: entry.at.0,
            admin_id: entry.admin.map(|admin| admin.0),
            action: entry.action.as_str().to_owned(),
            target_kind: entry.target.kind().to_owned(),
            target_id: entry.target.id(),
            target_seq: entry.target.seq(),
            reason: entry.reason.clone(),
            detail: entry.detail.clone(),
        },
        DomainEvent::ReactionAdded(reaction) => EventV1::ReactionAdded(ReactionV1::new(reaction)),
        DomainEvent::ReactionRemoved(reaction) => {
            EventV1::ReactionRemoved(ReactionV1::new(reaction))
        }
        DomainEvent::Mentioned {
            room_id,
            seq,
            sender_id,
            user_ids,
        } => EventV1::Mentioned {
            room_id: room_id.0,
            seq: *seq,
            sender_id: sender_id.0,
            user_ids: user_ids.iter().map(|u| u.0).collect(),
        },
    };
    serde_json::to_string(&Envelope { v: VERSION, event }).expect("events always serialize")
}

/// `Ok(None)` for an event of a newer version or an unknown type: skip it.
pub fn decode(bytes: &[u8]) -> Result<Option<DomainEvent>, DecodeError> {
    let header: Header = serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))?;
    if header.v != VERSION || !KNOWN_TYPES.contains(&header.kind.as_str()) {
        return Ok(None);
    }
    let envelope: Envelope<EventV1> =
        serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))?;
    Ok(Some(match envelope.event {
        EventV1::MessagePosted {
            room_id,
            seq,
            sender_id,
            body,
            client_id,
            created_at,
            reply_to,
            attachments,
        } => DomainEvent::MessagePosted(Message {
            room_id: RoomId(room_id),
            seq,
            sender_id: UserId(sender_id),
            body,
            created_at: Timestamp(created_at),
            client_id,
            reply_to,
            edited_at: None,
            deleted_at: None,
            attachments: (attachments.into_iter())
                .map(|a| a.carried_by(RoomId(room_id), seq))
                .collect(),
        }),
        EventV1::MessageEdited {
            room_id,
            seq,
            sender_id,
            body,
            created_at,
            edited_at,
            reply_to,
        } => DomainEvent::MessageEdited(Message {
            room_id: RoomId(room_id),
            seq,
            sender_id: UserId(sender_id),
            body,
            created_at: Timestamp(created_at),
            client_id: None,
            reply_to,
            edited_at: Some(Timestamp(edited_at)),
            deleted_at: None,
            attachments: Vec::new(),
        }),
        EventV1::MessageDeleted { room_id, seq } => DomainEvent::MessageDeleted {
            room_id: RoomId(room_id),
            seq,
        },
        EventV1::ReadMarkerMoved {
            room_id,
            user_id,
            seq,
        } => DomainEvent::ReadMarkerMoved {
            room_id: RoomId(room_id),
            user_id: UserId(user_id),
            seq,
        },
        EventV1::MemberJoined {
            room_id,
            user_id,
            last_seq,
        } => DomainEvent::MemberJoined {
            room_id: RoomId(room_id),
            user_id: UserId(user_id),
            last_seq,
        },
        EventV1::MemberLeft { room_id, user_id } => DomainEvent::MemberLeft {
            room_id: RoomId(room_id),
            user_id: UserId(user_id),
        },
        EventV1::MemberRemoved {
            room_id,
            user_id,
            banned,
        } => DomainEvent::MemberRemoved {
            room_id: RoomId(room_id),
            user_id: UserId(user_id),
            banned,
        },
        EventV1::RoleChanged {
            room_id,
            user_id,
            role,
        } => DomainEvent::RoleChanged {
            room_id: RoomId(room_id),
            user_id: UserId(user_id),
            role: Role::parse(&role)
                .ok_or_else(|| DecodeError(format!("unknown role {role:?}")))?,
        },
        EventV1::RoomUpdated { room, .. } => DomainEvent::RoomUpdated(room.profile()?),
        EventV1::RoomDeleted { room_id, reason } => DomainEvent::RoomDeleted {
            room_id: RoomId(room_id),
            reason,
        },
        EventV1::Invited {
            room_id,
            room_name,
            user_id,
            by,
        } => DomainEvent::Invited {
            room_id: RoomId(room_id),
            room_name,
            user_id: UserId(user_id),
            by: UserId(by),
        },
        EventV1::Typing { room_id, user_id } => DomainEvent::Typing {
            room_id: RoomId(room_id),
            user_id: UserId(user_id),
        },
        EventV1::Presence {
            node,
            user_id,
            online,
            at,
        } => DomainEvent::Presence {
            node,
            user_id: UserId(user_id),
            online,
            at: Timestamp(at),
        },
        EventV1::NodeHeartbeat { node, online, at } => DomainEvent::NodeHeartbeat {
            node,
            online: online.into_iter().map(UserId).collect(),
            at: Timestamp(at),
        },
        EventV1::SessionsEnded { user_id, sessions } => DomainEvent::SessionsEnded {
            user_id: UserId(user_id),
            sessions,
        },
        EventV1::UserDeleted {
            user_id,
            rooms,
            erased,
        } => DomainEvent::UserDeleted {
            user_id: UserId(user_id),
            rooms: rooms.into_iter().map(RoomId).collect(),
            erased,
        },
        EventV1::AdminAction {
            id,
            at,
            admin_id,
            action,
            target_kind,
            target_id,
            target_seq,
            reason,
            detail,
        } => DomainEvent::AdminAction(AuditEntry {
            id,
            at: Timestamp(at),
            admin: admin_id.map(UserId),
            action: AdminAction::parse(&action)
                .ok_or_else(|| DecodeError(format!("unknown admin action {action:?}")))?,
            target: AuditTarget::from_parts(&target_kind, target_id, target_seq)
                .ok_or_else(|| DecodeError(format!("unknown audit target {target_kind:?}")))?,
            reason,
            detail,
        }),
        EventV1::ReactionAdded(reaction) => DomainEvent::ReactionAdded(reaction.reaction()?),
        EventV1::ReactionRemoved(reaction) => DomainEvent::ReactionRemoved(reaction.reaction()?),
        EventV1::Mentioned {
            room_id,
            seq,
            sender_id,
            user_ids,
        } => DomainEvent::Mentioned {
            room_id: RoomId(room_id),
            seq,
            sender_id: UserId(sender_id),
            user_ids: user_ids.into_iter().map(UserId).collect(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<DomainEvent> {
        vec![
            DomainEvent::MessagePosted(Message {
                room_id: RoomId(3),
                seq: 42,
                sender_id: UserId(7),
                body: "héllo \"world\"".into(),
                created_at: Timestamp(1_700_000_000_123),
                client_id: Some("c-1".into()),
                reply_to: None,
                edited_at: None,
                deleted_at: None,
                attachments: Vec::new(),
            }),
            DomainEvent::MessagePosted(Message {
                room_id: RoomId(3),
                seq: 43,
                sender_id: UserId(7),
                body: String::new(),
                created_at: Timestamp(1),
                client_id: None,
                reply_to: Some(42),
                edited_at: None,
                deleted_at: None,
                attachments: vec![crate::attachments::Attachment {
                    id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                    room_id: RoomId(3),
                    uploader_id: UserId(7),
                    name: "dot.png".into(),
                    size: 33,
                    content_type: "image/png".into(),
                    sha256: "0".repeat(64),
                    width: Some(3),
                    height: Some(2),
                    created_at: Timestamp(0),
                    message_seq: Some(43),
                }],
            }),
            DomainEvent::MessageEdited(Message {
                room_id: RoomId(3),
                seq: 42,
                sender_id: UserId(7),
                body: "fixed".into(),
                created_at: Timestamp(5),
                client_id: None,
                reply_to: None,
                edited_at: Some(Timestamp(9)),
                deleted_at: None,
                attachments: Vec::new(),
            }),
            DomainEvent::MessageDeleted {
                room_id: RoomId(3),
                seq: 42,
            },
            DomainEvent::SessionsEnded {
                user_id: UserId(9),
                sessions: vec!["a".into(), "b".into()],
            },
            DomainEvent::UserDeleted {
                user_id: UserId(9),
                rooms: vec![RoomId(3), RoomId(4)],
                erased: true,
            },
            DomainEvent::ReadMarkerMoved {
                room_id: RoomId(3),
                user_id: UserId(9),
                seq: 43,
            },
            DomainEvent::MemberJoined {
                room_id: RoomId(3),
                user_id: UserId(9),
                last_seq: 43,
            },
            DomainEvent::MemberLeft {
                room_id: RoomId(3),
                user_id: UserId(9),
            },
            DomainEvent::MemberRemoved {
                room_id: RoomId(3),
                user_id: UserId(9),
                banned: true,
            },
            DomainEvent::RoleChanged {
                room_id: RoomId(3),
                user_id: UserId(9),
                role: Role::Admin,
            },
            DomainEvent::RoomUpdated(RoomProfile {
                id: RoomId(3),
                name: "renamed".into(),
                code: "ABCDEFGH".into(),
                owner_id: UserId(9),
                created_at: Timestamp::parse_rfc3339("2026-11-22T10:00:00.000Z").unwrap(),
                has_password: true,
                kind: RoomKind::Group,
            }),
            DomainEvent::RoomDeleted {
                room_id: RoomId(3),
                reason: None,
            },
            DomainEvent::RoomDeleted {
                room_id: RoomId(3),
                reason: Some("spam".into()),
            },
            DomainEvent::AdminAction(AuditEntry {
                id: 12,
                at: Timestamp(7),
                admin: Some(UserId(9)),
                action: AdminAction::SuspendUser,
                target: AuditTarget::User(UserId(10)),
                reason: Some("spam".into()),
                detail: AuditDetail {
                    ends_at: Some(99),
                    ..AuditDetail::default()
                },
            }),
            DomainEvent::AdminAction(AuditEntry {
                id: 13,
                at: Timestamp(8),
                admin: None,
                action: AdminAction::DeleteMessage,
                target: AuditTarget::Message {
                    room: RoomId(3),
                    seq: 42,
                },
                reason: None,
                detail: AuditDetail::default(),
            }),
            DomainEvent::Invited {
                room_id: RoomId(3),
                room_name: "general".into(),
                user_id: UserId(10),
                by: UserId(9),
            },
            DomainEvent::Typing {
                room_id: RoomId(3),
                user_id: UserId(9),
            },
            DomainEvent::Presence {
                node: "n1".into(),
                user_id: UserId(9),
                online: true,
                at: Timestamp(5),
            },
            DomainEvent::NodeHeartbeat {
                node: "n1".into(),
                online: vec![UserId(9), UserId(10)],
                at: Timestamp(6),
            },
            DomainEvent::ReactionAdded(Reaction {
                room_id: RoomId(3),
                seq: 42,
                user_id: UserId(9),
                emoji: Emoji::parse("👍🏽").unwrap(),
            }),
            DomainEvent::ReactionRemoved(Reaction {
                room_id: RoomId(3),
                seq: 42,
                user_id: UserId(9),
                emoji: Emoji::parse(":party:").unwrap(),
            }),
            DomainEvent::Mentioned {
                room_id: RoomId(3),
                seq: 42,
                sender_id: UserId(7),
                user_ids: vec![UserId(9), UserId(10)],
            },
        ]
    }

    #[test]
    fn a_reaction_has_the_documented_shape() {
        let event = DomainEvent::ReactionAdded(Reaction {
            room_id: RoomId(3),
            seq: 42,
            user_id: UserId(9),
            emoji: Emoji::parse("👍").unwrap(),
        });
        let json: serde_json::Value = serde_json::from_str(&encode(&event)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "v": 1, "type": "reaction_added", "room_id": 3, "seq": 42, "user_id": 9,
                "emoji": "👍"
            })
        );
        assert!(decode(
            br#"{"v":1,"type":"reaction_removed","room_id":3,"seq":1,"user_id":9,"emoji":"no"}"#
        )
        .is_err());
    }

    #[test]
    fn every_event_round_trips() {
        for event in samples() {
            let json = encode(&event);
            assert_eq!(decode(json.as_bytes()).unwrap(), Some(event), "{json}");
        }
    }

    #[test]
    fn the_documented_shape_is_the_written_shape() {
        let json: serde_json::Value = serde_json::from_str(&encode(&samples()[0])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "v": 1, "type": "message_posted", "room_id": 3, "seq": 42, "sender_id": 7,
                "body": "héllo \"world\"", "client_id": "c-1", "created_at": 1_700_000_000_123_i64
            })
        );
    }

    #[test]
    fn newer_versions_and_unknown_types_are_skipped_not_errors() {
        assert!(decode(br#"{"v":2,"type":"message_posted"}"#)
            .unwrap()
            .is_none());
        assert!(decode(br#"{"v":1,"type":"room_renamed","room_id":1}"#)
            .unwrap()
            .is_none());
        assert!(
            decode(br#"{"v":1,"type":"member_left","room_id":1,"user_id":2,"extra":true}"#)
                .unwrap()
                .is_some()
        );
        assert!(decode(b"not json").is_err());
        assert!(decode(br#"{"v":1,"type":"member_left","room_id":"x"}"#).is_err());
    }
}
