//! Invitations: an owner or admin proposes, and the invitee alone decides.
//! Nothing lands in someone's room list without their consent; what they
//! are sent is bounded per inviter, per invitee, and by how many may wait.

use super::{refused, Rooms};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::model::{Room, User};
use crate::store::{Invitation, InviteOutcome, NewInvitation, StoreError};
use crate::throttle::{Caller, Operation};
use crate::time::Timestamp;

/// Invitations one user may have waiting; past it, inviting them is refused
/// until they answer some.
pub const MAX_PENDING_INVITATIONS: u32 = 100;

/// The most invitations one page lists.
pub const MAX_INVITATION_PAGE: u32 = 100;

const BANNED: &str = "the user is banned from this room; unban them first";

/// One page of a user's invitations, by room id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationPage {
    pub invitations: Vec<Invitation>,
    /// Whether rooms with a higher id have invitations too.
    pub has_more: bool,
}

impl Rooms {
    /// Invites `invitee` into `room` (owner or admin only). They are told at
    /// once and become a member only by accepting; inviting again while it
    /// waits, or inviting a member, changes nothing.
    pub async fn invite(&self, actor: UserId, room: RoomId, invitee: &User) -> Result<()> {
        self.throttles
            .charge(Operation::Invite, Caller::user(actor).on(invitee.id))?;
        let invitation = NewInvitation {
            room,
            by: actor,
            invitee: invitee.id,
            max_pending: MAX_PENDING_INVITATIONS,
            now: Timestamp::now(),
        };
        let committed = self.store.invite(invitation).await?.map_err(|refusal| {
            refused(
                refusal,
                "only the owner and admins of a group room may invite",
            )
        })?;
        if committed.value == InviteOutcome::Invited {
            let landing = Caller::user(actor).on(invitee.id);
            if let Err(spent) = self.throttles.charge_landing(Operation::Invite, landing) {
                // Past the invitee's budget: the invitation goes before anyone hears of it.
                self.store.decline_invitation(room, invitee.id).await?;
                return Err(spent);
            }
        }
        match self.publisher.publish_committed(committed) {
            InviteOutcome::Invited
            | InviteOutcome::AlreadyInvited
            | InviteOutcome::AlreadyMember => Ok(()),
            InviteOutcome::Banned => Err(Error::Conflict(BANNED)),
            InviteOutcome::TooManyPending => Err(Error::Conflict(
                "the user has too many invitations waiting for an answer",
            )),
        }
    }

    /// `user`'s invitations into rooms with an id above `after`.
    pub async fn invitations(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: u32,
    ) -> Result<InvitationPage> {
        if !(1..=MAX_INVITATION_PAGE).contains(&limit) {
            return Err(Error::invalid("limit", "must be from 1 to 100"));
        }
        let mut invitations = self
            .store
            .invitations(user, after.unwrap_or(RoomId(0)), limit + 1)
            .await?;
        let has_more = invitations.len() > limit as usize;
        invitations.truncate(limit as usize);
        Ok(InvitationPage {
            invitations,
            has_more,
        })
    }

    /// Accepts the invitation into `room`: `user` becomes a member.
    pub async fn accept_invitation(&self, user: UserId, room: RoomId) -> Result<Room> {
        self.throttles
            .charge(Operation::InvitationAccept, Caller::user(user))?;
        let joined = match self
            .store
            .accept_invitation(room, user, Timestamp::now())
            .await
        {
            Err(StoreError::Conflict("banned")) => {
                return Err(Error::Forbidden("you are banned from this room"))
            }
            other => other?.ok_or(Error::NotFound("invitation"))?,
        };
        self.publisher.publish_committed(joined);
        self.get(user, room).await
    }

    /// Declines the invitation into `room`; the inviter is not told.
    pub async fn decline_invitation(&self, user: UserId, room: RoomId) -> Result<()> {
        self.throttles
            .charge(Operation::InvitationDecline, Caller::user(user))?;
        if self.store.decline_invitation(room, user).await? {
            Ok(())
        } else {
            Err(Error::NotFound("invitation"))
        }
    }
}
