//! The connection hub: which local connections follow which rooms, and
//! offering already-encoded frames to them. It knows nothing of events or
//! frame contents (`delivery.rs` decides what goes where).
//!
//! Hot-path design (see ARCHITECTURE.md, "Fan-out"):
//! - rooms are sharded over `SHARDS` locks; a delivery clones one `Arc` of the
//!   room's recipients under a read lock, releases it, and only then touches
//!   the queues. The snapshot is rebuilt on the first delivery after a
//!   membership change, so n connections following a room cost O(n), not the
//!   O(n²) of copying the list on every follow;
//! - an event is serialized once; every recipient gets a refcount of the bytes;
//! - each connection's queue is bounded; a full queue cuts the connection off
//!   (close 1013) instead of growing memory.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use palaver_domain::{RoomId, UserId};
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc::error::TrySendError;

use crate::frames::EncodedFrame;
use crate::outgoing::{self, QueueReceiver, QueueSender};
use crate::stop::{StopReason, StopSignal};

const SHARDS: usize = 64;

/// Connections cut off because their queue was full.
const SLOW_CONSUMERS_CUT: &str = "palaver_slow_consumers_cut_total";

/// Presence is pushed only in rooms with at most this many connections on the
/// node. In a room of n members everyone coming online is n² frames: 10⁶ for
/// a room of 1,000 at the start of the day. Large rooms ask
/// `GET /rooms/{id}/online` instead (measured in docs/benchmarks.md).
pub const PRESENCE_ROOM_LIMIT: usize = 100;

/// A frame belonging to a room's ordered stream.
#[derive(Debug)]
pub struct SequencedFrame {
    pub room: RoomId,
    pub seq: u64,
    pub frame: EncodedFrame,
    /// When the hub got it: the start of the `palaver_delivery_seconds` stage.
    pub reached_hub: Instant,
}

/// What the hub hands a connection.
///
/// Kept to 16 bytes: tokio allocates a connection's queue in blocks of 32
/// slots, the first when the connection opens, so every idle connection pays
/// 32 × `size_of::<Outbound>()`. Hence the `Arc` and the boxed rare variant.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A room message: delivered in seq order, deduplicated by the connection.
    Sequenced(Arc<SequencedFrame>),
    /// Any other frame, already serialized and shared by its recipients.
    Frame(Arc<EncodedFrame>),
    /// The connection now follows a room; live delivery starts after its `last_seq`.
    Joined(Box<Joined>),
    /// The connection no longer follows `room`.
    Left(RoomId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub room: RoomId,
    pub last_seq: u64,
}

const _: () = assert!(std::mem::size_of::<Outbound>() == 16);

/// The hub's handle on one connection.
#[derive(Debug)]
pub struct Connection {
    pub id: u64,
    pub user: UserId,
    /// The login it authenticated with (the access token's `sid`).
    pub session: Box<str>,
    queue: QueueSender<Outbound>,
    /// Raised when the connection could not keep up with its queue, or when
    /// the server shuts down.
    pub stop: StopSignal,
    /// Rooms this connection is registered under, so it can be removed from all.
    rooms: Mutex<Vec<RoomId>>,
}

impl Connection {
    /// The rooms the connection follows now.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.rooms.lock().clone()
    }

    /// Queues `item`, or marks the connection slow if its queue is full.
    /// Returns false when the connection is gone (its receiver dropped).
    fn offer(&self, item: Outbound) -> bool {
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                if self.stop.raise(StopReason::SlowConsumer) {
                    tracing::info!(conn = self.id, user = %self.user, "slow consumer cut off");
                    metrics::counter!(SLOW_CONSUMERS_CUT).increment(1);
                }
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

struct Sharded<K, V> {
    shards: Vec<RwLock<HashMap<K, V>>>,
}

/// Spreads ids over shards; ids are sequential, so a modulo spreads evenly.
trait ShardKey: Hash + Eq + Copy {
    fn shard_index(self) -> usize;
}

impl ShardKey for RoomId {
    fn shard_index(self) -> usize {
        self.0.rem_euclid(SHARDS as i64) as usize
    }
}

impl ShardKey for UserId {
    fn shard_index(self) -> usize {
        self.0.rem_euclid(SHARDS as i64) as usize
    }
}

impl<K: ShardKey, V> Sharded<K, V> {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: K) -> &RwLock<HashMap<K, V>> {
        &self.shards[key.shard_index()]
    }
}

