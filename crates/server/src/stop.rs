//! Why a connection must stop: raised by the hub, watched by the connection's
//! own task.
//!
//! A session watches this on every wakeup (it is a branch of its `select!`).
//! A `CancellationToken` costs two mutex locks per poll (the token's state,
//! then its `Notify`'s waiter list), and for the server-wide shutdown token
//! those are the same two locks for every connection: a global lock on the
//! hot path. This is one atomic load and an `AtomicWaker` registration.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;

use futures::task::AtomicWaker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The server is shutting down: acknowledge what is in flight, close 1001.
    Shutdown,
    /// The connection's queue overflowed: close 1013.
    SlowConsumer,
    /// The login the connection authenticated with ended: close 4002.
    SessionEnded,
}

impl StopReason {
    const fn bit(self) -> u8 {
        match self {
            Self::Shutdown => 1,
            Self::SlowConsumer => 2,
            Self::SessionEnded => 4,
        }
    }
}

/// Several reasons can be raised; each is kept. Only one task may wait on a
/// signal (it holds one waker): the connection's own.
#[derive(Debug, Default)]
pub struct StopSignal {
    raised: AtomicU8,
    waker: AtomicWaker,
}

impl StopSignal {
    /// Records `reason` and wakes the waiting task. Returns false if `reason`
    /// was already raised.
    pub fn raise(&self, reason: StopReason) -> bool {
        let before = self.raised.fetch_or(reason.bit(), Ordering::AcqRel);
        if before & reason.bit() != 0 {
            return false;
        }
        self.waker.wake();
        true
    }

    pub fn is_raised(&self, reason: StopReason) -> bool {
        self.raised.load(Ordering::Acquire) & reason.bit() != 0
    }

    /// The reason to stop now, if any; shutdown first, so in-flight sends
    /// are still acknowledged when both are raised.
    fn current(&self) -> Option<StopReason> {
        [
            StopReason::Shutdown,
            StopReason::SessionEnded,
            StopReason::SlowConsumer,
        ]
        .into_iter()
        .find(|reason| self.is_raised(*reason))
    }

    /// Resolves once any reason is raised.
    pub async fn raised(&self) -> StopReason {
        self.until(Self::current).await
    }

    /// Resolves once `reason` is raised.
    pub async fn raised_for(&self, reason: StopReason) {
        self.until(|signal| signal.is_raised(reason).then_some(()))
            .await
    }

    /// Resolves with what `found` finds once it finds something.
    async fn until<T>(&self, found: impl Fn(&Self) -> Option<T>) -> T {
        poll_fn(|cx| {
            if let Some(value) = found(self) {
                return Poll::Ready(value);
            }
            self.waker.register(cx.waker());
            // Raised between the check and the registration: not missed.
            found(self).map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_waiting_task_wakes_when_a_reason_is_raised() {
        let signal = Arc::new(StopSignal::default());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.raised().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing raised yet");
        assert!(signal.raise(StopReason::SlowConsumer));
        let reason = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(reason, StopReason::SlowConsumer);
    }

    #[tokio::test]
    async fn shutdown_comes_first_and_each_reason_is_raised_once() {
        let signal = StopSignal::default();
        assert!(signal.raise(StopReason::SlowConsumer));
        assert!(signal.raise(StopReason::Shutdown));
        assert!(!signal.raise(StopReason::Shutdown), "already raised");
        assert_eq!(signal.raised().await, StopReason::Shutdown);
        assert!(signal.is_raised(StopReason::SlowConsumer));
    }

    #[tokio::test]
    async fn waiting_for_one_reason_ignores_the_other() {
        let signal = Arc::new(StopSignal::default());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.raised_for(StopReason::SlowConsumer).await }
        });
        signal.raise(StopReason::Shutdown);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "shutdown is not a slow consumer");
        signal.raise(StopReason::SlowConsumer);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
