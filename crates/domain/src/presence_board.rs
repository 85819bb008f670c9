//! Who is online, across nodes, and typing indicators.
//!
//! A user is online while they have at least one authenticated connection on
//! any node. Each node counts its own connections and tells the others, over
//! the bus, when a user's count leaves or reaches zero (`Presence`). In
//! cluster mode each node also sends, every few seconds, the full list of its
//! online users (`NodeHeartbeat`): it repairs anything a lost event got wrong,
//! and a node whose heartbeats stop for `ttl` is presumed dead, so its users
//! go offline everywhere without it. (Why not Redis: one more service to run
//! for state that the bus and a few kilobytes per node already carry.)
//!
//! [`PresenceBoard`] is the pure bookkeeping; the server drives it and pushes
//! the transitions it reports to connections. Announcing goes through
//! `crate::activity`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::ids::UserId;

/// A change of a user's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Online(UserId),
    Offline(UserId),
}

struct RemoteNode {
    users: HashSet<UserId>,
    heard: Instant,
}

/// One node's view of who is online where.
pub struct PresenceBoard {
    local: HashMap<UserId, u32>,
    remote: HashMap<String, RemoteNode>,
    ttl: Duration,
}

impl PresenceBoard {
    /// `ttl`: how long a silent node's users still count as online.
    pub fn new(ttl: Duration) -> Self {
        Self {
            local: HashMap::new(),
            remote: HashMap::new(),
            ttl,
        }
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.local.contains_key(&user) || self.remote.values().any(|n| n.users.contains(&user))
    }

    /// Everyone with a connection on this node.
    pub fn local_users(&self) -> Vec<UserId> {
        self.local.keys().copied().collect()
    }

    /// A connection of `user` opened here. Returns whether it is their first
    /// here (this node must announce it) and the overall transition, if any.
    pub fn connect(&mut self, user: UserId) -> (bool, Option<Transition>) {
        let was = self.is_online(user);
        let count = self.local.entry(user).or_default();
        *count += 1;
        let first = *count == 1;
        (first, (!was).then_some(Transition::Online(user)))
    }

    /// A connection of `user` closed here. Returns whether it was their last
    /// here, and the overall transition, if any.
    pub fn disconnect(&mut self, user: UserId) -> (bool, Option<Transition>) {
        let Some(count) = self.local.get_mut(&user) else {
            return (false, None);
        };
        *count -= 1;
        if *count > 0 {
            return (false, None);
        }
        self.local.remove(&user);
        let now = self.is_online(user);
        (true, (!now).then_some(Transition::Offline(user)))
    }

    /// Another node says `user` came or went there.
    pub fn remote_change(
        &mut self,
        node: &str,
        user: UserId,
        online: bool,
        now: Instant,
    ) -> Option<Transition> {
        let was = self.is_online(user);
        let entry = self.remote.entry(node.to_owned()).or_insert(RemoteNode {
            users: HashSet::new(),
            heard: now,
        });
        entry.heard = now;
        if online {
            entry.users.insert(user);
        } else {
            entry.users.remove(&user);
        }
        transition(user, was, self.is_online(user))
    }

    /// Another node's full list of online users replaces what we knew of it.
    pub fn heartbeat(&mut self, node: &str, users: &[UserId], now: Instant) -> Vec<Transition> {
        let next: HashSet<UserId> = users.iter().copied().collect();
        let previous = self
            .remote
            .get(node)
            .map(|n| n.users.clone())
            .unwrap_or_default();
        let touched: Vec<UserId> = previous.symmetric_difference(&next).copied().collect();
        let before: Vec<bool> = touched.iter().map(|u| self.is_online(*u)).collect();
        self.remote.insert(
            node.to_owned(),
            RemoteNode {
                users: next,
                heard: now,
            },
        );
        touched
            .into_iter()
            .zip(before)
            .filter_map(|(user, was)| transition(user, was, self.is_online(user)))
            .collect()
    }

    /// Forgets nodes not heard from for `ttl`; their users may go offline.
    pub fn expire(&mut self, now: Instant) -> Vec<Transition> {
        let dead: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, n)| now.duration_since(n.heard) > self.ttl)
            .map(|(node, _)| node.clone())
            .collect();
        let mut transitions = Vec::new();
        for node in dead {
            let users = self
                .remote
                .remove(&node)
                .map(|n| n.users)
                .unwrap_or_default();
            tracing::warn!(%node, users = users.len(), "node silent: its users are offline");
            transitions.extend(
                users
                    .into_iter()
                    .filter(|user| !self.is_online(*user))
                    .map(Transition::Offline),
            );
        }
        transitions
    }
}

fn transition(user: UserId, was: bool, now: bool) -> Option<Transition> {
    match (was, now) {
        (false, true) => Some(Transition::Online(user)),
        (true, false) => Some(Transition::Offline(user)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn local_connections_count_and_only_edges_are_transitions() {
        let mut board = PresenceBoard::new(TTL);
        let alice = UserId(1);
        assert_eq!(
            board.connect(alice),
            (true, Some(Transition::Online(alice)))
        );
        assert_eq!(board.connect(alice), (false, None));
        assert_eq!(board.disconnect(alice), (false, None));
        assert_eq!(
            board.disconnect(alice),
            (true, Some(Transition::Offline(alice)))
        );
        assert_eq!(board.disconnect(alice), (false, None), "unknown: ignored");
    }

    #[test]
    fn a_user_online_elsewhere_stays_online_when_leaving_here() {
        let mut board = PresenceBoard::new(TTL);
        let (alice, now) = (UserId(1), Instant::now());
        assert_eq!(
            board.remote_change("b", alice, true, now),
            Some(Transition::Online(alice))
        );
        assert_eq!(board.connect(alice), (true, None));
        assert_eq!(board.disconnect(alice), (true, None), "still on node b");
        assert_eq!(
            board.remote_change("b", alice, false, now),
            Some(Transition::Offline(alice))
        );
    }

    #[test]
    fn heartbeats_repair_and_silence_expires_a_node() {
        let mut board = PresenceBoard::new(TTL);
        let (alice, bob, start) = (UserId(1), UserId(2), Instant::now());
        board.remote_change("b", alice, true, start);
        // A lost "bob came" and a lost "alice went", both repaired.
        let repaired = board.heartbeat("b", &[bob], start);
        assert!(repaired.contains(&Transition::Online(bob)));
        assert!(repaired.contains(&Transition::Offline(alice)));
        assert!(board.expire(start + TTL / 2).is_empty());
        assert_eq!(
            board.expire(start + TTL * 2),
            [Transition::Offline(bob)],
            "node b went silent"
        );
        assert!(!board.is_online(bob));
    }
}
