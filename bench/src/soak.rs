//! The soak: many connections for a long time, steady sends, and every
//! minute a tenth of the clients dropping their connection and resuming from
//! the last seq they saw. Reports, per minute, the server's resident memory,
//! open file descriptors and delivery latency; and, per client, every gap
//! and duplicate it saw (both must be 0). Runs on one thread, as `traffic`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::members::Member;
use crate::server::ServerProcess;

#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub minutes: u64,
    /// Messages per second over all rooms (one sender per room).
    pub rate: f64,
    /// Share of the clients that drop and resume each minute.
    pub churn: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    pub minute: u64,
    pub rss_mib: f64,
    pub open_fds: usize,
    pub deliveries: u64,
    pub p99_ms: f64,
    pub resumed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub connections: usize,
    pub minutes: Vec<Minute>,
    /// Seqs a client never received, summed over clients.
    pub gaps: u64,
    /// Seqs a client received twice, summed over clients.
    pub duplicates: u64,
    /// Clients whose last seq, after the drain, is behind their room's.
    pub behind: u64,
    pub acked: u64,
}

struct Shared {
    epoch: Instant,
    run_id: u64,
    stopping: Cell<bool>,
    deliveries: Cell<u64>,
    acked: Cell<u64>,
    in_flight: Cell<u64>,
    resumed: Cell<u64>,
    gaps: Cell<u64>,
    duplicates: Cell<u64>,
    /// Each room's newest acked seq.
    newest: RefCell<HashMap<i64, u64>>,
    /// Each client's newest seen seq, by client index.
    seen: RefCell<Vec<u64>>,
    latency_us: RefCell<Histogram<u64>>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming<'a> {
    Message {
        seq: u64,
        #[serde(borrow)]
        body: &'a str,
    },
    Ack {
        seq: u64,
    },
    #[serde(other)]
    Other,
}

