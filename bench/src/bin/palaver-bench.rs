//! Runs the benchmark suite against the baseline and Palaver, prints one JSON
//! line per measurement, and writes the report (docs/benchmarks.md and its chart).
//!
//! ```text
//! bench/run            # builds release binaries, pins cores, runs everything
//! palaver-bench suite --palaver-bin target/release/palaver --baseline-bin target/release/baseline --out-dir docs
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use palaver_bench::members::{setup, Member};
use palaver_bench::server::{raise_fd_limit, Kind, ServerProcess};
use palaver_bench::traffic::{self, TrafficConfig};
use palaver_bench::{connections, report, store};
use serde_json::{json, Value};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario against both servers.
    Suite(SuiteArgs),
}

#[derive(clap::Args)]
struct SuiteArgs {
    #[arg(long)]
    palaver_bin: PathBuf,
    #[arg(long)]
    baseline_bin: PathBuf,
    /// Core the servers are pinned to (the load generator should run on another).
    #[arg(long)]
    server_core: Option<usize>,
    /// Where to write benchmarks.md and the chart; nothing is written without it.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// A tiny configuration that runs each scenario for about a second (tests).
    #[arg(long)]
    quick: bool,
    /// Run only these scenarios: fanout (with latency), connections, store.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let Command::Suite(args) = Cli::parse().command;
    // One thread: the load generator's clients share counters without atomics,
    // and its CPU use is one core's worth, pinned by the caller.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, suite(args))
}

struct Sizes {
    shapes: Vec<(usize, usize)>,
    warmup: Duration,
    measure: Duration,
    connections: usize,
    connection_users: usize,
    store_senders: usize,
}

async fn suite(args: SuiteArgs) -> anyhow::Result<()> {
    let fd_limit = raise_fd_limit();
    let sizes = if args.quick {
        Sizes {
            shapes: vec![(1, 20), (4, 5)],
            warmup: Duration::from_millis(300),
            measure: Duration::from_secs(1),
            connections: 40,
            connection_users: 4,
            store_senders: 4,
        }
    } else {
        Sizes {
            shapes: vec![(1, 1000), (100, 10)],
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
            connections: 10_000,
            connection_users: 100,
            store_senders: 100,
        }
    };
    anyhow::ensure!(
        // Each process holds its own end of every connection.
        fd_limit as usize > sizes.connections + 200,
        "open-file limit {fd_limit} is too low for {} connections",
        sizes.connections
    );
    let servers = [
        ServerProcess::start(Kind::Baseline, &args.baseline_bin, args.server_core).await?,
        ServerProcess::start(Kind::Palaver, &args.palaver_bin, args.server_core).await?,
    ];
    let mut records: Vec<Value> = Vec::new();
    let mut emit = |record: Value| {
        println!("{record}");
        records.push(record);
    };

    let wants = |scenario: &str| args.only.is_empty() || args.only.iter().any(|s| s == scenario);
    let traffic_shapes = if wants("fanout") {
        sizes.shapes.clone()
    } else {
        Vec::new()
    };
    for &(rooms, members) in &traffic_shapes {
        let shape = format!("{rooms}x{members}");
        let mut max_deliveries = HashMap::new();
        let mut populated: Vec<(Kind, Vec<Member>)> = Vec::new();
        for server in &servers {
            let people = setup(server, &format!("f{shape}"), rooms, members).await?;
            let sockets = traffic::connect_all(&people).await?;
            let config = TrafficConfig {
                warmup: sizes.warmup,
                measure: sizes.measure,
                rate: None,
                window: 16,
                padding: 32,
            };
            let report = traffic::run(server, &people, sockets, &config).await?;
            max_deliveries.insert(server.kind.name(), report.deliveries_per_sec);
            emit(
                json!({"scenario": "fanout", "target": server.kind.name(), "shape": shape,
                        "rooms": rooms, "members": members, "report": report}),
            );
            populated.push((server.kind, people));
        }
        // Fixed rates: fractions of Palaver's maximum, and the 20,000 deliveries/s target.
        let palaver_max = max_deliveries["palaver"];
        let mut levels: Vec<f64> = [0.25, 0.5, 0.75].iter().map(|f| f * palaver_max).collect();
        if !args.quick {
            levels.push(20_000.0);
        }
        levels.sort_by(f64::total_cmp);
        for (server, (_, people)) in servers.iter().zip(&populated) {
            for deliveries in &levels {
                let rate = deliveries / members as f64;
                let sockets = traffic::connect_all(people).await?;
                let config = TrafficConfig {
                    warmup: sizes.warmup,
                    measure: sizes.measure,
                    rate: Some(rate),
                    window: 10_000,
                    padding: 32,
                };
                let report = traffic::run(server, people, sockets, &config).await?;
                emit(
                    json!({"scenario": "latency", "target": server.kind.name(), "shape": shape,
                            "rooms": rooms, "members": members, "target_deliveries_per_sec": deliveries.round(),
                            "report": report}),
                );
            }
        }
    }

    for server in servers.iter().filter(|_| wants("connections")) {
        let users = setup(server, "conn", 1, sizes.connection_users).await?;
        let people: Vec<Member> = (0..sizes.connections)
            .map(|n| users[n % users.len()].clone())
            .collect();
        let report = connections::run(server, &people, 256).await?;
        emit(json!({"scenario": "connections", "target": server.kind.name(), "report": report}));
    }

    if wants("store") {
        let dir = tempfile::tempdir()?;
        let sqlite =
            palaver_store::SqliteStore::open(&dir.path().join("bench.db"), &Default::default())
                .await?;
        let scenario = store::StoreScenario {
            senders: sizes.store_senders,
            rooms: 10.min(sizes.store_senders),
            warmup: sizes.warmup,
            measure: sizes.measure,
            body_bytes: 100,
            max_batch: 512,
        };
        let report = store::run(Arc::new(sqlite), "sqlite", &scenario).await?;
        emit(json!({"scenario": "store", "target": "palaver", "report": report}));
    }

    if let Some(out_dir) = &args.out_dir {
        report::write(out_dir, &records)?;
    }
    Ok(())
}
