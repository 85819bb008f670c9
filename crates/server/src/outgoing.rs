//! Each connection's outgoing queue, bounded by a count instead of a semaphore.
//!
//! tokio's bounded channel gives every permit back under its semaphore's mutex
//! when the receiver takes an item: one lock per delivered frame, on the
//! hottest path there is (docs/benchmarks.md, "What was tried"). Here the bound
//! is an atomic count beside an unbounded channel: one `fetch_add` to queue an
//! item, one `fetch_sub` to take it, no lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TryRecvError, error::TrySendError};

/// A queue holding at most `capacity` items.
pub fn channel<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let (items, rx) = mpsc::unbounded_channel();
    let len = Arc::new(AtomicUsize::new(0));
    let sender = QueueSender {
        items,
        len: len.clone(),
        capacity,
    };
    (sender, QueueReceiver { items: rx, len })
}

#[derive(Debug)]
pub struct QueueSender<T> {
    items: mpsc::UnboundedSender<T>,
    /// Items sent and not yet taken.
    len: Arc<AtomicUsize>,
    capacity: usize,
}

impl<T> QueueSender<T> {
    /// Queues `item` unless the queue is full or its receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        // Relaxed: the count only bounds memory; the channel orders the items.
        if self.len.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return Err(TrySendError::Full(item));
        }
        self.items.send(item).map_err(|refused| {
            self.len.fetch_sub(1, Ordering::Relaxed);
            TrySendError::Closed(refused.0)
        })
    }
}

#[derive(Debug)]
pub struct QueueReceiver<T> {
    items: mpsc::UnboundedReceiver<T>,
    len: Arc<AtomicUsize>,
}

impl<T> QueueReceiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        let item = self.items.recv().await;
        if item.is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        item
    }

    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let item = self.items.try_recv()?;
        self.len.fetch_sub(1, Ordering::Relaxed);
        Ok(item)
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
    }
}
