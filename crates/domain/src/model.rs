//! Domain records: what the store keeps and the services hand out.

use crate::ids::{RoomId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub created_at: Timestamp,
    /// A deleted account's tombstone: its messages keep it as their sender;
    /// it has no username to show (`username` holds a placeholder) and
    /// cannot be logged in as, found, invited or written to.
    pub deleted: bool,
}

/// What a deleted account's tombstone is called.
pub const DELETED_USER_NAME: &str = "Deleted user";

/// A user as only they see themselves: with their e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: User,
    /// Lower-case.
    pub email: Option<String>,
    pub email_verified: bool,
}

/// What a one-time secret of an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// The code mailed to confirm an e-mail address.
    VerifyEmail,
    /// The code mailed to start a password reset.
    PasswordReset,
    /// The token a right reset code is exchanged for.
    ResetToken,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::VerifyEmail => "verify_email",
            CodePurpose::PasswordReset => "password_reset",
            CodePurpose::ResetToken => "reset_token",
        }
    }
}

/// A one-time secret as the store keeps it: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCode {
    pub user_id: UserId,
    pub purpose: CodePurpose,
    pub secret_hash: String,
    /// The address it was sent to.
    pub email: String,
    pub expires_at: Timestamp,
    pub attempts_left: u32,
    pub sent_at: Timestamp,
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

/// A room as its members may see it: whether it has a password, never the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomProfile {
    pub id: RoomId,
    pub name: String,
    pub code: String,
    pub owner_id: UserId,
    pub created_at: Timestamp,
    pub has_password: bool,
    pub kind: RoomKind,
}

impl Room {
    pub fn profile(&self) -> RoomProfile {
        RoomProfile {
            id: self.id,
            name: self.name.clone(),
            code: self.code.clone(),
            owner_id: self.owner_id,
            created_at: self.created_at,
            has_password: self.password_hash.is_some(),
            kind: self.kind,
        }
    }
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
    /// Mentions of the member after their read marker.
    pub unread_mentions: u64,
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
    /// The files it carries, in the order they were uploaded (none once it
    /// is deleted).
    pub attachments: Vec<crate::attachments::Attachment>,
}

/// A room as a message to its member names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName {
    pub id: RoomId,
    pub name: String,
}
