//! Per-connection delivery state: for every room the connection follows, the
//! last seq it delivered (or the client is known to have). Pure bookkeeping,
//! so the ordering invariant is tested here without a socket or a store.
//!
//! The invariant: a connection delivers each room's messages once each, in
//! seq order, with no gap. A frame at or below the position is a duplicate;
//! one beyond the next seq means a gap, to be filled from the store first.

use std::collections::HashMap;

use palaver_domain::RoomId;

#[derive(Debug, Default)]
pub struct Positions {
    rooms: HashMap<RoomId, u64>,
    /// Per room replayed on this connection, the seq the replay began
    /// after: what lies above it was sent once and is not sent again, so
    /// repeated `resume`s cost each message at most once per connection.
    /// Empty (no allocation) until a client resumes.
    replayed: HashMap<RoomId, u64>,
}

/// What to do with a room message that arrived live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next seq: deliver it (the position has moved to it).
    Deliver,
    /// Already delivered (a bus replay, or a catch-up that overtook it): drop.
    Duplicate,
    /// Not followed (a late frame from before a leave, or one racing ahead of
    /// the join, which catches up from the store): drop.
    NotFollowed,
    /// Seqs `after + 1 ..= through` are missing: fill them from the store,
    /// then offer the frame again.
    Gap { after: u64, through: u64 },
}

/// What a client's `resume` of one room calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Not a room this connection follows.
    NotFollowed,
    /// The client has seen as much as this connection delivered, or more
    /// (another tab saw more): nothing to send, the position moved up.
    UpToDate,
    /// Re-send `after + 1 ..= through` from the store; the position stays,
    /// since everything later follows live.
    Replay { after: u64, through: u64 },
}

impl Positions {
    /// Starts following `room` at `last_seq` (the position `ready` reported).
    pub fn follow(&mut self, room: RoomId, last_seq: u64) {
        self.rooms.insert(room, last_seq);
    }

    /// The user joined `room` with live delivery after `last_seq`. True when
    /// it was not followed yet: messages committed between the join and the
    /// hub's following reached the hub first, so the caller catches up.
    pub fn joined(&mut self, room: RoomId, last_seq: u64) -> bool {
        match self.rooms.entry(room) {
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(last_seq);
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        }
    }

    pub fn left(&mut self, room: RoomId) {
        self.rooms.remove(&room);
        self.replayed.remove(&room);
    }

    pub fn position(&self, room: RoomId) -> Option<u64> {
        self.rooms.get(&room).copied()
    }

    pub fn follows(&self, room: RoomId) -> bool {
        self.rooms.contains_key(&room)
    }

    pub fn arrive(&mut self, room: RoomId, seq: u64) -> Arrival {
        let Some(delivered) = self.rooms.get_mut(&room) else {
            return Arrival::NotFollowed;
        };
        if seq <= *delivered {
            Arrival::Duplicate
        } else if seq == *delivered + 1 {
            *delivered = seq;
            Arrival::Deliver
        } else {
            Arrival::Gap {
                after: *delivered,
                through: seq - 1,
            }
        }
    }

    /// A message read from the store while catching up: true when it is the
    /// next to deliver (the position moved to it).
    pub fn caught_up(&mut self, room: RoomId, seq: u64) -> bool {
        matches!(self.arrive(room, seq), Arrival::Deliver)
    }

