//! Reading what a connection missed from the store: catching a room up to
//! the live stream (moving its position), and replaying a range the client
//! asked for again (not moving it).

use std::future::Future;

use palaver_domain::messages::reactions::counts_for;
use palaver_domain::messages::HistoryPage;
use palaver_domain::{Error, RoomId};

use super::{End, Outgoing, Session, Transport};
use crate::frames;

/// Messages read from the store per page.
const PAGE: u32 = 200;

impl<T: Transport> Session<T> {
    /// Delivers stored messages after the room's position (up to `through`,
    /// or to the newest), advancing the position.
    pub(super) async fn catch_up(&mut self, room: RoomId, through: Option<u64>) -> Result<(), End> {
        loop {
            let Some(after) = self.positions.position(room) else {
                return Ok(());
            };
            if through.is_some_and(|t| after >= t) {
                return Ok(());
            }
            let HistoryPage {
                messages: page,
                reactions,
                ..
            } = match self.read(room, after, PAGE).await {
                Ok(page) => page,
                Err(Error::NotFound(_)) => {
                    self.positions.left(room);
                    return Ok(());
                }
                Err(err) => {
                    tracing::warn!(%err, %room, "catch-up failed; will retry on the next message");
                    return Ok(());
                }
            };
            let full = page.len() == PAGE as usize;
            for message in page {
                if through.is_some_and(|t| message.seq > t) {
                    return Ok(());
                }
                if !self.positions.caught_up(room, message.seq) {
                    // Seqs have no gaps: a page that does not continue the
                    // position cannot be delivered in order.
                    return Ok(());
                }
                let counts = counts_for(&reactions, message.seq);
                self.feed(Outgoing::Frame(frames::message_with_reactions(
                    &message, counts,
                )))
                .await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Re-sends stored messages in `(after, through]` without moving the position.
    pub(super) async fn replay(
        &mut self,
        room: RoomId,
        mut after: u64,
        through: u64,
    ) -> Result<(), End> {
        while after < through {
            let limit = (through - after).min(PAGE as u64) as u32;
            let HistoryPage {
                messages: page,
                reactions,
                ..
            } = match self.read(room, after, limit).await {
                Ok(page) => page,
                Err(err) => return self.send(Outgoing::Frame(frames::error(&err, None))).await,
            };
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            for message in page {
                let counts = counts_for(&reactions, message.seq);
                self.feed(Outgoing::Frame(frames::message_with_reactions(
                    &message, counts,
                )))
                .await?;
            }
        }
        Ok(())
    }

    /// Up to `limit` stored messages of `room` after `after`, with their
    /// reactions as the user sees them, if the user may still read it.
    /// Borrows nothing of the session, which is not `Sync`.
    fn read(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = palaver_domain::Result<HistoryPage>> + Send + 'static {
        let (services, user) = (self.deps.services.clone(), self.user);
        async move { services.messages.catch_up(user, room, after, limit).await }
    }
}
