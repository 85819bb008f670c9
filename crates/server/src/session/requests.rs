//! A client's requests: each client frame becomes a call to the domain
//! (the same calls REST makes), running while the session goes on, or an
//! answer the session gives at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use palaver_domain::{RoomId, Services, UserId};
use palaver_protocol::ws::{ClientFrame, ServerFrame};

use super::Outgoing;
use crate::frames;

/// A connection forwards at most one `typing` per room this often. Clients
/// repeat every 2 s while typing (a little slower, so jitter never drops a
/// repeat), and indicators last 3 s.
const TYPING_EVERY: Duration = Duration::from_millis(1500);

/// What the session does now about a frame.
#[derive(Debug)]
pub enum Immediate {
    /// Nothing: the request runs.
    Nothing,
    /// Write this frame.
    Reply(ServerFrame),
    /// The request is done with nothing to say (a typing repeat, dropped).
    Done(String),
    /// Replay what the client missed in these rooms (the session holds the
    /// positions).
    Resume {
        rooms: BTreeMap<String, u64>,
        reference: Option<String>,
    },
}

/// The requests of one connection that await the domain.
pub struct Requests {
    services: Arc<Services>,
    user: UserId,
    /// Each yields its answer, if it has one: a frame (an ack, an error), or
    /// `Done` for a success whose news is the event every member receives
    /// (edits, deletes, typing and read markers named by a `ref`). Made at
    /// the first request: a connection that only listens never allocates it.
    in_flight: Option<FuturesUnordered<BoxFuture<'static, Option<Outgoing>>>>,
    typing: TypingLimit,
    /// Ends when the last reaction request of this connection is done: the
    /// next waits for it, so `react` and `unreact` take effect in the order
    /// sent (a toggle clicked twice ends where the user left it).
    last_reaction: Option<Shared<BoxFuture<'static, ()>>>,
}

impl Requests {
    pub fn new(services: Arc<Services>, user: UserId) -> Self {
        Self {
            services,
            user,
            in_flight: None,
            typing: TypingLimit::default(),
            last_reaction: None,
        }
    }

