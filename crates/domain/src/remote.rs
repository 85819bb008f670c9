//! Events another node published: whether they still hold.
//!
//! The bus may deliver them late, twice or out of order; the store decides.

use crate::events::DomainEvent;
use crate::store::{Store, StoreResult};

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
        | DomainEvent::NodeHeartbeat { .. }
        // An ended session and a deleted account never come back.
        | DomainEvent::SessionsEnded { .. }
        | DomainEvent::UserDeleted { .. } => true,
        DomainEvent::RoomDeleted { room_id } => store.room_by_id(*room_id).await?.is_none(),
    })
}
