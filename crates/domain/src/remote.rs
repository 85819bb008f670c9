//! Events another node published: whether they still hold.
//!
//! The bus may deliver them late, twice or out of order; the store decides.

use crate::events::DomainEvent;
use crate::ids::RoomId;
use crate::store::{Store, StoreResult};

/// Whether a membership event received from another node still matches the
/// store. Such events can arrive late, twice or out of order; applying a stale
/// "joined" would let a removed user hear the room, so the store decides.
pub async fn still_true(store: &dyn Store, event: &DomainEvent) -> StoreResult<bool> {
    Ok(match event {
        // Sessions drop seqs they already delivered.
        DomainEvent::MessagePosted(_)
        | DomainEvent::MessageDeleted { .. }
        | DomainEvent::ReadMarkerMoved { .. }
        // Told once, to members when it was stored; a late one names a
        // message they can read (or could, a moment ago).
        | DomainEvent::Mentioned { .. } => true,
        // A late or replayed edit must not show words the sender replaced.
        DomainEvent::MessageEdited(edited) => store
            .message(edited.room_id, edited.seq)
            .await?
            .is_some_and(|stored| {
                stored.deleted_at.is_none()
                    && stored.body == edited.body
                    && stored.edited_at == edited.edited_at
            }),
        DomainEvent::RoomUpdated(profile) => store
            .room_by_id(profile.id)
            .await?
            .is_some_and(|room| room.profile() == *profile),
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
        DomainEvent::Typing { .. }
        | DomainEvent::Presence { .. }
        | DomainEvent::NodeHeartbeat { .. }
        // An ended session and a deleted account never come back.
        | DomainEvent::SessionsEnded { .. }
        | DomainEvent::UserDeleted { .. }
        // An audit entry is never changed.
        | DomainEvent::AdminAction(_) => true,
        DomainEvent::RoomDeleted { room_id, .. } => store.room_by_id(*room_id).await?.is_none(),
        // A late add must not show a reaction taken back since, nor a late
        // removal hide one given again.
        DomainEvent::ReactionAdded(reaction) => store.has_reaction(reaction).await?,
        DomainEvent::ReactionRemoved(reaction) => !store.has_reaction(reaction).await?,
        // Not answered yet: the first of the invitee's invitations from this room on.
        DomainEvent::Invited {
            room_id, user_id, ..
        } => store
            .invitations(*user_id, RoomId(room_id.0 - 1), 1)
            .await?
            .first()
            .is_some_and(|invitation| invitation.room_id == *room_id),
    })
}
