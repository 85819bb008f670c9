//! Domain records, and their conversion to wire types.

use palaver_protocol::rest;

use crate::ids::{RoomId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub created_at: Timestamp,
}

/// A user with the secret needed to log in; never leaves the domain.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub code: String,
    pub owner_id: UserId,
    pub created_at: Timestamp,
    /// argon2id hash of the join password, if the room has one.
    pub password_hash: Option<String>,
    pub kind: RoomKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    /// Joined by code; any number of members.
    Group,
    /// The one private room of two people; no code joins it.
    Direct,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Group => "group",
            RoomKind::Direct => "direct",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "group" => Some(RoomKind::Group),
            "direct" => Some(RoomKind::Direct),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub room: Room,
    pub role: Role,
    pub last_seq: u64,
    pub last_message: Option<Message>,
    pub last_read_seq: u64,
    pub unread_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: Timestamp,
    /// When their last connection closed; `None` if they never connected.
    pub last_seen: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub room_id: RoomId,
    pub seq: u64,
    pub sender_id: UserId,
    pub body: String,
    pub created_at: Timestamp,
    pub client_id: Option<String>,
    pub reply_to: Option<u64>,
    pub edited_at: Option<Timestamp>,
    /// Set when deleted; the body is then empty.
    pub deleted_at: Option<Timestamp>,
}

impl User {
    pub fn to_wire(&self) -> rest::User {
        rest::User {
            id: self.id.0,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            created_at: self.created_at.to_rfc3339(),
        }
    }
}

impl Room {
    pub fn to_wire(&self) -> rest::Room {
        rest::Room {
            id: self.id.0,
            name: self.name.clone(),
            code: self.code.clone(),
            owner_id: self.owner_id.0,
            created_at: self.created_at.to_rfc3339(),
            has_password: self.password_hash.is_some(),
            kind: self.kind.as_str().to_owned(),
        }
    }
}

impl RoomSummary {
    pub fn to_wire(&self) -> rest::RoomSummary {
        rest::RoomSummary {
            room: self.room.to_wire(),
            role: self.role.as_str().to_owned(),
            last_seq: self.last_seq,
            last_message: self.last_message.as_ref().map(Message::to_wire),
            last_read_seq: self.last_read_seq,
            unread_count: self.unread_count,
        }
    }
}

impl Member {
    pub fn to_wire(&self) -> rest::Member {
        rest::Member {
            user: self.user.to_wire(),
            role: self.role.as_str().to_owned(),
            joined_at: self.joined_at.to_rfc3339(),
            // Filled in by the transport from this node's presence view.
            online: false,
            last_seen: self.last_seen.map(Timestamp::to_rfc3339),
        }
    }
}

impl Message {
    pub fn to_wire(&self) -> rest::Message {
        rest::Message {
            room_id: self.room_id.0,
            seq: self.seq,
            sender_id: self.sender_id.0,
            body: self.body.clone(),
            created_at: self.created_at.to_rfc3339(),
            client_id: self.client_id.clone(),
            reply_to: self.reply_to,
            edited_at: self.edited_at.map(Timestamp::to_rfc3339),
            deleted: self.deleted_at.is_some(),
        }
    }

    /// The live `message` frame, serialized once and shared by every recipient.
    pub fn to_frame_json(&self) -> String {
        palaver_protocol::ws::ServerFrame::Message {
            room: self.room_id.0,
            seq: self.seq,
            sender_id: self.sender_id.0,
            body: self.body.clone(),
            created_at: self.created_at.to_rfc3339(),
            client_id: self.client_id.clone(),
            reply_to: self.reply_to,
        }
        .to_json()
    }
}
