//! What server administration keeps and hands out: grants, suspensions,
//! reports, and the audit log's entries.

use serde::{Deserialize, Serialize};

use crate::ids::{RoomId, UserId};
use crate::model::{Message, Room, User};
use crate::time::Timestamp;

/// Who acts: an admin through the API, or the operator on the command line
/// (`palaver admin`), whom the audit log records as no user at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Operator,
    Admin(UserId),
}

impl Actor {
    /// The acting admin; `None` for the operator.
    pub fn admin(self) -> Option<UserId> {
        match self {
            Actor::Operator => None,
            Actor::Admin(user) => Some(user),
        }
    }
}

/// What an admin did, as the audit log and the `admin_action` event name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum AdminAction {
    GrantAdmin,
    RevokeAdmin,
    SuspendUser,
    UnsuspendUser,
    DeleteUser,
    TakeDownRoom,
    TransferRoom,
    DeleteMessage,
    EraseMessages,
    ResolveReport,
}

impl AdminAction {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }
}

/// What an admin action was done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditTarget {
    User(UserId),
    Room(RoomId),
    Message { room: RoomId, seq: u64 },
    Report(i64),
}

impl AuditTarget {
    pub fn kind(self) -> &'static str {
        match self {
            AuditTarget::User(_) => "user",
            AuditTarget::Room(_) => "room",
            AuditTarget::Message { .. } => "message",
            AuditTarget::Report(_) => "report",
        }
    }

    /// The user's, room's or report's id; a message's room.
    pub fn id(self) -> i64 {
        match self {
            AuditTarget::User(user) => user.0,
            AuditTarget::Room(room) | AuditTarget::Message { room, .. } => room.0,
            AuditTarget::Report(id) => id,
        }
    }

    /// A message's seq.
    pub fn seq(self) -> Option<u64> {
        match self {
            AuditTarget::Message { seq, .. } => Some(seq),
            _ => None,
        }
    }

    /// The target `kind`, `id` and `seq` name; `None` for an unknown kind.
    pub fn from_parts(kind: &str, id: i64, seq: Option<u64>) -> Option<Self> {
        Some(match (kind, seq) {
            ("user", None) => AuditTarget::User(UserId(id)),
            ("room", None) => AuditTarget::Room(RoomId(id)),
            ("message", Some(seq)) => AuditTarget::Message {
                room: RoomId(id),
                seq,
            },
            ("report", None) => AuditTarget::Report(id),
            _ => return None,
        })
    }
}

/// The particulars of an action beyond its target and reason, each set by
/// the actions it concerns. Stored and published as a small JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDetail {
    /// `suspend_user`, `resolve_report` (suspending): when the suspension
    /// ends (Unix ms); absent: until lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<i64>,
    /// `delete_user`: whether the account's messages were blanked too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erase: Option<bool>,
    /// `transfer_room`: the owner before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// `resolve_report`: what was done (`dismissed`, `message_deleted`,
    /// `sender_suspended`), to which message and sender, and how many open
    /// reports of that message it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<u64>,
    /// `erase_messages`: messages blanked by this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<u64>,
}

impl AuditDetail {
    /// The JSON object as stored; `None` when nothing is set.
    pub fn encode(&self) -> Option<String> {
        (*self != Self::default())
            .then(|| serde_json::to_string(self).expect("the detail serializes"))
    }

    /// A stored detail; an unreadable one reads as empty (it is a record of
    /// the past, never a reason to fail a listing).
    pub fn decode(raw: Option<&str>) -> Self {
        raw.and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_default()
    }
}

/// One line of the audit log: who did what, to whom, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    /// `None`: the operator, on the command line.
    pub admin: Option<UserId>,
    pub action: AdminAction,
    pub target: AuditTarget,
    pub reason: Option<String>,
    pub detail: AuditDetail,
}

