//! The `Bus` port: how committed domain events reach every node's connections.
//!
//! The domain publishes only after the store has committed, so a subscriber never
//! sees an event the store could later deny. Events of one room are published in
//! `seq` order; a bus implementation must keep that order per room.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ids::{RoomId, UserId};
use crate::model::Message;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    MessagePosted(Message),
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
}

impl DomainEvent {
    pub fn room_id(&self) -> RoomId {
        match self {
            DomainEvent::MessagePosted(m) => m.room_id,
            DomainEvent::MemberJoined { room_id, .. } | DomainEvent::MemberLeft { room_id, .. } => {
                *room_id
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bus unavailable: {0}")]
pub struct BusError(pub String);

/// Publishes committed events to every node (this one included).
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, events: Vec<Arc<DomainEvent>>) -> Result<(), BusError>;
}

/// Where a bus delivers events on this node: the local connection hub.
/// Must not block: it is called on the bus's delivery path.
pub trait EventSink: Send + Sync + 'static {
    fn deliver(&self, event: &DomainEvent);
}
