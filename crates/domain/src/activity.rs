//! What passes and is never stored: typing indicators, presence
//! announcements and heartbeats to other nodes, and the last-seen time.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::events::DomainEvent;
use crate::ids::{RoomId, UserId};
use crate::outbox::Publisher;
use crate::store::Store;
use crate::throttle::{Caller, ClientAddr, Operation, Throttles};
use crate::time::Timestamp;

/// Typing indicators and presence announcements: what passes, never stored.
pub struct Activity {
    store: Arc<dyn Store>,
    publisher: Publisher,
    throttles: Arc<Throttles>,
}

impl Activity {
    pub fn new(store: Arc<dyn Store>, publisher: Publisher, throttles: Arc<Throttles>) -> Self {
        Self {
            store,
            publisher,
            throttles,
        }
    }

    /// A real-time session of `user`, from `from`, is about to open (whatever
    /// its transport): each one announces presence to the user's rooms, so
    /// opening them draws from a budget.
    pub fn open_session(&self, user: UserId, from: ClientAddr) -> Result<()> {
        self.throttles
            .charge(Operation::SessionOpen, Caller::user(user).from(from))
    }

    /// Tells the room's other members that `user` is typing.
    pub async fn typing(&self, user: UserId, room: RoomId) -> Result<()> {
        self.throttles
            .charge(Operation::Typing, Caller::user(user))?;
        self.store
            .member_role(room, user)
            .await?
            .ok_or(Error::NotFound("room"))?;
        self.publisher.publish_passing(DomainEvent::Typing {
            room_id: room,
            user_id: user,
        });
        Ok(())
    }

    /// Tells the other nodes that `user` came (or went) here.
    pub fn announce(&self, node: &str, user: UserId, online: bool) {
        self.publisher.publish_passing(DomainEvent::Presence {
            node: node.to_owned(),
            user_id: user,
            online,
            at: Timestamp::now(),
        });
    }

    /// Tells the other nodes everyone online here.
    pub fn heartbeat(&self, node: &str, online: Vec<UserId>) {
        self.publisher.publish_passing(DomainEvent::NodeHeartbeat {
            node: node.to_owned(),
            online,
            at: Timestamp::now(),
        });
    }

    /// Remembers when the user's last connection (on this node) closed.
    pub async fn record_last_seen(&self, user: UserId, at: Timestamp) -> Result<()> {
        Ok(self.store.record_last_seen(user, at).await?)
    }
}
