//! The traffic engine behind the fanout and latency scenarios. Runs on one
//! thread (a `LocalSet`), so counters are plain `Cell`s.
//!
//! Senders put `t<microseconds since the run's epoch>` at the start of each
//! body; receivers subtract it from their own clock: one process, one clock.
//! After the measured window, senders stop, every in-flight send is acked, and
//! each member must then have received every acked message of its room:
//! anything missing is reported as lost.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;

use crate::link::{Incoming, Link, Transport};
use crate::members::Member;
use crate::server::{own_cpu_seconds, ServerProcess};

#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub warmup: Duration,
    pub measure: Duration,
    /// Messages per second across all senders; `None`: as fast as acks return.
    pub rate: Option<f64>,
    /// Sends a sender may have awaiting their ack.
    pub window: usize,
    /// Bytes of padding after the timestamp in each body.
    pub padding: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficReport {
    pub seconds: f64,
    pub deliveries_per_sec: f64,
    pub acked_per_sec: f64,
    pub lost: u64,
    pub disconnected: u64,
    pub server_cpu_seconds: f64,
    pub loadgen_cpu_seconds: f64,
    pub server_us_per_delivery: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

struct Shared {
    epoch: Instant,
    /// Makes client ids unique across runs: the same users send in several
    /// runs, and Palaver rightly treats a repeated client id as a retry.
    run_id: u64,
    measuring: Cell<bool>,
    stopping: Cell<bool>,
    deliveries: Cell<u64>,
    acked: Cell<u64>,
    in_flight: Cell<u64>,
    disconnected: Cell<u64>,
    acked_per_room: RefCell<HashMap<i64, u64>>,
    latency_us: RefCell<Histogram<u64>>,
}

/// Connects every member (senders first in each room) with bounded
/// concurrency; to a server on loopback from eight source addresses (more
/// ports to connect from), elsewhere from the route's own.
pub async fn connect_all(members: &[Member], transport: Transport) -> anyhow::Result<Vec<Link>> {
    let sources: Vec<Ipv4Addr> = (1..=8).map(|n| Ipv4Addr::new(127, 0, 0, n)).collect();
    let on_loopback = |member: &Member| {
        url::Url::parse(&member.base_url)
            .ok()
            .and_then(|url| url.host_str()?.parse::<Ipv4Addr>().ok())
            .is_some_and(|host| host.is_loopback())
    };
    futures::stream::iter(members.iter().enumerate())
        .map(|(n, member)| {
            let source = on_loopback(member).then(|| sources[n % sources.len()]);
            Link::connect(member, transport, source)
        })
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Runs traffic through `sockets` (one per member). The first member of each
/// room sends; everyone receives. Server CPU is the sum over `servers` (the
/// nodes the members are on).
pub async fn run(
    servers: &[&ServerProcess],
    members: &[Member],
    links: Vec<Link>,
    config: &TrafficConfig,
) -> anyhow::Result<TrafficReport> {
    let shared = Rc::new(Shared {
        epoch: Instant::now(),
        run_id: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        measuring: Cell::new(false),
        stopping: Cell::new(false),
        deliveries: Cell::new(0),
        acked: Cell::new(0),
        in_flight: Cell::new(0),
        disconnected: Cell::new(0),
        acked_per_room: RefCell::new(HashMap::new()),
        latency_us: RefCell::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let mut members_per_room: HashMap<i64, u64> = HashMap::new();
    for member in members {
        *members_per_room.entry(member.room).or_default() += 1;
    }
    let senders = members_per_room.len();
    let (exit_tx, exit_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut seen_rooms = std::collections::HashSet::new();
    let paced_from = tokio::time::Instant::now();
    for (member, link) in members.iter().zip(links) {
        let plan = seen_rooms.insert(member.room).then(|| {
            // Sender n starts n/senders of an interval late, so a fixed rate
            // arrives evenly spread, not as one burst of every sender per interval.
            let sender = seen_rooms.len() - 1;
            SendPlan {
                pacing: config.rate.map(|rate| {
                    let interval = Duration::from_secs_f64(senders as f64 / rate);
                    Pacing {
                        first: paced_from + interval.mul_f64(sender as f64 / senders as f64),
                        interval,
                    }
                }),
                window: config.window,
                padding: config.padding,
            }
        });
        tasks.push(tokio::task::spawn_local(client(
            link,
            member.room,
            plan,
            shared.clone(),
            exit_rx.clone(),
        )));
    }

    tokio::time::sleep(config.warmup).await;
    let servers_cpu = || servers.iter().map(|s| s.cpu_seconds()).sum::<f64>();
    let start = (
        servers_cpu(),
        own_cpu_seconds(),
        shared.deliveries.get(),
        shared.acked.get(),
        Instant::now(),
    );
    shared.measuring.set(true);
    tokio::time::sleep(config.measure).await;
    shared.measuring.set(false);
    let end = (
        servers_cpu(),
        own_cpu_seconds(),
        shared.deliveries.get(),
        shared.acked.get(),
        Instant::now(),
    );

    // Drain: no new sends, every in-flight send acked, every acked message delivered.
    shared.stopping.set(true);
    wait_until(|| shared.in_flight.get() == 0).await;
    let expected: u64 = shared
        .acked_per_room
        .borrow()
        .iter()
        .map(|(room, acked)| acked * members_per_room.get(room).copied().unwrap_or(0))
        .sum();
    wait_until(|| shared.deliveries.get() >= expected).await;
    let lost = expected.saturating_sub(shared.deliveries.get());
    let _ = exit_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }

    let seconds = (end.4 - start.4).as_secs_f64();
    let deliveries = end.2 - start.2;
    let server_cpu = end.0 - start.0;
    let histogram = shared.latency_us.borrow();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Ok(TrafficReport {
        seconds,
        deliveries_per_sec: deliveries as f64 / seconds,
        acked_per_sec: (end.3 - start.3) as f64 / seconds,
        lost,
        disconnected: shared.disconnected.get(),
        server_cpu_seconds: server_cpu,
        loadgen_cpu_seconds: end.1 - start.1,
        server_us_per_delivery: if deliveries > 0 {
            server_cpu * 1e6 / deliveries as f64
        } else {
            0.0
        },
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: histogram.max() as f64 / 1000.0,
    })
}

/// Polls `done` every 10 ms for up to 10 s.
async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct SendPlan {
    /// When to send; `None`: keep `window` sends in flight.
    pacing: Option<Pacing>,
    window: usize,
    padding: usize,
}

struct Pacing {
    first: tokio::time::Instant,
    interval: Duration,
}

async fn client(
    link: Link,
    room: i64,
    plan: Option<SendPlan>,
    shared: Rc<Shared>,
    mut exit: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = link.split();
    let mut ticker = plan
        .as_ref()
        .and_then(|p| p.pacing.as_ref())
        .map(|p| tokio::time::interval_at(p.first, p.interval));
    let mut in_flight = 0usize;
    let mut sent = 0u64;
    let padding = plan.as_ref().map_or(0, |p| p.padding);
    let pad = "x".repeat(padding);
    let body = || format!("t{:016}{pad}", shared.epoch.elapsed().as_micros());
    let client_id = |sent: u64| format!("{}-{sent}", shared.run_id);
    let disconnected = || shared.disconnected.set(shared.disconnected.get() + 1);
    loop {
        if let Some(plan) = &plan {
            if plan.pacing.is_none() && !shared.stopping.get() && in_flight < plan.window {
                while in_flight < plan.window {
                    sent += 1;
                    in_flight += 1;
                    shared.in_flight.set(shared.in_flight.get() + 1);
                    if sink.feed(room, body(), client_id(sent)).await.is_err() {
                        break;
                    }
                }
                if sink.flush().await.is_err() {
                    disconnected();
                    return;
                }
            }
        }
        tokio::select! {
            frame = stream.next(shared.measuring.get()) => match frame {
                None => {
                    disconnected();
                    return;
                }
                Some(Incoming::Message(sent_at)) => {
                    shared.deliveries.set(shared.deliveries.get() + 1);
                    if let Some(sent_at) = sent_at {
                        let now = shared.epoch.elapsed().as_micros() as u64;
                        let _ = shared.latency_us.borrow_mut().record(now.saturating_sub(sent_at).max(1));
                    }
                }
                Some(Incoming::Ack) => {
                    in_flight = in_flight.saturating_sub(1);
                    shared.in_flight.set(shared.in_flight.get().saturating_sub(1));
                    shared.acked.set(shared.acked.get() + 1);
                    *shared.acked_per_room.borrow_mut().entry(room).or_default() += 1;
                }
                Some(Incoming::Ping) => {
                    if sink.pong().await.is_err() {
                        disconnected();
                        return;
                    }
                }
                Some(Incoming::Other) => {}
            },
            _ = async { ticker.as_mut().unwrap().tick().await }, if ticker.is_some() && !shared.stopping.get() => {
                if in_flight < plan.as_ref().map_or(0, |p| p.window) {
                    sent += 1;
                    in_flight += 1;
                    shared.in_flight.set(shared.in_flight.get() + 1);
                    let sent_now = async {
                        sink.feed(room, body(), client_id(sent)).await?;
                        sink.flush().await
                    };
                    if sent_now.await.is_err() {
                        disconnected();
                        return;
                    }
                }
            }
            _ = exit.changed() => return,
        }
    }
}