pub async fn run(
    server: &ServerProcess,
    members: &[Member],
    config: &SoakConfig,
) -> anyhow::Result<SoakReport> {
    let shared = Rc::new(Shared {
        epoch: Instant::now(),
        run_id: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        stopping: Cell::new(false),
        deliveries: Cell::new(0),
        acked: Cell::new(0),
        in_flight: Cell::new(0),
        resumed: Cell::new(0),
        gaps: Cell::new(0),
        duplicates: Cell::new(0),
        newest: RefCell::new(HashMap::new()),
        seen: RefCell::new(vec![0; members.len()]),
        latency_us: RefCell::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let rooms: std::collections::BTreeSet<i64> = members.iter().map(|m| m.room).collect();
    let interval = Duration::from_secs_f64(rooms.len() as f64 / config.rate);
    let (minute_tx, minute_rx) = watch::channel(0u64);
    let (exit_tx, exit_rx) = watch::channel(false);
    let mut senders_seen = std::collections::HashSet::new();
    let drop_every = (1.0 / config.churn).round().max(1.0) as u64;
    let mut tasks = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let sender = senders_seen.insert(member.room);
        let offset = interval.mul_f64(senders_seen.len() as f64 / rooms.len() as f64);
        tasks.push(tokio::task::spawn_local(client(
            Client {
                index,
                member: member.clone(),
                pacing: sender.then_some((offset, interval)),
                drop_on: index as u64 % drop_every,
                drop_every,
            },
            shared.clone(),
            minute_rx.clone(),
            exit_rx.clone(),
        )));
        // Connect gently: a soak is about the long run, not the stampede.
        if index % 64 == 63 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let mut minutes = Vec::new();
    let mut delivered_before = shared.deliveries.get();
    let mut resumed_before = shared.resumed.get();
    for minute in 1..=config.minutes {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let p99_us = {
            let mut histogram = shared.latency_us.borrow_mut();
            let p99 = histogram.value_at_quantile(0.99);
            histogram.reset();
            p99
        };
        let row = Minute {
            minute,
            rss_mib: server.rss_bytes() as f64 / (1024.0 * 1024.0),
            open_fds: open_fds(server.pid),
            deliveries: shared.deliveries.get() - delivered_before,
            p99_ms: p99_us as f64 / 1000.0,
            resumed: shared.resumed.get() - resumed_before,
        };
        eprintln!("{}", serde_json::to_string(&row)?);
        delivered_before = shared.deliveries.get();
        resumed_before = shared.resumed.get();
        minutes.push(row);
        let _ = minute_tx.send(minute);
    }

    // Drain: no new sends, every in-flight send acked, then every client
    // must reach its room's newest acked seq.
    shared.stopping.set(true);
    wait_until(Duration::from_secs(30), || shared.in_flight.get() == 0).await;
    let caught_up = || {
        let newest = shared.newest.borrow();
        let seen = shared.seen.borrow();
        members
            .iter()
            .enumerate()
            .filter(|(n, m)| seen[*n] < newest.get(&m.room).copied().unwrap_or(0))
            .count() as u64
    };
    wait_until(Duration::from_secs(30), || caught_up() == 0).await;
    let behind = caught_up();
    let _ = exit_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok(SoakReport {
        connections: members.len(),
        minutes,
        gaps: shared.gaps.get(),
        duplicates: shared.duplicates.get(),
        behind,
        acked: shared.acked.get(),
    })
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

async fn wait_until(limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Client {
    index: usize,
    member: Member,
    /// A room's sender: its offset in the interval, and the interval.
    pacing: Option<(Duration, Duration)>,
    /// The minute (mod `drop_every`) in which this client drops and resumes.
    drop_on: u64,
    drop_every: u64,
}

/// One client for the whole soak: connected, dropping and resuming when its
/// minute comes, checking every seq it receives against the last it saw.
async fn client(
    me: Client,
    shared: Rc<Shared>,
    mut minutes: watch::Receiver<u64>,
    mut exit: watch::Receiver<bool>,
) {
    let mut sent = 0u64;
    let mut ticker = me.pacing.map(|(offset, interval)| {
        tokio::time::interval_at(tokio::time::Instant::now() + offset, interval)
    });
    let mut first = true;
    'connection: loop {
        let last = shared.seen.borrow()[me.index];
        // The first connection starts at the room's present; later ones
        // resume from the last seq seen.
        let resume = (!first).then_some(last);
        let Ok(mut socket) = connect(&me.member, resume).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if first {
            first = false;
        } else {
            shared.resumed.set(shared.resumed.get() + 1);
        }
        let mut in_flight = 0u64;
        loop {
            tokio::select! {
                frame = socket.next() => {
                    let Some(Ok(Message::Text(text))) = frame else {
                        // Lost without asking: what was in flight will never be acked here.
                        shared.in_flight.set(shared.in_flight.get() - in_flight);
                        continue 'connection;
                    };
                    match serde_json::from_str::<Incoming>(text.as_str()) {
                        Ok(Incoming::Message { seq, body }) => on_message(&me, &shared, seq, body),
                        Ok(Incoming::Ack { seq }) => {
                            in_flight -= 1;
                            shared.in_flight.set(shared.in_flight.get() - 1);
                            shared.acked.set(shared.acked.get() + 1);
                            let mut newest = shared.newest.borrow_mut();
                            let room = newest.entry(me.member.room).or_default();
                            *room = (*room).max(seq);
                        }
                        _ => {}
                    }
                }
                _ = async { ticker.as_mut().unwrap().tick().await }, if ticker.is_some() && !shared.stopping.get() => {
                    sent += 1;
                    let micros = shared.epoch.elapsed().as_micros();
                    let frame = format!(
                        r#"{{"type":"send","room":{},"body":"t{micros:016}","client_id":"{}-{}-{sent}"}}"#,
                        me.member.room, shared.run_id, me.index
                    );
                    in_flight += 1;
                    shared.in_flight.set(shared.in_flight.get() + 1);
                    if socket.send(Message::text(frame)).await.is_err() {
                        shared.in_flight.set(shared.in_flight.get() - in_flight);
                        continue 'connection;
                    }
                }
                changed = minutes.changed() => {
                    let minute = *minutes.borrow_and_update();
                    // Senders stay: the drop is about receivers resuming.
                    if changed.is_ok() && me.pacing.is_none() && minute % me.drop_every == me.drop_on {
                        let _ = socket.close(None).await;
                        continue 'connection;
                    }
                }
                _ = exit.changed() => return,
            }
        }
    }
}

fn on_message(me: &Client, shared: &Shared, seq: u64, body: &str) {
    let mut seen = shared.seen.borrow_mut();
    let last = &mut seen[me.index];
    if *last != 0 && seq <= *last {
        shared.duplicates.set(shared.duplicates.get() + 1);
        return;
    }
    if *last != 0 && seq > *last + 1 {
        shared.gaps.set(shared.gaps.get() + (seq - *last - 1));
    }
    *last = seq;
    shared.deliveries.set(shared.deliveries.get() + 1);
    if let Some(sent_at) = body.get(1..17).and_then(|d| d.parse::<u64>().ok()) {
        let now = shared.epoch.elapsed().as_micros() as u64;
        let _ = shared
            .latency_us
            .borrow_mut()
            .record(now.saturating_sub(sent_at).max(1));
    }
}

/// Connects, authenticating with an `auth` frame that resumes the room from
/// `resume` (so the replay comes before any live message), and waits for `ready`.
async fn connect(member: &Member, resume: Option<u64>) -> anyhow::Result<crate::members::Socket> {
    let mut socket = crate::members::open(member, None, false).await?;
    let token = member.token.clone().unwrap_or_default();
    let auth = match resume {
        Some(seen) => format!(
            r#"{{"type":"auth","token":"{token}","resume":{{"{}":{seen}}}}}"#,
            member.room
        ),
        None => format!(r#"{{"type":"auth","token":"{token}"}}"#),
    };
    socket.send(Message::text(auth)).await?;
    crate::members::ready(socket).await
}