/// One room's connections on this node.
#[derive(Default)]
struct RoomConnections {
    /// By connection id: a disconnect is O(1), so 10,000 followers leaving
    /// at once (a peer restart, a network blip) is not 50 million steps
    /// under the shard's write lock.
    connections: HashMap<u64, Arc<Connection>>,
    /// What deliveries share; `None` after a change until the next delivery.
    snapshot: Option<Arc<[Arc<Connection>]>>,
}

pub struct Hub {
    rooms: Sharded<RoomId, RoomConnections>,
    users: Sharded<UserId, Vec<Arc<Connection>>>,
    next_id: AtomicU64,
    queue_capacity: usize,
    /// Set by [`Hub::stop_all`]: a connection registered later is stopped at once.
    stopping: AtomicBool,
}

impl Hub {
    pub fn new(queue_capacity: usize) -> Self {
        // Exported from the start: a rate over a counter that appears at its
        // first event misses that event.
        metrics::counter!(SLOW_CONSUMERS_CUT).increment(0);
        Self {
            rooms: Sharded::new(),
            users: Sharded::new(),
            next_id: AtomicU64::new(1),
            queue_capacity,
            stopping: AtomicBool::new(false),
        }
    }

    /// Registers a connection of `user`: from now on it receives membership
    /// changes of that user. Rooms are added with [`Hub::follow`].
    pub fn register(
        &self,
        user: UserId,
        session: &str,
    ) -> (Arc<Connection>, QueueReceiver<Outbound>) {
        let (queue, rx) = outgoing::channel(self.queue_capacity);
        let conn = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            session: session.into(),
            queue,
            stop: StopSignal::default(),
            rooms: Mutex::new(Vec::new()),
        });
        self.users
            .shard(user)
            .write()
            .entry(user)
            .or_default()
            .push(conn.clone());
        // After the insert: either `stop_all` sees this connection or we see
        // its flag (the shard lock orders the two).
        if self.stopping.load(Ordering::SeqCst) {
            conn.stop.raise(StopReason::Shutdown);
        }
        (conn, rx)
    }

    /// Tells every connection, and every one registered from now on, that
    /// the server is shutting down.
    pub fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for shard in &self.users.shards {
            for conn in shard.read().values().flatten() {
                conn.stop.raise(StopReason::Shutdown);
            }
        }
    }

    /// Tells `user`'s connections that authenticated with one of `sessions`
    /// that their login ended.
    pub fn end_sessions(&self, user: UserId, sessions: &[String]) {
        for conn in self.connections_of(user) {
            if sessions.iter().any(|s| **s == *conn.session) {
                conn.stop.raise(StopReason::SessionEnded);
            }
        }
    }

    /// Removes the connection everywhere; returns the rooms it followed.
    pub fn unregister(&self, conn: &Arc<Connection>) -> Vec<RoomId> {
        let rooms = std::mem::take(&mut *conn.rooms.lock());
        for room in &rooms {
            self.remove_from_room(*room, conn.id);
        }
        {
            let mut users = self.users.shard(conn.user).write();
            if let Some(list) = users.get_mut(&conn.user) {
                list.retain(|c| c.id != conn.id);
                if list.is_empty() {
                    users.remove(&conn.user);
                }
            }
        }
        rooms
    }

    /// Adds the connection to a room's recipients (idempotent).
    pub fn follow(&self, conn: &Arc<Connection>, room: RoomId) {
        {
            let mut rooms = conn.rooms.lock();
            if rooms.contains(&room) {
                return;
            }
            rooms.push(room);
        }
        let mut shard = self.rooms.shard(room).write();
        let entry = shard.entry(room).or_default();
        entry.connections.insert(conn.id, conn.clone());
        entry.snapshot = None;
    }

    pub fn unfollow(&self, conn: &Arc<Connection>, room: RoomId) {
        conn.rooms.lock().retain(|r| *r != room);
        self.remove_from_room(room, conn.id);
    }

    fn remove_from_room(&self, room: RoomId, conn_id: u64) {
        let mut shard = self.rooms.shard(room).write();
        let Some(entry) = shard.get_mut(&room) else {
            return;
        };
        if entry.connections.remove(&conn_id).is_none() {
            return;
        }
        entry.snapshot = None;
        if entry.connections.is_empty() {
            shard.remove(&room);
        }
    }

    fn recipients(&self, room: RoomId) -> Option<Arc<[Arc<Connection>]>> {
        let shard = self.rooms.shard(room);
        if let Some(snapshot) = shard.read().get(&room)?.snapshot.clone() {
            return Some(snapshot);
        }
        // Changed since the last delivery: rebuild once, for every delivery after.
        let mut rooms = shard.write();
        let entry = rooms.get_mut(&room)?;
        Some(
            entry
                .snapshot
                .get_or_insert_with(|| entry.connections.values().cloned().collect())
                .clone(),
        )
    }

    fn connections_of(&self, user: UserId) -> Vec<Arc<Connection>> {
        self.users
            .shard(user)
            .read()
            .get(&user)
            .cloned()
            .unwrap_or_default()
    }

    /// Offers `item` to every connection following `room`; prunes the dead.
    /// Returns how many connections it was offered to.
    pub fn broadcast(&self, room: RoomId, item: Outbound) -> usize {
        match self.recipients(room) {
            Some(recipients) => {
                self.offer_all(room, &recipients, item);
                recipients.len()
            }
            None => 0,
        }
    }

    /// Offers the frame to the room's connections except those of `user`.
    pub fn broadcast_to_others(&self, room: RoomId, user: UserId, frame: Arc<EncodedFrame>) {
        let Some(recipients) = self.recipients(room) else {
            return;
        };
        for conn in recipients.iter().filter(|c| c.user != user) {
            conn.offer(Outbound::Frame(frame.clone()));
        }
    }

    fn offer_all(&self, room: RoomId, recipients: &[Arc<Connection>], item: Outbound) {
        let mut dead = Vec::new();
        for conn in recipients.iter() {
            if !conn.offer(item.clone()) {
                dead.push(conn.id);
            }
        }
        for id in dead {
            self.remove_from_room(room, id);
        }
    }

    /// Offers the frame to every connection of `user`, whatever they follow.
    pub fn offer_to_user(&self, user: UserId, frame: Arc<EncodedFrame>) {
        for conn in self.connections_of(user) {
            conn.offer(Outbound::Frame(frame.clone()));
        }
    }

    /// `user` became a member: every connection of theirs follows the room
    /// from now on and is told where its live delivery starts.
    pub fn join(&self, user: UserId, room: RoomId, last_seq: u64) {
        for conn in self.connections_of(user) {
            self.follow(&conn, room);
            conn.offer(Outbound::Joined(Box::new(Joined { room, last_seq })));
        }
    }

    /// `user` is no longer a member: their connections stop following the room
    /// at once but still hear why (`frame`); everyone else hears it too.
    pub fn depart(&self, room: RoomId, user: UserId, frame: Arc<EncodedFrame>) {
        for conn in &self.connections_of(user) {
            self.unfollow(conn, room);
            conn.offer(Outbound::Left(room));
            conn.offer(Outbound::Frame(frame.clone()));
        }
        self.broadcast(room, Outbound::Frame(frame));
    }

    /// The room is gone: every connection stops following it, hearing `frame` last.
    pub fn close_room(&self, room: RoomId, frame: Arc<EncodedFrame>) {
        for conn in self.recipients(room).iter().flat_map(|r| r.iter()) {
            self.unfollow(conn, room);
            conn.offer(Outbound::Left(room));
            conn.offer(Outbound::Frame(frame.clone()));
        }
    }

    /// Offers `frame` once to every connection following any of `rooms`,
    /// skipping rooms with more than [`PRESENCE_ROOM_LIMIT`] local connections.
    pub fn broadcast_presence(&self, rooms: &[RoomId], frame: Arc<EncodedFrame>) {
        let mut seen = HashSet::new();
        for room in rooms {
            // Counted first: a large room's snapshot is not rebuilt for nothing.
            if self.followers(*room) > PRESENCE_ROOM_LIMIT {
                continue;
            }
            let Some(recipients) = self.recipients(*room) else {
                continue;
            };
            for conn in recipients.iter() {
                if seen.insert(conn.id) {
                    conn.offer(Outbound::Frame(frame.clone()));
                }
            }
        }
    }

    /// Whether anyone here follows `room` (so a frame for it is worth encoding).
    pub fn has_followers(&self, room: RoomId) -> bool {
        self.recipients(room).is_some()
    }

    /// Number of local connections following `room`.
    pub fn followers(&self, room: RoomId) -> usize {
        let shard = self.rooms.shard(room).read();
        shard.get(&room).map_or(0, |r| r.connections.len())
    }
}

