//! Each connection's outgoing queue: bounded by a count, allocated only while
//! it holds items, and small while idle.
//!
//! tokio's channels cost an idle connection about 1 KiB (their cache-padded
//! state and a first block of 32 slots, allocated with the channel), and the
//! bounded one gives every permit back under its semaphore's mutex (one lock
//! per delivered frame: docs/benchmarks.md, "What was tried"). Here the queue
//! is a `VecDeque` under a `parking_lot` mutex held for a push or a pop (never
//! across an `await`), and a waker: about 100 bytes per connection, one
//! uncontended lock per item queued or taken. A queue that empties gives its
//! storage back once it has grown past a few slots, so a burst does not stay
//! resident on an idle connection.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use futures::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};

/// Slots an empty queue may keep; a queue that grew larger frees its storage.
const KEPT_WHEN_EMPTY: usize = 8;

/// A queue holding at most `capacity` items.
pub fn channel<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        receiver: AtomicWaker::new(),
        capacity,
    });
    let sender = QueueSender {
        shared: shared.clone(),
    };
    (sender, QueueReceiver { shared })
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// The receiving task, woken by each item queued and by the sender's end.
    receiver: AtomicWaker,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    sender_gone: bool,
    receiver_gone: bool,
}

impl<T> State<T> {
    fn pop(&mut self) -> Option<T> {
        let item = self.items.pop_front();
        if self.items.is_empty() && self.items.capacity() > KEPT_WHEN_EMPTY {
            self.items = VecDeque::new();
        }
        item
    }
}

pub struct QueueSender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for QueueSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> QueueSender<T> {
    /// Queues `item` unless the queue is full or its receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        {
            let mut state = self.shared.state.lock();
            if state.receiver_gone {
                return Err(TrySendError::Closed(item));
            }
            if state.items.len() >= self.shared.capacity {
                return Err(TrySendError::Full(item));
            }
            state.items.push_back(item);
        }
        self.shared.receiver.wake();
        Ok(())
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        self.shared.state.lock().sender_gone = true;
        self.shared.receiver.wake();
    }
}

pub struct QueueReceiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for QueueReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueReceiver").finish_non_exhaustive()
    }
}

impl<T> QueueReceiver<T> {
    /// The next item; `None` once the sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            if let Some(ready) = self.ready() {
                return Poll::Ready(ready);
            }
            // Registered before looking again: an item queued in between
            // is seen now, or its wake reaches the new waker.
            self.shared.receiver.register(cx.waker());
            match self.ready() {
                Some(ready) => Poll::Ready(ready),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// `Some(Some(item))`, or `Some(None)` when the queue has ended; `None`
    /// when it is empty and may get more.
    fn ready(&self) -> Option<Option<T>> {
        let mut state = self.shared.state.lock();
        match state.pop() {
            Some(item) => Some(Some(item)),
            None if state.sender_gone => Some(None),
            None => None,
        }
    }

    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.state.lock();
        match state.pop() {
            Some(item) => Ok(item),
            None if state.sender_gone => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.receiver_gone = true;
        // What was queued goes now, not when the last sender does.
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_at_most_its_capacity_and_frees_a_place_per_item_taken() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(4).unwrap();
        assert!(matches!(tx.try_send(5), Err(TrySendError::Full(5))));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(4));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.try_send(6).unwrap();
        tx.try_send(7).unwrap();
        assert!(matches!(tx.try_send(8), Err(TrySendError::Full(8))));
    }

    #[tokio::test]
    async fn a_gone_receiver_refuses_items_and_a_gone_sender_ends_the_queue() {
        let (tx, rx) = channel(2);
        drop(rx);
        assert!(matches!(tx.try_send(1), Err(TrySendError::Closed(1))));

        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_item_queued_from_another_task() {
        let (tx, mut rx) = channel(4);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        assert_eq!(waiting.await.unwrap(), Some(7));
    }

    #[test]
    fn an_emptied_queue_that_grew_gives_its_storage_back() {
        let (tx, mut rx) = channel(1024);
        for n in 0..100 {
            tx.try_send(n).unwrap();
        }
        assert!(tx.shared.state.lock().items.capacity() >= 100);
        while rx.try_recv().is_ok() {}
        assert_eq!(tx.shared.state.lock().items.capacity(), 0);
        tx.try_send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(tx.shared.state.lock().items.capacity() <= KEPT_WHEN_EMPTY);
    }
}
