//! The `Bus` port: how committed domain events reach every node's connections.
//!
//! The domain publishes only after the store has committed, so a subscriber never
//! sees an event the store could later deny. Events of one room are published in
//! `seq` order; a bus implementation must keep that order per room on this node.
//! Across nodes a bus may reorder, repeat or (if the broker loses data) drop
//! events: receivers deduplicate messages by seq and fill gaps from the store,
//! and check membership events against the store ([`still_true`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::ids::{RoomId, UserId};
use crate::model::{Message, Role};
use crate::store::{Store, StoreResult};
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
    RoomUpdated(palaver_protocol::rest::Room),
    RoomDeleted {
        room_id: RoomId,
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
    /// Cluster mode, every few seconds: everyone with a connection on `node`.
    /// A node whose heartbeats stop is presumed dead and its users offline.
    NodeHeartbeat {
        node: String,
        online: Vec<UserId>,
        at: Timestamp,
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

    /// The room a room event belongs to (0 for presence and heartbeats).
    pub fn room_id(&self) -> RoomId {
        match self {
            DomainEvent::Presence { .. } | DomainEvent::NodeHeartbeat { .. } => RoomId(0),
            DomainEvent::MessagePosted(m) | DomainEvent::MessageEdited(m) => m.room_id,
            DomainEvent::MessageDeleted { room_id, .. }
            | DomainEvent::ReadMarkerMoved { room_id, .. }
            | DomainEvent::MemberJoined { room_id, .. }
            | DomainEvent::MemberLeft { room_id, .. }
            | DomainEvent::MemberRemoved { room_id, .. }
            | DomainEvent::RoleChanged { room_id, .. }
            | DomainEvent::Typing { room_id, .. }
            | DomainEvent::RoomDeleted { room_id } => *room_id,
            DomainEvent::RoomUpdated(room) => RoomId(room.id),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bus unavailable: {0}")]
pub struct BusError(pub String);

/// Resolves once a bus holds the published events durably (for Kafka: the
/// broker acknowledged them), or failed to.
pub type Delivery = Pin<Box<dyn Future<Output = Result<(), BusError>> + Send>>;

/// A delivery that already happened.
pub fn delivered() -> Delivery {
    Box::pin(std::future::ready(Ok(())))
}

/// Publishes committed events to every node (this one included).
pub trait Bus: Send + Sync + 'static {
    /// Delivers `events` to this node's connections before returning, and hands
    /// them to the other nodes; the returned future reports when they hold them.
    fn publish(&self, events: Vec<Arc<DomainEvent>>) -> Delivery;

    /// Sends events recovered from the outbox to the other nodes, as if
    /// `OutboxEntry::origin` had published them (it delivered them locally then).
    fn republish(&self, entries: &[OutboxEntry]) -> Delivery {
        let _ = entries;
        delivered()
    }

    /// False while the bus cannot reach the other nodes (for `/readyz`, and so the
    /// outbox relay does not claim events it cannot send).
    fn is_healthy(&self) -> bool {
        true
    }
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

/// Whether a membership event received from another node still matches the
/// store. Such events can arrive late, twice or out of order; applying a stale
/// "joined" would let a removed user hear the room, so the store decides.
pub async fn still_true(store: &dyn Store, event: &DomainEvent) -> StoreResult<bool> {
    Ok(match event {
        DomainEvent::MessagePosted(_)
        | DomainEvent::MessageEdited(_)
        | DomainEvent::MessageDeleted { .. }
        | DomainEvent::ReadMarkerMoved { .. } => true,
        DomainEvent::MemberJoined {
            room_id, user_id, ..
        } => store.member_role(*room_id, *user_id).await?.is_some(),
        DomainEvent::MemberLeft { room_id, user_id }
        | DomainEvent::MemberRemoved {
            room_id, user_id, ..
        } => store.member_role(*room_id, *user_id).await?.is_none(),
        DomainEvent::RoleChanged {
            room_id,
            user_id,
            role,
        } => store.member_role(*room_id, *user_id).await? == Some(*role),
        DomainEvent::RoomUpdated(_)
        | DomainEvent::Typing { .. }
        | DomainEvent::Presence { .. }
        | DomainEvent::NodeHeartbeat { .. } => true,
        DomainEvent::RoomDeleted { room_id } => store.room_by_id(*room_id).await?.is_none(),
    })
}

/// Where a bus delivers events on this node: the local connection hub.
/// Must not block: it is called on the bus's delivery path.
pub trait EventSink: Send + Sync + 'static {
    fn deliver(&self, event: &DomainEvent);
}