#[cfg(test)]
mod tests {
    use palaver_protocol::ws::ServerFrame;

    use super::*;
    use crate::frames::encode;

    fn message(room: i64, seq: u64) -> Outbound {
        Outbound::Sequenced(Arc::new(SequencedFrame {
            room: RoomId(room),
            seq,
            frame: encode(&ServerFrame::Pong { reference: None }),
            reached_hub: Instant::now(),
        }))
    }

    fn frame() -> Arc<EncodedFrame> {
        Arc::new(encode(&ServerFrame::Pong { reference: None }))
    }

    #[test]
    fn message_reaches_followers_only_with_shared_bytes() {
        let hub = Hub::new(8);
        let (a, mut rx_a) = hub.register(UserId(1), "s");
        let (b, mut rx_b) = hub.register(UserId(2), "s");
        let (_c, mut rx_c) = hub.register(UserId(3), "s");
        hub.follow(&a, RoomId(10));
        hub.follow(&b, RoomId(10));
        assert_eq!(hub.broadcast(RoomId(10), message(10, 1)), 2);
        let (Ok(Outbound::Sequenced(fa)), Ok(Outbound::Sequenced(fb))) =
            (rx_a.try_recv(), rx_b.try_recv())
        else {
            panic!("followers did not receive the message")
        };
        assert!(Arc::ptr_eq(&fa, &fb), "serialized once, shared");
        assert_eq!(fa.seq, 1);
        assert!(rx_c.try_recv().is_err(), "non-follower received a message");
    }

