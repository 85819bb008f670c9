//! Reactions: a member puts an emoji on a message, or takes it back.
//! Authorized here, then again in the store's transaction under the room's
//! lock, where the caps are counted too.

use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::store::{Reaction, ReactionCaps, ReactionChange, ReactionCount};
use crate::throttle::{Caller, Operation};
use crate::time::Timestamp;

use super::emoji::Emoji;
use super::Messages;

/// Distinct emoji one message may hold: what its members' clients draw
/// under it, and what one reaction event can make them redraw.
pub const MAX_DISTINCT_PER_MESSAGE: u32 = 20;
/// Reactions one user may have on one message, so that no one fills a
/// message's distinct emoji alone.
pub const MAX_PER_USER_PER_MESSAGE: u32 = 5;

pub const CAPS: ReactionCaps = ReactionCaps {
    distinct_per_message: MAX_DISTINCT_PER_MESSAGE,
    per_user_per_message: MAX_PER_USER_PER_MESSAGE,
};

impl Messages {
    /// Puts `emoji` on the message from `user`. Idempotent: reacting again
    /// with the same emoji changes nothing and tells no one.
    pub async fn react(&self, user: UserId, room: RoomId, seq: u64, emoji: &str) -> Result<()> {
        self.throttles
            .charge(Operation::React, Caller::user(user))?;
        let reaction = reaction(user, room, seq, emoji)?;
        let change = self
            .store
            .add_reaction(&reaction, CAPS, Timestamp::now())
            .await?;
        refusal(&change.value)?;
        self.publisher.publish_committed(change);
        Ok(())
    }

    /// Takes `user`'s `emoji` off the message. Idempotent: taking back a
    /// reaction that is not there (or whose message was deleted, taking
    /// its reactions with it) changes nothing and tells no one.
    pub async fn unreact(&self, user: UserId, room: RoomId, seq: u64, emoji: &str) -> Result<()> {
        self.throttles
            .charge(Operation::Unreact, Caller::user(user))?;
        let reaction = reaction(user, room, seq, emoji)?;
        let change = self
            .store
            .remove_reaction(&reaction, Timestamp::now())
            .await?;
        refusal(&change.value)?;
        self.publisher.publish_committed(change);
        Ok(())
    }

    /// The reactions of `messages` (ascending seqs of `room`) as `reader`
    /// sees them: one store read for the whole page.
    pub(super) async fn counts_of(
        &self,
        reader: UserId,
        room: RoomId,
        messages: &[crate::model::Message],
    ) -> Result<Vec<ReactionCount>> {
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return Ok(Vec::new());
        };
        Ok(self
            .store
            .reaction_counts(room, first.seq, last.seq, reader)
            .await?)
    }
}

fn reaction(user: UserId, room: RoomId, seq: u64, emoji: &str) -> Result<Reaction> {
    Ok(Reaction {
        room_id: room,
        seq,
        user_id: user,
        emoji: Emoji::parse(emoji)?,
    })
}

/// The error a store's answer means, if it refused.
fn refusal(change: &ReactionChange) -> Result<()> {
    match change {
        ReactionChange::Done | ReactionChange::Unchanged => Ok(()),
        // A non-member learns nothing: the same answer as no such room.
        ReactionChange::NotMember => Err(Error::NotFound("room")),
        ReactionChange::NoMessage => Err(Error::NotFound("message")),
        ReactionChange::Deleted => Err(Error::Conflict("the message was deleted")),
        ReactionChange::TooManyOnMessage => Err(Error::Conflict(
            "the message has as many different reactions as it may (20)",
        )),
        ReactionChange::TooManyOfUser => Err(Error::Conflict(
            "you have as many reactions on this message as one may (5)",
        )),
    }
}

/// The counts of the message `seq` within `counts` (sorted by seq).
pub fn counts_for(counts: &[ReactionCount], seq: u64) -> &[ReactionCount] {
    let start = counts.partition_point(|count| count.seq < seq);
    let end = start + counts[start..].partition_point(|count| count.seq == seq);
    &counts[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(seq: u64, emoji: &str) -> ReactionCount {
        ReactionCount {
            seq,
            emoji: emoji.into(),
            count: 1,
            mine: false,
        }
    }

    #[test]
    fn counts_for_finds_one_messages_run() {
        let counts = [count(1, "a"), count(3, "b"), count(3, "c"), count(4, "d")];
        assert_eq!(counts_for(&counts, 3), &counts[1..3]);
        assert_eq!(counts_for(&counts, 1), &counts[..1]);
        assert!(counts_for(&counts, 2).is_empty());
        assert!(counts_for(&counts, 9).is_empty());
    }

    #[test]
    fn refusals_hide_the_room_from_non_members() {
        assert!(matches!(
            refusal(&ReactionChange::NotMember),
            Err(Error::NotFound("room"))
        ));
        assert!(matches!(
            refusal(&ReactionChange::Deleted),
            Err(Error::Conflict(_))
        ));
        assert!(refusal(&ReactionChange::Unchanged).is_ok());
    }
}
