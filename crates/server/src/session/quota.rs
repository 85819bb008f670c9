//! How many real-time sessions one user, and one client address, may have
//! open on this node, every transport counted together: each session takes
//! its place in `session::run`, which every transport goes through.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use palaver_domain::throttle::ClientAddr;
use palaver_domain::UserId;
use parking_lot::Mutex;

/// The open sessions per user and per address (only those with some open).
pub struct SessionQuota {
    max_per_user: usize,
    max_per_address: usize,
    /// Taken once per session start and end, never per frame.
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    per_user: HashMap<UserId, usize>,
    per_address: HashMap<ClientAddr, usize>,
}

/// Which bound a session would have crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooMany {
    ForUser,
    FromAddress,
}

impl TooMany {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            TooMany::ForUser => "user",
            TooMany::FromAddress => "address",
        }
    }

    /// The close reason.
    pub fn reason(self) -> &'static str {
        match self {
            TooMany::ForUser => "too many sessions for this user",
            TooMany::FromAddress => "too many sessions from this address",
        }
    }
}

impl SessionQuota {
    pub fn new(max_per_user: usize, max_per_address: usize) -> Self {
        Self {
            max_per_user,
            max_per_address,
            open: Mutex::new(Open::default()),
        }
    }

    /// A place for one more session of `user` from `from`, held until the
    /// permit is dropped.
    pub fn admit(
        self: &Arc<Self>,
        user: UserId,
        from: ClientAddr,
    ) -> Result<SessionPermit, TooMany> {
        let mut open = self.open.lock();
        if open.per_user.get(&user).copied().unwrap_or(0) >= self.max_per_user {
            return Err(TooMany::ForUser);
        }
        if open.per_address.get(&from).copied().unwrap_or(0) >= self.max_per_address {
            return Err(TooMany::FromAddress);
        }
        *open.per_user.entry(user).or_insert(0) += 1;
        *open.per_address.entry(from).or_insert(0) += 1;
        Ok(SessionPermit {
            quota: self.clone(),
            user,
            from,
        })
    }
}

/// One admitted session's place.
pub struct SessionPermit {
    quota: Arc<SessionQuota>,
    user: UserId,
    from: ClientAddr,
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut open = self.quota.open.lock();
        release(&mut open.per_user, self.user);
        release(&mut open.per_address, self.from);
    }
}

fn release<K: Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> ClientAddr {
        ClientAddr::new(std::net::Ipv4Addr::new(192, 0, 2, last).into())
    }

    #[test]
    fn sessions_are_bounded_per_user_and_per_address_until_they_end() {
        let quota = Arc::new(SessionQuota::new(2, 3));
        let (alice, bob, carol) = (UserId(1), UserId(2), UserId(3));
        let first = quota.admit(alice, addr(1)).unwrap();
        let _second = quota.admit(alice, addr(2)).unwrap();
        assert_eq!(quota.admit(alice, addr(3)).err(), Some(TooMany::ForUser));
        let _bob = quota.admit(bob, addr(1)).unwrap();
        let _bob2 = quota.admit(bob, addr(1)).unwrap();
        assert_eq!(
            quota.admit(carol, addr(1)).err(),
            Some(TooMany::FromAddress)
        );
        drop(first);
        let _again = quota.admit(carol, addr(1)).unwrap();
        assert!(quota.admit(alice, addr(9)).is_ok());
    }

    #[test]
    fn ended_sessions_leave_nothing_behind() {
        let quota = Arc::new(SessionQuota::new(5, 5));
        let permits: Vec<_> = (0..5)
            .map(|n| quota.admit(UserId(n), addr(n as u8)).unwrap())
            .collect();
        drop(permits);
        let open = quota.open.lock();
        assert!(open.per_user.is_empty() && open.per_address.is_empty());
    }
}
