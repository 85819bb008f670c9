//! Requests awaiting their answer, by the reference the answer will carry:
//! what a transport whose clients await an answer to each request (a
//! Socket.IO acknowledgement, a SignalR completion, a STOMP receipt) keeps
//! until the session gives it.
//!
//! Several requests may share a reference (a resent `send` carries the same
//! `client_id`): each gets its answer, first come first answered.

use std::collections::{HashMap, VecDeque};

/// What waits for each reference (an acknowledgement callback, an
/// invocation id…), at most `limit` in all.
#[derive(Debug)]
pub struct PendingAnswers<T> {
    /// Makes this connection's fresh references its own: a fresh reference
    /// becomes the `client_id` of a `send` that has none, and one that
    /// another connection of the same user could also choose would make its
    /// `send` a resend of theirs, silently not stored.
    prefix: String,
    next_ref: u64,
    limit: usize,
    count: usize,
    by_reference: HashMap<String, VecDeque<T>>,
}

impl<T> PendingAnswers<T> {
    /// `tag` names the transport in the references it makes up.
    pub fn new(tag: &str, limit: usize) -> Self {
        Self {
            prefix: format!("{tag}-{:016x}", rand::random::<u64>()),
            next_ref: 0,
            limit,
            count: 0,
            by_reference: HashMap::new(),
        }
    }

    /// A reference no other request of any connection carries.
    pub fn fresh_reference(&mut self) -> String {
        self.next_ref += 1;
        format!("{}-{}", self.prefix, self.next_ref)
    }

    /// Whether another request would be refused.
    pub fn is_full(&self) -> bool {
        self.count >= self.limit
    }

    /// Keeps `waiting` for `reference`'s answer; gives it back when `limit`
    /// requests wait already.
    pub fn insert(&mut self, reference: String, waiting: T) -> Result<(), T> {
        if self.is_full() {
            return Err(waiting);
        }
        self.count += 1;
        self.by_reference
            .entry(reference)
            .or_default()
            .push_back(waiting);
        Ok(())
    }

    /// What waits longest for `reference`'s answer, if anything does.
    pub fn take(&mut self, reference: &str) -> Option<T> {
        let waiting = self.by_reference.get_mut(reference)?;
        let first = waiting.pop_front();
        if waiting.is_empty() {
            self.by_reference.remove(reference);
        }
        self.count -= usize::from(first.is_some());
        first
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_reference_is_answered_once_each_in_order() {
        let mut pending = PendingAnswers::new("t", 8);
        pending.insert("c1".into(), 1).unwrap();
        pending.insert("c2".into(), 2).unwrap();
        pending.insert("c1".into(), 3).unwrap();
        assert_eq!(pending.len(), 3);
        assert_eq!(pending.take("c1"), Some(1));
        assert_eq!(pending.take("c1"), Some(3));
        assert_eq!(pending.take("c1"), None);
        assert_eq!(pending.take("unknown"), None);
        assert_eq!(pending.take("c2"), Some(2));
        assert!(pending.is_empty());
    }

    #[test]
    fn past_the_limit_what_would_wait_is_given_back() {
        let mut pending = PendingAnswers::new("t", 2);
        pending.insert("a".into(), 'a').unwrap();
        assert!(!pending.is_full());
        pending.insert("a".into(), 'b').unwrap();
        assert!(pending.is_full());
        assert_eq!(pending.insert("c".into(), 'c'), Err('c'));
        assert_eq!(pending.len(), 2);
        pending.take("a");
        assert_eq!(pending.insert("c".into(), 'c'), Ok(()));
    }

    #[test]
    fn fresh_references_differ_within_and_across_connections() {
        let mut one = PendingAnswers::<()>::new("t", 8);
        let mut other = PendingAnswers::<()>::new("t", 8);
        let first = one.fresh_reference();
        assert!(first.starts_with("t-"), "{first}");
        assert_ne!(first, one.fresh_reference());
        // Both connections' first reference: the same counter, not the same
        // reference.
        assert_ne!(first, other.fresh_reference());
    }
}