    pub fn resume(&mut self, room: RoomId, seen: u64) -> Resume {
        let Some(delivered) = self.rooms.get_mut(&room) else {
            return Resume::NotFollowed;
        };
        if seen >= *delivered {
            *delivered = seen;
            return Resume::UpToDate;
        }
        let through = match self.replayed.get(&room) {
            Some(&floor) => floor.min(*delivered),
            None => *delivered,
        };
        if seen >= through {
            return Resume::UpToDate;
        }
        self.replayed.insert(room, seen);
        Resume::Replay {
            after: seen,
            through,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: RoomId = RoomId(7);

    #[test]
    fn in_order_frames_are_delivered_and_repeats_dropped() {
        let mut positions = Positions::default();
        positions.follow(ROOM, 3);
        assert_eq!(positions.arrive(ROOM, 4), Arrival::Deliver);
        assert_eq!(positions.arrive(ROOM, 5), Arrival::Deliver);
        assert_eq!(positions.arrive(ROOM, 5), Arrival::Duplicate);
        assert_eq!(positions.arrive(ROOM, 2), Arrival::Duplicate);
        assert_eq!(positions.position(ROOM), Some(5));
    }

    #[test]
    fn a_gap_is_reported_and_closed_by_catching_up() {
        let mut positions = Positions::default();
        positions.follow(ROOM, 3);
        assert_eq!(
            positions.arrive(ROOM, 7),
            Arrival::Gap {
                after: 3,
                through: 6
            }
        );
        assert_eq!(positions.position(ROOM), Some(3), "nothing delivered yet");
        for seq in 4..=6 {
            assert!(positions.caught_up(ROOM, seq));
        }
        assert!(!positions.caught_up(ROOM, 5), "a stored duplicate");
        assert_eq!(positions.arrive(ROOM, 7), Arrival::Deliver);
    }

    #[test]
    fn a_gap_that_could_not_be_filled_stays_a_gap() {
        let mut positions = Positions::default();
        positions.follow(ROOM, 3);
        assert!(matches!(positions.arrive(ROOM, 6), Arrival::Gap { .. }));
        // The store answered only part of it: 6 must still wait for 5.
        assert!(positions.caught_up(ROOM, 4));
        assert_eq!(
            positions.arrive(ROOM, 6),
            Arrival::Gap {
                after: 4,
                through: 5
            }
        );
    }

    #[test]
    fn unfollowed_rooms_deliver_nothing() {
        let mut positions = Positions::default();
        assert_eq!(positions.arrive(ROOM, 1), Arrival::NotFollowed);
        assert!(!positions.caught_up(ROOM, 1));
        positions.follow(ROOM, 0);
        positions.left(ROOM);
        assert_eq!(positions.arrive(ROOM, 1), Arrival::NotFollowed);
        assert_eq!(positions.resume(ROOM, 0), Resume::NotFollowed);
    }

    #[test]
    fn a_join_starts_after_its_seq_and_is_caught_up_only_once() {
        let mut positions = Positions::default();
        assert!(positions.joined(ROOM, 10), "new: catch up");
        assert!(!positions.joined(ROOM, 12), "already followed");
        assert_eq!(positions.position(ROOM), Some(10));
        assert_eq!(positions.arrive(ROOM, 10), Arrival::Duplicate);
        assert_eq!(positions.arrive(ROOM, 11), Arrival::Deliver);
    }

    #[test]
    fn resume_replays_what_the_client_missed_without_moving_the_position() {
        let mut positions = Positions::default();
        positions.follow(ROOM, 9);
        assert_eq!(
            positions.resume(ROOM, 4),
            Resume::Replay {
                after: 4,
                through: 9
            }
        );
        assert_eq!(positions.position(ROOM), Some(9));
        assert_eq!(positions.arrive(ROOM, 10), Arrival::Deliver);
    }

    #[test]
    fn a_client_ahead_of_the_connection_moves_the_position_up() {
        let mut positions = Positions::default();
        positions.follow(ROOM, 9);
        assert_eq!(positions.resume(ROOM, 12), Resume::UpToDate);
        assert_eq!(positions.arrive(ROOM, 12), Arrival::Duplicate);
        assert_eq!(positions.arrive(ROOM, 13), Arrival::Deliver);
    }

    #[test]
    fn a_connection_replays_each_message_at_most_once_however_often_it_is_asked() {
        let mut positions = Positions::default();
        positions.follow(ROOM, 400);
        assert_eq!(
            positions.resume(ROOM, 0),
            Resume::Replay {
                after: 0,
                through: 400
            }
        );
        assert_eq!(positions.resume(ROOM, 0), Resume::UpToDate);
        assert_eq!(positions.resume(ROOM, 100), Resume::UpToDate);
        positions.follow(ROOM, 400);
        assert_eq!(
            positions.resume(ROOM, 0),
            Resume::UpToDate,
            "still replayed"
        );
        positions.left(ROOM);
        positions.follow(ROOM, 400);
        assert_eq!(
            positions.resume(ROOM, 300),
            Resume::Replay {
                after: 300,
                through: 400
            }
        );
        // Only what was not replayed yet: below the last replay's start.
        assert_eq!(
            positions.resume(ROOM, 250),
            Resume::Replay {
                after: 250,
                through: 300
            }
        );
    }
}
