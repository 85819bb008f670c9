//! The message writer: one task that turns concurrent sends into batched
//! transactions, then publishes the committed messages in seq order.
//!
//! Why one task: SQLite has one writer anyway, and a single committer makes
//! "publish in commit order" trivially true. Many senders share one transaction
//! (and one fsync), so throughput grows with concurrency instead of collapsing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::events::DomainEvent;
use crate::outbox::Publisher;
use crate::store::{AppendOutcome, NewMessage, Store, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most messages committed in one transaction. Large on purpose: a commit
    /// costs per page it dirties, and a room's new index entries share pages
    /// only within one commit, so under load bigger batches cost less per
    /// message. Light load never fills a batch (docs/benchmarks.md measures
    /// 2,048 against 512: +20–40% saturated throughput at 100 × 10).
    pub max_batch: usize,
    /// Sends waiting for the writer; when full, senders wait (backpressure).
    pub queue: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 2048,
            queue: 8192,
        }
    }
}

/// Messages committed by this node.
const STORED: &str = "palaver_messages_stored_total";

struct PendingAppend {
    message: NewMessage,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

/// Cheap to clone; every clone feeds the same writer task.
#[derive(Clone)]
pub struct MessageWriter {
    queue: mpsc::Sender<PendingAppend>,
    committing: CommitFlag,
}

impl MessageWriter {
    /// Starts the writer task. It runs until every `MessageWriter` clone is
    /// dropped, then commits what is still queued and ends: that is the flush
    /// on shutdown.
    pub fn spawn(
        store: Arc<dyn Store>,
        publisher: Publisher,
        config: WriterConfig,
    ) -> (Self, JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(config.queue);
        let committing = CommitFlag::default();
        let task = tokio::spawn(run(
            rx,
            store,
            publisher,
            config.max_batch,
            committing.clone(),
        ));
        (Self { queue, committing }, task)
    }

    /// Whether a batch is being committed now, so that its messages will be
    /// published shortly: a connection about to write may wait a turn and
    /// carry them in the same write.
    pub fn committing(&self) -> bool {
        self.committing.is_raised()
    }

    pub async fn append(&self, message: NewMessage) -> Result<AppendOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(PendingAppend { message, reply })
            .await
            .map_err(|_| Error::Unavailable)?;
        // A dropped reply means the writer ended before committing: not stored.
        outcome.await.map_err(|_| Error::Unavailable)?
    }
}

async fn run(
    mut rx: mpsc::Receiver<PendingAppend>,
    store: Arc<dyn Store>,
    publisher: Publisher,
    max_batch: usize,
    committing: CommitFlag,
) {
    // Exported from the start: a node that has stored nothing shows 0, so a
    // cluster's total can be split into each node's and its peers' share.
    metrics::counter!(STORED).increment(0);
    let mut messages = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        // More sends already waiting means the node is busy: one turn of the
        // scheduler lets the sends its sessions are reading join this batch.
        // An idle writer has nothing waiting and commits at once.
        if !rx.is_empty() {
            tokio::task::yield_now().await;
        }
        messages.push(first.message);
        replies.push(first.reply);
        while messages.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => {
                    messages.push(next.message);
                    replies.push(next.reply);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let appended = {
            let _raised = committing.raise();
            store.append_messages(&messages).await
        };
        metrics::histogram!("palaver_store_append_seconds").record(started.elapsed());
        // How well sends share commits: 1 at light load, hundreds when busy.
        metrics::histogram!("palaver_store_append_batch_messages").record(messages.len() as f64);
        match appended {
            Ok(mut committed) => {
                let stored = (committed.events.iter())
                    .filter(|event| matches!(event, DomainEvent::MessagePosted(_)))
                    .count();
                metrics::counter!(STORED).increment(stored as u64);
                // Acks first: the sender is waiting on durability, which the
                // commit already gave; fan-out follows in the same order.
                let outcomes = std::mem::take(&mut committed.value);
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    // The sender may have gone away; its message is stored anyway.
                    let _ = reply.send(Ok(outcome));
                }
                publisher.publish_committed(committed);
            }
            Err(err) => {
                let unavailable = matches!(err, StoreError::Unavailable(_));
                tracing::error!(%err, batch = messages.len(), "message batch not stored");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(if unavailable {
                        Error::Unavailable
                    } else {
                        Error::Internal
                    }));
                }
            }
        }
        messages.clear();
        replies.clear();
    }
}

/// Raised while the writer waits for a commit; shared with every
/// `MessageWriter` clone. Relaxed: it is a hint for write coalescing, and a
/// stale read only costs one scheduler turn or one extra write.
#[derive(Clone, Default)]
struct CommitFlag(Arc<AtomicBool>);

impl CommitFlag {
    /// Raises the flag until the returned guard is dropped.
    fn raise(&self) -> Raised<'_> {
        self.0.store(true, Ordering::Relaxed);
        Raised(&self.0)
    }

    fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Raised<'a>(&'a AtomicBool);

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_flag_is_raised_exactly_while_its_guard_lives_and_shared_by_clones() {
        let flag = CommitFlag::default();
        let seen_by_a_clone = flag.clone();
        assert!(!seen_by_a_clone.is_raised());
        let raised = flag.raise();
        assert!(seen_by_a_clone.is_raised());
        drop(raised);
        assert!(!seen_by_a_clone.is_raised());
    }
}