    #[test]
    fn recipients_follow_joins_and_leaves_made_after_a_delivery() {
        let hub = Hub::new(8);
        let (a, mut rx_a) = hub.register(UserId(1), "s");
        let (b, mut rx_b) = hub.register(UserId(2), "s");
        hub.follow(&a, RoomId(10));
        hub.broadcast(RoomId(10), message(10, 1)); // builds the room's snapshot
        hub.follow(&b, RoomId(10));
        hub.broadcast(RoomId(10), message(10, 2));
        hub.unfollow(&a, RoomId(10));
        hub.broadcast(RoomId(10), message(10, 3));
        let seqs = |rx: &mut QueueReceiver<Outbound>| {
            std::iter::from_fn(|| rx.try_recv().ok())
                .map(|item| match item {
                    Outbound::Sequenced(frame) => frame.seq,
                    other => panic!("unexpected {other:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(&mut rx_a), [1, 2], "a left before 3");
        assert_eq!(seqs(&mut rx_b), [2, 3], "b joined after 1");
        assert_eq!(hub.followers(RoomId(10)), 1);
        hub.unfollow(&b, RoomId(10));
        assert_eq!(hub.followers(RoomId(10)), 0);
        assert_eq!(hub.broadcast(RoomId(10), message(10, 4)), 0);
    }

    #[test]
    fn full_queue_marks_connection_slow_instead_of_growing() {
        let hub = Hub::new(2);
        let (a, _rx) = hub.register(UserId(1), "s");
        hub.follow(&a, RoomId(1));
        for seq in 1..=3 {
            hub.broadcast(RoomId(1), message(1, seq));
        }
        assert!(a.stop.is_raised(StopReason::SlowConsumer));
        assert!(!a.stop.is_raised(StopReason::Shutdown));
    }

    #[test]
    fn stopping_all_reaches_open_and_later_connections() {
        let hub = Hub::new(8);
        let (open, _rx) = hub.register(UserId(1), "s");
        hub.stop_all();
        let (later, _rx) = hub.register(UserId(2), "s");
        for conn in [&open, &later] {
            assert!(conn.stop.is_raised(StopReason::Shutdown));
            assert!(!conn.stop.is_raised(StopReason::SlowConsumer));
        }
    }

    #[test]
    fn joining_makes_every_connection_of_the_user_follow_the_room() {
        let hub = Hub::new(8);
        let (a1, mut rx1) = hub.register(UserId(1), "s");
        let (_a2, mut rx2) = hub.register(UserId(1), "s");
        hub.join(UserId(1), RoomId(5), 7);
        assert_eq!(hub.followers(RoomId(5)), 2);
        for rx in [&mut rx1, &mut rx2] {
            let Ok(Outbound::Joined(joined)) = rx.try_recv() else {
                panic!("no Joined")
            };
            assert_eq!(
                *joined,
                Joined {
                    room: RoomId(5),
                    last_seq: 7
                }
            );
        }
        hub.depart(RoomId(5), UserId(1), frame());
        assert_eq!(hub.followers(RoomId(5)), 0);
        for rx in [&mut rx1, &mut rx2] {
            assert!(matches!(rx.try_recv(), Ok(Outbound::Left(RoomId(5)))));
            assert!(matches!(rx.try_recv(), Ok(Outbound::Frame(_))), "told why");
        }
        assert_eq!(hub.unregister(&a1), Vec::<RoomId>::new());
    }

    #[test]
    fn unregistering_returns_the_rooms_followed() {
        let hub = Hub::new(8);
        let (a, _rx) = hub.register(UserId(1), "s");
        hub.follow(&a, RoomId(1));
        hub.follow(&a, RoomId(2));
        hub.unfollow(&a, RoomId(1));
        assert_eq!(a.rooms(), [RoomId(2)]);
        assert_eq!(hub.unregister(&a), [RoomId(2)]);
        assert_eq!(hub.followers(RoomId(2)), 0);
    }

    #[test]
    fn presence_skips_rooms_too_large_to_fan_out_to() {
        let hub = Hub::new(8);
        let (small, mut small_rx) = hub.register(UserId(1), "s");
        hub.follow(&small, RoomId(1));
        hub.follow(&small, RoomId(2));
        let mut crowd = Vec::new();
        for user in 0..=PRESENCE_ROOM_LIMIT as i64 {
            let (conn, rx) = hub.register(UserId(100 + user), "s");
            hub.follow(&conn, RoomId(2));
            crowd.push((conn, rx));
        }
        hub.broadcast_presence(&[RoomId(1), RoomId(2)], frame());
        assert!(
            matches!(small_rx.try_recv(), Ok(Outbound::Frame(_))),
            "small room: pushed"
        );
        assert!(
            small_rx.try_recv().is_err(),
            "once, though it shares two rooms"
        );
        assert!(
            crowd.iter_mut().all(|(_, rx)| rx.try_recv().is_err()),
            "large room: not pushed"
        );
    }

    #[test]
    fn dropped_connections_are_pruned_on_delivery() {
        let hub = Hub::new(8);
        let (a, rx) = hub.register(UserId(1), "s");
        hub.follow(&a, RoomId(1));
        drop(rx);
        hub.broadcast(RoomId(1), message(1, 1));
        assert_eq!(hub.followers(RoomId(1)), 0);
    }
}