/// An account's suspension. One that has ended (`ends_at` past) no longer
/// applies, though its row stays until lifted or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub user_id: UserId,
    pub reason: String,
    /// `None`: until lifted.
    pub ends_at: Option<Timestamp>,
    /// `None`: the operator.
    pub by: Option<UserId>,
    pub at: Timestamp,
}

impl Suspension {
    pub fn applies_at(&self, now: Timestamp) -> bool {
        self.ends_at.is_none_or(|end| end > now)
    }
}

/// A server admin and who made them one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGrant {
    pub user: User,
    pub granted_at: Timestamp,
    /// `None`: the operator.
    pub granted_by: Option<UserId>,
}

/// A user as the admins' list shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOverview {
    pub user: User,
    /// When their last connection closed; `None` if they never connected.
    pub last_seen: Option<Timestamp>,
    /// Logins neither ended nor expired.
    pub live_sessions: u64,
    /// Rooms they are a member of.
    pub rooms: u64,
    pub admin: bool,
    /// Their suspension, if one applies now.
    pub suspension: Option<Suspension>,
}

/// A room as the admins' list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOverview {
    pub room: Room,
    pub members: u64,
    /// The newest seq (0: no message yet).
    pub last_seq: u64,
    /// When its newest message was sent, or else when it was created.
    pub last_activity: Timestamp,
}

/// What resolving a report did.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum ReportOutcome {
    /// Nothing: the report did not call for an action.
    Dismissed,
    /// The reported message was deleted.
    MessageDeleted,
    /// The message's sender was suspended.
    SenderSuspended,
}

impl ReportOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }
}

/// When and how a report was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportResolution {
    pub at: Timestamp,
    /// `None`: the operator.
    pub by: Option<UserId>,
    pub outcome: ReportOutcome,
}

/// A member's report of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: i64,
    pub room_id: RoomId,
    pub seq: u64,
    pub reporter_id: UserId,
    pub reason: String,
    pub created_at: Timestamp,
    /// `None` while open.
    pub resolution: Option<ReportResolution>,
    /// The message as it stands now (edited or deleted since, perhaps);
    /// `None` once its room is gone.
    pub message: Option<Message>,
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn names_round_trip() {
        for action in AdminAction::iter() {
            assert_eq!(AdminAction::parse(action.as_str()), Some(action));
        }
        for outcome in ReportOutcome::iter() {
            assert_eq!(ReportOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(AdminAction::TakeDownRoom.as_str(), "take_down_room");
        for target in [
            AuditTarget::User(UserId(3)),
            AuditTarget::Room(RoomId(4)),
            AuditTarget::Message {
                room: RoomId(4),
                seq: 9,
            },
            AuditTarget::Report(7),
        ] {
            assert_eq!(
                AuditTarget::from_parts(target.kind(), target.id(), target.seq()),
                Some(target)
            );
        }
    }

    #[test]
    fn an_empty_detail_is_stored_as_nothing_and_a_set_one_round_trips() {
        assert_eq!(AuditDetail::default().encode(), None);
        let detail = AuditDetail {
            erase: Some(true),
            ..AuditDetail::default()
        };
        let raw = detail.encode().unwrap();
        assert_eq!(raw, r#"{"erase":true}"#);
        assert_eq!(AuditDetail::decode(Some(&raw)), detail);
        assert_eq!(
            AuditDetail::decode(Some("not json")),
            AuditDetail::default()
        );
    }

    #[test]
    fn a_suspension_applies_until_its_end() {
        let suspension = Suspension {
            user_id: UserId(1),
            reason: "spam".into(),
            ends_at: Some(Timestamp(1000)),
            by: None,
            at: Timestamp(0),
        };
        assert!(suspension.applies_at(Timestamp(999)));
        assert!(!suspension.applies_at(Timestamp(1000)));
        let lifelong = Suspension {
            ends_at: None,
            ..suspension
        };
        assert!(lifelong.applies_at(Timestamp(i64::MAX)));
    }
}
