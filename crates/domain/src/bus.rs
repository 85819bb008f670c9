//! The `Bus` port: how committed domain events reach every node's connections.
//!
//! The domain publishes only after the store has committed, so a subscriber never
//! sees an event the store could later deny. Events of one room are published in
//! `seq` order; a bus implementation must keep that order per room on this node.
//! Across nodes a bus may reorder, repeat or (if the broker loses data) drop
//! events: receivers deduplicate messages by seq and fill gaps from the store,
//! and check membership events against the store (`crate::remote::still_true`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::events::{DomainEvent, OutboxEntry};

/// An event handed to the bus, with its JSON when the outbox already holds
/// it (so a bus that carries JSON never encodes it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub event: DomainEvent,
    pub payload: Option<Arc<str>>,
}

impl Publication {
    /// An event no outbox row holds (typing, presence; or no outbox at all).
    pub fn unencoded(event: DomainEvent) -> Self {
        Self {
            event,
            payload: None,
        }
    }

    /// The event's JSON (`crate::events`), encoded now if it was not yet.
    pub fn payload(&self) -> Arc<str> {
        match &self.payload {
            Some(payload) => payload.clone(),
            None => crate::events::encode(&self.event).into(),
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
    fn publish(&self, events: Vec<Publication>) -> Delivery;

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

/// Where a bus delivers events on this node: the local connection hub.
/// Must not block: it is called on the bus's delivery path.
pub trait EventSink: Send + Sync + 'static {
    fn deliver(&self, event: &DomainEvent);
}