    /// The requests in flight, made at the first.
    fn running(&mut self) -> &mut FuturesUnordered<BoxFuture<'static, Option<Outgoing>>> {
        self.in_flight.get_or_insert_with(FuturesUnordered::new)
    }

    pub fn len(&self) -> usize {
        self.in_flight.as_ref().map_or(0, FuturesUnordered::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next finished request's answer (`None` inside: it has none).
    /// Never resolves while nothing is in flight.
    pub async fn next(&mut self) -> Option<Outgoing> {
        let next = match &mut self.in_flight {
            Some(in_flight) => in_flight.next().await,
            None => None,
        };
        match next {
            Some(reply) => reply,
            None => std::future::pending().await,
        }
    }

    /// A request that already finished, if any: `Some(reply)`.
    pub fn next_finished(&mut self) -> Option<Option<Outgoing>> {
        self.in_flight.as_mut()?.next().now_or_never().flatten()
    }

    pub fn start(&mut self, frame: ClientFrame) -> Immediate {
        let (services, user) = (self.services.clone(), self.user);
        match frame {
            ClientFrame::Send {
                room,
                body,
                client_id,
                reply_to,
                attachments,
            } => self.running().push(
                async move {
                    let posted = services
                        .messages
                        .post(
                            user,
                            RoomId(room),
                            body,
                            client_id.clone(),
                            reply_to,
                            attachments,
                        )
                        .await;
                    Some(Outgoing::Frame(match posted {
                        Ok(posted) => frames::ack(&posted.message),
                        Err(err) => frames::error(&err, client_id),
                    }))
                }
                .boxed(),
            ),
            ClientFrame::Edit {
                room,
                seq,
                body,
                reference,
            } => self.answer_errors_only(reference, async move {
                services
                    .messages
                    .edit(user, RoomId(room), seq, body)
                    .await
                    .map(drop)
            }),
            ClientFrame::Delete {
                room,
                seq,
                reference,
            } => self.answer_errors_only(reference, async move {
                services.messages.delete(user, RoomId(room), seq).await
            }),
            ClientFrame::Typing { room, reference } => {
                let room = RoomId(room);
                if !self.typing.allow(room, Instant::now()) {
                    return reference.map_or(Immediate::Nothing, Immediate::Done);
                }
                self.answer_errors_only(reference, async move {
                    services.activity.typing(user, room).await
                });
            }
            ClientFrame::Read {
                room,
                seq,
                reference,
            } => self.answer_errors_only(reference, async move {
                services
                    .rooms
                    .mark_read(user, RoomId(room), seq)
                    .await
                    .map(drop)
            }),
            ClientFrame::React {
                room,
                seq,
                emoji,
                reference,
            } => {
                let turn = self.reaction_turn();
                self.answer_errors_only(reference, async move {
                    turn.run(services.messages.react(user, RoomId(room), seq, &emoji))
                        .await
                })
            }
            ClientFrame::Unreact {
                room,
                seq,
                emoji,
                reference,
            } => {
                let turn = self.reaction_turn();
                self.answer_errors_only(reference, async move {
                    turn.run(services.messages.unreact(user, RoomId(room), seq, &emoji))
                        .await
                })
            }
            ClientFrame::Resume { rooms, reference } => {
                return Immediate::Resume { rooms, reference }
            }
            ClientFrame::Ping { reference } => {
                return Immediate::Reply(ServerFrame::Pong { reference })
            }
            ClientFrame::Auth { .. } => {
                return Immediate::Reply(frames::protocol_error(
                    "already_authenticated",
                    "this connection is already authenticated",
                    None,
                ))
            }
        }
        Immediate::Nothing
    }

    /// The next reaction request's place in line: after the last one.
    fn reaction_turn(&mut self) -> Turn {
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let after = self
            .last_reaction
            .replace(finished.map(drop).boxed().shared());
        Turn { after, done }
    }

    /// Runs a request whose success the client learns from the event it
    /// causes: a refusal is answered by an error frame naming `reference`, a
    /// success by `Done` (which the WebSocket does not write).
    fn answer_errors_only(
        &mut self,
        reference: Option<String>,
        work: impl Future<Output = palaver_domain::Result<()>> + Send + 'static,
    ) {
        self.running().push(
            async move {
                match work.await {
                    Ok(()) => reference.map(Outgoing::Done),
                    Err(err) => Some(Outgoing::Frame(frames::error(&err, reference))),
                }
            }
            .boxed(),
        );
    }
}

/// A request's place in a line of requests that take effect in order.
struct Turn {
    /// The one before it, if any.
    after: Option<Shared<BoxFuture<'static, ()>>>,
    /// Dropped when this one is done (or dropped), letting the next go.
    done: tokio::sync::oneshot::Sender<()>,
}

impl Turn {
    async fn run<T>(self, work: impl Future<Output = T>) -> T {
        if let Some(after) = self.after {
            after.await;
        }
        let out = work.await;
        drop(self.done);
        out
    }
}

/// Rooms one connection may be typing in within one `TYPING_EVERY`; past
/// that, `typing` for another room is dropped until one ages out.
const MAX_TYPING_ROOMS: usize = 16;

/// When this connection last forwarded `typing` per room, for the rooms
/// typed in within the last `TYPING_EVERY` only (older entries say nothing):
/// at most `MAX_TYPING_ROOMS`, whatever room ids the client sends. Empty,
/// and unallocated, for connections that never type.
#[derive(Debug, Default)]
struct TypingLimit {
    last: Vec<(RoomId, Instant)>,
}

impl TypingLimit {
    fn allow(&mut self, room: RoomId, now: Instant) -> bool {
        match self.last.iter_mut().find(|(r, _)| *r == room) {
            Some((_, at)) if now.duration_since(*at) < TYPING_EVERY => false,
            Some((_, at)) => {
                *at = now;
                true
            }
            None => {
                self.last
                    .retain(|(_, at)| now.duration_since(*at) < TYPING_EVERY);
                if self.last.len() >= MAX_TYPING_ROOMS {
                    return false;
                }
                self.last.push((room, now));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_forwarded_at_most_once_per_period_and_room() {
        let mut limit = TypingLimit::default();
        let start = Instant::now();
        assert!(limit.allow(RoomId(1), start));
        assert!(!limit.allow(RoomId(1), start + TYPING_EVERY / 2));
        assert!(limit.allow(RoomId(2), start + TYPING_EVERY / 2), "per room");
        assert!(limit.allow(RoomId(1), start + TYPING_EVERY));
        assert!(!limit.allow(RoomId(1), start + TYPING_EVERY + TYPING_EVERY / 2));
    }

    #[test]
    fn the_typing_limit_keeps_only_recent_rooms_and_a_bounded_number_of_them() {
        let mut limit = TypingLimit::default();
        let start = Instant::now();
        for room in 0..MAX_TYPING_ROOMS as i64 {
            assert!(limit.allow(RoomId(room), start));
        }
        assert!(
            !limit.allow(RoomId(1000), start),
            "one connection types in a bounded number of rooms at once"
        );
        // Thousands of room ids, a period apart: only the recent ones are kept.
        for room in 0..5000 {
            let now = start + TYPING_EVERY * (room as u32 + 1);
            assert!(limit.allow(RoomId(10_000 + room), now));
            assert!(limit.last.len() <= MAX_TYPING_ROOMS);
        }
        assert_eq!(limit.last.len(), 1);
    }
}
