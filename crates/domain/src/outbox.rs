//! Getting committed events onto the bus at least once.
//!
//! The store writes each event into an outbox table in the same transaction as
//! the change (when the bus is shared by several nodes). [`Publisher`] sends it
//! straight after the commit and, once the bus holds it, hands the row to a
//! cleaner task that deletes delivered rows in batches; the
//! [`spawn_relay`] task on every node re-sends rows that stayed behind longer
//! than `relay_after`: their node died between commit and publish, or the bus
//! was down. Re-sending can duplicate an event; receivers deduplicate.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bus::{Bus, Delivery, Publication};
use crate::events::DomainEvent;
use crate::store::{Committed, Store, StoreResult};
use crate::time::Timestamp;

/// Delivered batches of outbox ids waiting to be cleared; past this,
/// publishing tasks wait for the cleaner.
const CLEAR_QUEUE: usize = 1024;

/// Publishes committed events and then clears their outbox rows.
#[derive(Clone)]
pub struct Publisher {
    bus: Arc<dyn Bus>,
    /// To the task that deletes delivered rows.
    delivered: mpsc::Sender<Vec<i64>>,
}

impl Publisher {
    /// Starts the outbox cleaner too; it ends when the last clone is dropped.
    pub fn new(bus: Arc<dyn Bus>, store: Arc<dyn Store>) -> Self {
        let (delivered, queue) = mpsc::channel(CLEAR_QUEUE);
        tokio::spawn(clear_delivered(queue, store));
        Self { bus, delivered }
    }

    /// Publishes what a store change committed (each event with its outbox
    /// row's payload, when there is one) and hands back the change's value.
    pub fn publish_committed<T>(&self, committed: Committed<T>) -> T {
        let Committed {
            value,
            events,
            outbox,
        } = committed;
        if events.is_empty() {
            return value;
        }
        debug_assert!(outbox.is_empty() || outbox.len() == events.len());
        let ids: Vec<i64> = outbox.iter().map(|row| row.id).collect();
        let mut payloads = outbox.into_iter().map(|row| Some(row.payload));
        let publications = events
            .into_iter()
            .map(|event| Publication {
                event,
                payload: payloads.next().flatten(),
            })
            .collect();
        self.publish(publications, ids);
        value
    }

    /// Publishes an event that is not stored (typing, presence): at most once.
    pub fn publish_passing(&self, event: DomainEvent) {
        self.publish(vec![Publication::unencoded(event)], Vec::new());
    }

    /// Delivers to this node's connections before returning; the hand-over to
    /// other nodes completes in the background, so the caller never waits on it.
    fn publish(&self, events: Vec<Publication>, outbox: Vec<i64>) {
        let mut delivery = self.bus.publish(events);
        if outbox.is_empty() {
            // The local bus has already delivered: skip the task.
            if let Poll::Ready(result) = delivery
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                log_failure(result);
                return;
            }
        }
        let cleaner = self.delivered.clone();
        tokio::spawn(async move {
            let delivered = delivery.await;
            let ok = delivered.is_ok();
            log_failure(delivered);
            if ok && !outbox.is_empty() {
                // A gone cleaner (shutdown) leaves the rows: the relay sends them again.
                let _ = cleaner.send(outbox).await;
            }
        });
    }
}

/// Deletes delivered rows, as many at once as have been delivered while the
/// previous delete ran: under load one statement clears many commits' rows
/// instead of one transaction per commit.
async fn clear_delivered(mut queue: mpsc::Receiver<Vec<i64>>, store: Arc<dyn Store>) {
    const MOST_AT_ONCE: usize = 4096;
    while let Some(mut ids) = queue.recv().await {
        while ids.len() < MOST_AT_ONCE {
            match queue.try_recv() {
                Ok(more) => ids.extend(more),
                Err(_) => break,
            }
        }
        metrics::histogram!("palaver_outbox_cleared_rows").record(ids.len() as f64);
        if let Err(err) = store.delete_outbox(&ids).await {
            tracing::warn!(%err, "outbox rows not cleared; the relay will send their events again");
        }
    }
}

fn log_failure(result: Result<(), crate::bus::BusError>) {
    if let Err(err) = result {
        tracing::warn!(%err, "committed events not handed to the bus; the outbox relay re-sends them");
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Rows younger than this belong to the publisher that wrote them.
    pub relay_after: Duration,
    /// How long a claimed row is reserved for the claiming relay.
    pub lease: Duration,
    /// Pause between sweeps that found nothing to do.
    pub interval: Duration,
    /// Rows per sweep.
    pub batch: u32,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            relay_after: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            interval: Duration::from_secs(1),
            batch: 500,
        }
    }
}

/// Events re-sent from the outbox.
const RELAYED: &str = "palaver_outbox_relayed_total";
/// Rows in the outbox, read at every sweep.
const BACKLOG: &str = "palaver_outbox_backlog";

/// Starts the relay; it runs until aborted.
pub fn spawn_relay(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    config: RelayConfig,
) -> JoinHandle<()> {
    // Exported from the start: a rate over a counter that appears at its
    // first event misses that event.
    metrics::counter!(RELAYED).increment(0);
    tokio::spawn(async move {
        loop {
            // Read whether or not the bus is up: a backlog grows while it is down.
            match store.outbox_backlog().await {
                Ok(rows) => metrics::gauge!(BACKLOG).set(rows as f64),
                Err(err) => tracing::debug!(%err, "outbox backlog not read"),
            }
            // A full batch suggests more are waiting: sweep again at once.
            let pause = match relay_once(store.as_ref(), bus.as_ref(), config).await {
                Ok(n) if n as u32 == config.batch => Duration::ZERO,
                Ok(_) => config.interval,
                Err(err) => {
                    tracing::warn!(%err, "outbox relay could not read the outbox");
                    config.interval
                }
            };
            tokio::time::sleep(pause).await;
        }
    })
}

/// One sweep; returns how many rows it re-sent.
pub async fn relay_once(
    store: &dyn Store,
    bus: &dyn Bus,
    config: RelayConfig,
) -> StoreResult<usize> {
    // Claiming rows it cannot send would only hide them from healthy relays.
    if !bus.is_healthy() {
        return Ok(0);
    }
    let now = Timestamp::now();
    let entries = store
        .claim_outbox(
            now.minus(config.relay_after),
            now,
            now.plus(config.lease),
            config.batch,
        )
        .await?;
    if entries.is_empty() {
        return Ok(0);
    }
    tracing::info!(
        events = entries.len(),
        "outbox relay re-sending events left behind"
    );
    metrics::counter!(RELAYED).increment(entries.len() as u64);
    let delivery: Delivery = bus.republish(&entries);
    match delivery.await {
        Ok(()) => {
            let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            store.delete_outbox(&ids).await?;
        }
        // The lease runs out and the next sweep (here or on another node) retries.
        Err(err) => {
            tracing::warn!(%err, "outbox relay could not re-send; retrying after the lease")
        }
    }
    Ok(entries.len())
}
