//! Store throughput: durable messages per second through the domain's real send
//! path (validation → batching writer → store transaction → bus), with many
//! concurrent senders into a few rooms.
//!
//! The baseline, measured in the same run, is the same path with batching
//! turned off (`max_batch = 1`: one transaction, one fsync per message).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palaver_bus::LocalBus;
use palaver_domain::bus::EventSink;
use palaver_domain::events::DomainEvent;
use palaver_domain::messages::WriterConfig;
use palaver_domain::model::Role;
use palaver_domain::passwords::HashCost;
use palaver_domain::store::{NewRoom, NewUser, Store};
use palaver_domain::throttle::RateLimits;
use palaver_domain::time::Timestamp;
use palaver_domain::{Limits, RoomId, Services, UserId};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct StoreScenario {
    /// Concurrent senders, each waiting for its ack before sending again.
    pub senders: usize,
    /// Rooms the senders are spread over.
    pub rooms: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub body_bytes: usize,
    /// Most messages per transaction (1 = no batching).
    pub max_batch: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreReport {
    pub scenario: &'static str,
    pub store: String,
    pub senders: usize,
    pub rooms: usize,
    pub max_batch: usize,
    pub seconds: f64,
    pub acked: u64,
    pub messages_per_sec: f64,
    /// Acked messages missing from the store afterwards (must be 0).
    pub lost: u64,
}

/// Counts deliveries instead of writing to sockets.
#[derive(Default)]
struct CountingSink(AtomicU64);

impl EventSink for CountingSink {
    fn deliver(&self, _event: &DomainEvent) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn run(
    store: Arc<dyn Store>,
    store_name: &str,
    scenario: &StoreScenario,
) -> anyhow::Result<StoreReport> {
    let (users, rooms) = populate(store.as_ref(), scenario.senders, scenario.rooms).await?;
    let bus = Arc::new(LocalBus::new(Arc::new(CountingSink::default())));
    let (services, writer) = Services::start(
        store.clone(),
        bus,
        // The bench signs no token.
        palaver_domain::tokens::AccessTokens::shared_secret(
            &[7u8; 32],
            palaver_domain::tokens::TokenSettings {
                issuer: "bench".into(),
                audience: "bench".into(),
                ttl_secs: 900,
            },
        ),
        Arc::new(palaver_domain::mail::NoMailer),
        HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        // Senders post as fast as commits allow: no rate limit.
        Limits {
            rates: RateLimits::off(),
            ..Limits::default()
        },
        WriterConfig {
            max_batch: scenario.max_batch,
            ..WriterConfig::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let services = Arc::new(services);

    // `measured`: acks inside the measuring window; `acked_all`: every ack,
    // warm-up included, to compare with what the store holds afterwards.
    let measured = Arc::new(AtomicU64::new(0));
    let acked_all = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + scenario.warmup;
    let stop_at = measure_from + scenario.measure;
    let mut tasks = Vec::new();
    for (n, user) in users.iter().enumerate() {
        let (services, measured, acked_all, user) =
            (services.clone(), measured.clone(), acked_all.clone(), *user);
        let room = rooms[n % rooms.len()];
        let body = "x".repeat(scenario.body_bytes);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let now = Instant::now();
                if now >= stop_at {
                    return Ok::<_, palaver_domain::Error>(());
                }
                sent += 1;
                services
                    .messages
                    .post(
                        user,
                        room,
                        body.clone(),
                        Some(format!("b{sent}")),
                        None,
                        Vec::new(),
                    )
                    .await?;
                acked_all.fetch_add(1, Ordering::Relaxed);
                if now >= measure_from {
                    measured.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = scenario.measure.as_secs_f64();
    drop(services);
    writer.await?;

    // Every acknowledged message must be in the store: only this run writes
    // to these rooms, so a room's newest seq is its message count.
    let mut stored = 0u64;
    for room in &rooms {
        stored += store
            .messages_before(*room, None, 1)
            .await?
            .first()
            .map_or(0, |m| m.seq);
    }
    let lost = acked_all.load(Ordering::Relaxed).saturating_sub(stored);
    let acked_total = measured.load(Ordering::Relaxed);
    Ok(StoreReport {
        scenario: "store",
        store: store_name.to_owned(),
        senders: scenario.senders,
        rooms: scenario.rooms,
        max_batch: scenario.max_batch,
        seconds,
        acked: acked_total,
        messages_per_sec: acked_total as f64 / seconds,
        lost,
    })
}

/// Creates `senders` users and `rooms` rooms that every user belongs to.
async fn populate(
    store: &dyn Store,
    senders: usize,
    rooms: usize,
) -> anyhow::Result<(Vec<UserId>, Vec<RoomId>)> {
    let mut users = Vec::with_capacity(senders);
    for n in 0..senders {
        let user = store
            .insert_user(NewUser {
                username: format!("bench{n}"),
                email: None,
                display_name: format!("bench {n}"),
                password_hash: "unused".into(),
                created_at: Timestamp::now(),
            })
            .await?;
        users.push(user.id);
    }
    let mut room_ids = Vec::with_capacity(rooms);
    for n in 0..rooms {
        let room = store
            .insert_room(NewRoom {
                name: format!("bench room {n}"),
                code: format!("BENCH{n:03}"),
                password_hash: None,
                owner_id: users[0],
                created_at: Timestamp::now(),
            })
            .await?
            .value;
        for user in &users[1..] {
            store
                .add_member(room.id, *user, Role::Member, Timestamp::now())
                .await?;
        }
        room_ids.push(room.id);
    }
    Ok((users, room_ids))
}

#[cfg(test)]
mod tests {
    use palaver_store::{SqliteStore, StoreOptions};

    use super::*;

    #[tokio::test]
    async fn a_tiny_run_acks_messages_and_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("bench.db"), &StoreOptions::default())
            .await
            .unwrap();
        let scenario = StoreScenario {
            senders: 4,
            rooms: 2,
            warmup: Duration::from_millis(100),
            measure: Duration::from_millis(400),
            body_bytes: 16,
            max_batch: 64,
        };
        let report = run(Arc::new(store), "sqlite", &scenario).await.unwrap();
        assert!(report.acked > 0, "{report:?}");
        assert_eq!(report.lost, 0, "{report:?}");
    }
}
