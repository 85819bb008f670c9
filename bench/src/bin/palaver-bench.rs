//! Runs the benchmark suite against the baseline and Palaver, prints one JSON
//! line per measurement, and writes the report (docs/benchmarks.md and its chart).
//!
//! ```text
//! bench/run            # builds release binaries, pins cores, runs everything
//! palaver-bench suite --palaver-bin target/release/palaver --baseline-bin target/release/baseline --out-dir docs
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use palaver_bench::cluster::{free_port, wait_for_bus, Broker, ScratchDatabase};
use palaver_bench::link::Transport;
use palaver_bench::members::{setup, Member};
use palaver_bench::server::{raise_fd_limit, Kind, Place, ServerProcess};
use palaver_bench::traffic::{self, TrafficConfig, TrafficReport};
use palaver_bench::{broker_floor, connections, netns, report, soak, stages, store};
use serde_json::{json, Value};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario against both servers.
    Suite(Box<SuiteArgs>),
    /// Palaver alone for a long time: many connections, steady sends, a
    /// tenth of the clients dropping and resuming each minute.
    Soak(SoakArgs),
    /// The broker's own round trip, printed as one JSON line: how the suite
    /// measures it from inside a network namespace.
    #[command(hide = true)]
    BrokerFloor(FloorArgs),
}

#[derive(clap::Args)]
struct FloorArgs {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    records_per_sec: f64,
    #[arg(long)]
    seconds: f64,
    #[arg(long)]
    payload_bytes: usize,
    #[arg(long)]
    fetch_wait_ms: u64,
    #[arg(long)]
    partitions: i32,
    #[arg(long)]
    keys: usize,
}

#[derive(clap::Args)]
struct SoakArgs {
    #[arg(long)]
    palaver_bin: PathBuf,
    /// Core the server is pinned to (the load generator should run on another).
    #[arg(long)]
    server_core: Option<usize>,
    #[arg(long, default_value_t = 20)]
    minutes: u64,
    #[arg(long, default_value_t = 200)]
    rooms: usize,
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Messages per second over all rooms.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Share of the clients that drop and resume each minute.
    #[arg(long, default_value_t = 0.1)]
    churn: f64,
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
    /// Core the cluster scenario's broker is pinned to [default: the servers' core].
    #[arg(long)]
    broker_core: Option<usize>,
    /// Partitions of the cluster scenario's topic (the nodes' `--kafka-partitions`).
    #[arg(long, default_value_t = 8)]
    cluster_partitions: i32,
    /// The nodes' `--kafka-fetch-wait-ms` in the cluster scenario.
    #[arg(long, default_value_t = 5)]
    cluster_fetch_wait_ms: u64,
    /// Delay each way on the links between namespaced nodes and the broker
    /// and database (the cluster scenario's second half; needs root for
    /// `ip netns`); 0 skips it.
    #[arg(long, default_value_t = 1.0)]
    cluster_link_delay_ms: f64,
    /// Where to write benchmarks.md and the chart; nothing is written without it.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// A tiny configuration that runs each scenario for about a second (tests).
    #[arg(long)]
    quick: bool,
    /// Run only these scenarios: fanout (with latency), grpc (Palaver's
    /// fan-out over gRPC beside the WebSocket), socketio (Palaver's fan-out
    /// over Socket.IO beside Node's socket.io server), connections (with
    /// memory per connection over each transport), store, cluster.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Rounds of the saturated fan-out (over the WebSocket and over
    /// Socket.IO) and of the 20,000 deliveries/s latency level, alternating
    /// the servers, and of memory per connection by transport; the report
    /// quotes medians (default: 3; quick: 2, and 1 of memory).
    #[arg(long)]
    rounds: Option<usize>,
    /// Fan-out shapes as ROOMSxMEMBERS (default: 1x1000,100x10; quick: 1x20,4x5).
    #[arg(long, value_delimiter = ',', value_parser = parse_shape)]
    shapes: Vec<(usize, usize)>,
    /// Admin URL of a PostgreSQL server: adds the PostgreSQL store runs and,
    /// with `--tansu-bin`, the cluster scenario (each on a scratch database).
    #[arg(long)]
    postgres_url: Option<String>,
    /// A tansu binary (scripts/tansu path): the Kafka-API broker of the cluster scenario.
    #[arg(long)]
    tansu_bin: Option<PathBuf>,
    /// Node's socket.io server script (what scripts/bench-node prints): the
    /// other side of the socketio scenario, and a row of the connections
    /// scenario; without it, Palaver's side is measured alone.
    #[arg(long)]
    node_socketio_server: Option<PathBuf>,
    /// Node's `ws` server script (what `scripts/bench-node ws` prints): a
    /// third server beside the baseline and Palaver in the fanout, latency
    /// and connections scenarios, and a row of memory per connection.
    #[arg(long)]
    node_ws_server: Option<PathBuf>,
    /// The Node.js that runs `--node-socketio-server` and `--node-ws-server`.
    #[arg(long, default_value = "node")]
    node_bin: PathBuf,
}

fn parse_shape(shape: &str) -> Result<(usize, usize), String> {
    let parsed = shape
        .split_once('x')
        .and_then(|(rooms, members)| Some((rooms.parse().ok()?, members.parse().ok()?)));
    match parsed {
        Some((rooms, members)) if rooms > 0 && members > 0 => Ok((rooms, members)),
        _ => Err(format!("{shape:?} is not ROOMSxMEMBERS, e.g. 100x10")),
    }
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // One thread: the load generator's clients share counters without atomics,
    // and its CPU use is one core's worth, pinned by the caller.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    match command {
        Command::Suite(args) => local.block_on(&runtime, suite(*args)),
        Command::Soak(args) => local.block_on(&runtime, soak(args)),
        Command::BrokerFloor(args) => local.block_on(&runtime, async move {
            let config = broker_floor::FloorConfig {
                records_per_sec: args.records_per_sec,
                duration: Duration::from_secs_f64(args.seconds),
                payload_bytes: args.payload_bytes,
                fetch_wait_ms: args.fetch_wait_ms,
                partitions: args.partitions,
                keys: args.keys,
            };
            let report = broker_floor::measure(&args.brokers, &config).await?;
            println!("{}", json!(report));
            Ok(())
        }),
    }
}

async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    // Access tokens outlive the soak: clients resuming after 15 minutes would
    // otherwise need a refresh, which this scenario is not about.
    let flags = [
        "--access-token-ttl-secs".to_owned(),
        (args.minutes * 60 + 600).to_string(),
    ];
    let server =
        ServerProcess::start(Kind::Palaver, &args.palaver_bin, args.server_core, &flags).await?;
    let members = setup(&server, "soak", args.rooms, args.members).await?;
    let config = soak::SoakConfig {
        minutes: args.minutes,
        rate: args.rate,
        churn: args.churn,
    };
    let report = soak::run(&server, &members, &config).await?;
    println!("{}", serde_json::to_string(&report)?);
    println!();
    println!("| minute | RSS (MiB) | open fds | deliveries | p99 (ms) | resumed |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for m in &report.minutes {
        println!(
            "| {} | {:.1} | {} | {} | {:.1} | {} |",
            m.minute, m.rss_mib, m.open_fds, m.deliveries, m.p99_ms, m.resumed
        );
    }
    println!();
    println!(
        "{} connections, {} messages acked; gaps {}, duplicates {}, clients behind after the drain {}",
        report.connections, report.acked, report.gaps, report.duplicates, report.behind
    );
    anyhow::ensure!(
        report.gaps == 0 && report.duplicates == 0 && report.behind == 0,
        "a client saw a gap or a duplicate, or never caught up"
    );
    Ok(())
}

struct Sizes {
    shapes: Vec<(usize, usize)>,
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    connections: usize,
    connection_users: usize,
    /// The pause before reading RSS, after setting up and after connecting.
    settle: Duration,
    /// Rounds of memory per connection by transport (a server started for
    /// each measurement).
    memory_rounds: usize,
    store_senders: usize,
    cluster_shape: (usize, usize),
    cluster_rates: Vec<f64>,
    /// Deliveries/s of the transport scenario's latency runs.
    transport_rate: f64,
}

impl Sizes {
    /// Traffic as fast as the server takes it: a small window of sends in
    /// flight per sender.
    fn saturated(&self) -> TrafficConfig {
        TrafficConfig {
            warmup: self.warmup,
            measure: self.measure,
            rate: None,
            window: 16,
            padding: 32,
        }
    }

    /// Traffic paced at `deliveries` per second in rooms of `members`, with
    /// no window to hold sends back.
    fn paced(&self, deliveries: f64, members: usize) -> TrafficConfig {
        TrafficConfig {
            rate: Some(deliveries / members as f64),
            window: 10_000,
            ..self.saturated()
        }
    }
}

async fn suite(args: SuiteArgs) -> anyhow::Result<()> {
    let fd_limit = raise_fd_limit();
    let mut sizes = if args.quick {
        Sizes {
            shapes: vec![(1, 20), (4, 5)],
            rounds: 2,
            warmup: Duration::from_millis(300),
            measure: Duration::from_secs(1),
            connections: 40,
            connection_users: 4,
            settle: Duration::from_millis(100),
            memory_rounds: 1,
            store_senders: 4,
            cluster_shape: (2, 5),
            cluster_rates: vec![200.0],
            transport_rate: 2_000.0,
        }
    } else {
        Sizes {
            shapes: vec![(1, 1000), (100, 10)],
            rounds: 3,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
            connections: 10_000,
            connection_users: 100,
            settle: Duration::from_secs(1),
            memory_rounds: 3,
            store_senders: 100,
            cluster_shape: (10, 10),
            cluster_rates: vec![2_000.0, 10_000.0],
            transport_rate: 20_000.0,
        }
    };
    if !args.shapes.is_empty() {
        sizes.shapes = args.shapes.clone();
    }
    if let Some(rounds) = args.rounds {
        anyhow::ensure!(rounds > 0, "--rounds must be at least 1");
        sizes.rounds = rounds;
        sizes.memory_rounds = rounds;
    }
    anyhow::ensure!(
        // Each process holds its own end of every connection.
        fd_limit as usize > sizes.connections + 200,
        "open-file limit {fd_limit} is too low for {} connections",
        sizes.connections
    );
    let mut servers = vec![
        ServerProcess::start(Kind::Baseline, &args.baseline_bin, args.server_core, &[]).await?,
        ServerProcess::start(Kind::Palaver, &args.palaver_bin, args.server_core, &[]).await?,
    ];
    servers.extend(node_server(&args, Kind::NodeWs).await?);
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
        let mut populated: Vec<Vec<Member>> = Vec::new();
        for server in &servers {
            populated.push(setup(server, &format!("f{shape}"), rooms, members).await?);
        }
        let record = |scenario: &str, server: &ServerProcess, round: usize| {
            json!({"scenario": scenario, "target": server.kind.name(), "shape": shape,
                    "rooms": rooms, "members": members, "round": round})
        };
        // Saturation, the servers alternating round by round: a single run
        // here moves by ±15%, so the report quotes the median of the rounds.
        let saturated = sizes.saturated();
        let mut palaver_max = Vec::new();
        for round in 1..=sizes.rounds {
            for (server, people) in servers.iter().zip(&populated) {
                let sockets = traffic::connect_all(people, Transport::WebSocket).await?;
                let report = traffic::run(&[server], people, sockets, &saturated).await?;
                if server.kind == Kind::Palaver {
                    palaver_max.push(report.deliveries_per_sec);
                }
                let mut line = record("fanout", server, round);
                line["report"] = json!(report);
                emit(line);
            }
        }
        // Fixed rates: fractions of Palaver's median maximum once each, then
        // the 20,000 deliveries/s target in rounds, alternating like the above.
        let palaver_max = report::median(&palaver_max);
        let mut runs: Vec<(f64, usize)> = [0.25, 0.5, 0.75]
            .iter()
            .map(|fraction| (fraction * palaver_max, 1))
            .collect();
        if !args.quick {
            runs.extend((1..=sizes.rounds).map(|round| (20_000.0, round)));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (deliveries, round) in runs {
            for (server, people) in servers.iter().zip(&populated) {
                let sockets = traffic::connect_all(people, Transport::WebSocket).await?;
                let config = sizes.paced(deliveries, members);
                let report = traffic::run(&[server], people, sockets, &config).await?;
                let mut line = record("latency", server, round);
                line["target_deliveries_per_sec"] = json!(deliveries.round());
                line["report"] = json!(report);
                emit(line);
            }
        }
    }

    if wants("grpc") {
        for record in transport_scenario(&servers[1], &sizes).await? {
            emit(record);
        }
    }

    if wants("socketio") {
        for record in socketio_scenario(&args, &servers[1], &sizes).await? {
            emit(record);
        }
    }

    for server in servers.iter().filter(|_| wants("connections")) {
        let report = idle_connections(server, "conn", &sizes, Transport::WebSocket).await?;
        emit(json!({"scenario": "connections", "target": server.kind.name(), "report": report}));
    }
    if wants("connections") {
        for record in memory_by_transport(&args, &sizes).await? {
            emit(record);
        }
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
            max_batch: palaver_domain::messages::WriterConfig::default().max_batch,
        };
        let report = store::run(Arc::new(sqlite), "sqlite", &scenario).await?;
        emit(json!({"scenario": "store", "target": "palaver", "report": report}));
        // PostgreSQL, then PostgreSQL writing the cluster's transactional outbox:
        // their ratio is what the outbox costs the send path.
        if let Some(admin_url) = &args.postgres_url {
            for (name, origin) in [
                ("postgres", None),
                ("postgres+outbox", Some("bench".to_owned())),
            ] {
                let database = ScratchDatabase::create(admin_url, "store").await?;
                let options = palaver_store::StoreOptions {
                    pool_size: 20,
                    outbox_origin: origin,
                    ..Default::default()
                };
                let postgres = palaver_store::PostgresStore::open(&database.url, &options).await?;
                let report = store::run(Arc::new(postgres), name, &scenario).await?;
                emit(json!({"scenario": "store", "target": "palaver", "report": report}));
                database.drop_now().await;
            }
        }
    }

    if let (true, Some(admin_url), Some(tansu)) =
        (wants("cluster"), &args.postgres_url, &args.tansu_bin)
    {
        for record in cluster_scenario(&args, &sizes, admin_url, tansu).await? {
            emit(record);
        }
    }

    if let Some(out_dir) = &args.out_dir {
        report::write(out_dir, &records)?;
    }
    Ok(())
}

/// `sizes.connections` idle connections over `transport` to one room of
/// `sizes.connection_users` members (several connections each).
async fn idle_connections(
    server: &ServerProcess,
    tag: &str,
    sizes: &Sizes,
    transport: Transport,
) -> anyhow::Result<connections::ConnectionsReport> {
    let users = setup(server, tag, 1, sizes.connection_users).await?;
    let people: Vec<Member> = (0..sizes.connections)
        .map(|n| users[n % users.len()].clone())
        .collect();
    connections::run(server, &people, transport, 256, sizes.settle).await
}

/// Node's socket.io server (`--node-socketio-server`) or ws server
/// (`--node-ws-server`), started if given.
async fn node_server(args: &SuiteArgs, kind: Kind) -> anyhow::Result<Option<ServerProcess>> {
    let script = match kind {
        Kind::NodeSocketIo => &args.node_socketio_server,
        Kind::NodeWs => &args.node_ws_server,
        Kind::Palaver | Kind::Baseline => &None,
    };
    let Some(script) = script else {
        return Ok(None);
    };
    let script = vec![script.to_string_lossy().into_owned()];
    let server = ServerProcess::start(kind, &args.node_bin, args.server_core, &script).await?;
    Ok(Some(server))
}

/// The fan-out over Socket.IO: Palaver's endpoint beside Node's own
/// socket.io server doing the same work minus storage and accounts
/// (bench/node/socketio-server.mjs), one load generator speaking Engine.IO
/// and Socket.IO to both, then (outside quick runs) Palaver over its own
/// WebSocket as the reference for what the mapping costs; the three
/// alternate round by round, each saturated (as fast as acks return).
async fn socketio_scenario(
    args: &SuiteArgs,
    palaver: &ServerProcess,
    sizes: &Sizes,
) -> anyhow::Result<Vec<Value>> {
    let node = node_server(args, Kind::NodeSocketIo).await?;
    let mut records = Vec::new();
    if node.is_none() {
        records.push(json!({"scenario": "socketio-node", "skipped":
            "no --node-socketio-server: Palaver's side measured alone"}));
    }
    for &(rooms, members) in &sizes.shapes {
        let shape = format!("{rooms}x{members}");
        let tag = format!("sio{shape}");
        let people = setup(palaver, &tag, rooms, members).await?;
        let mut sides = vec![(palaver, Transport::SocketIo, people.clone())];
        if let Some(node) = &node {
            sides.push((
                node,
                Transport::SocketIo,
                setup(node, &tag, rooms, members).await?,
            ));
        }
        if !args.quick {
            sides.push((palaver, Transport::WebSocket, people));
        }
        let saturated = sizes.saturated();
        for round in 1..=sizes.rounds {
            for (server, transport, people) in &sides {
                let links = traffic::connect_all(people, *transport).await?;
                let report = traffic::run(&[server], people, links, &saturated).await?;
                records.push(
                    json!({"scenario": "socketio-fanout", "target": server.kind.name(),
                    "transport": transport.name(), "shape": shape, "rooms": rooms,
                    "members": members, "round": round, "report": report}),
                );
            }
        }
    }
    Ok(records)
}

/// Server memory per idle authenticated connection over each of Palaver's
/// transports, each measured on a server of its own started for it (freed
/// heap from an earlier measurement would absorb part of the next one's
/// growth), transports in turn within each round; and Node's socket.io and
/// ws servers the same way, when given.
async fn memory_by_transport(args: &SuiteArgs, sizes: &Sizes) -> anyhow::Result<Vec<Value>> {
    let mut records = Vec::new();
    for round in 1..=sizes.memory_rounds {
        for transport in Transport::ALL {
            let server =
                ServerProcess::start(Kind::Palaver, &args.palaver_bin, args.server_core, &[])
                    .await?;
            let report = idle_connections(&server, "mem", sizes, transport).await?;
            records.push(
                json!({"scenario": "transport-connections", "target": "palaver",
                "transport": transport.name(), "round": round, "report": report}),
            );
        }
        for (kind, transport) in [
            (Kind::NodeSocketIo, Transport::SocketIo),
            (Kind::NodeWs, Transport::WebSocket),
        ] {
            if let Some(node) = node_server(args, kind).await? {
                let report = idle_connections(&node, "mem", sizes, transport).await?;
                records.push(
                    json!({"scenario": "transport-connections", "target": node.kind.name(),
                    "transport": transport.name(), "round": round, "report": report}),
                );
            }
        }
    }
    Ok(records)
}

/// Palaver's fan-out over `Realtime.Connect` beside the same rooms over the
/// WebSocket, the transports alternating round by round: at saturation, then
/// at the fixed latency rate (`Sizes::transport_rate`), a load both carry
/// with room to spare, where latency is the transports' own.
async fn transport_scenario(palaver: &ServerProcess, sizes: &Sizes) -> anyhow::Result<Vec<Value>> {
    let transports = [Transport::WebSocket, Transport::Grpc];
    let mut records = Vec::new();
    for &(rooms, members) in &sizes.shapes {
        let shape = format!("{rooms}x{members}");
        let people = setup(palaver, &format!("g{shape}"), rooms, members).await?;
        let record = |scenario: &str, transport: Transport, round: usize| {
            json!({"scenario": scenario, "target": "palaver", "transport": transport.name(),
                    "shape": shape, "rooms": rooms, "members": members, "round": round})
        };
        let saturated = sizes.saturated();
        for round in 1..=sizes.rounds {
            for transport in transports {
                let links = traffic::connect_all(&people, transport).await?;
                let report = traffic::run(&[palaver], &people, links, &saturated).await?;
                let mut line = record("transport-fanout", transport, round);
                line["report"] = json!(report);
                records.push(line);
            }
        }
        let deliveries = sizes.transport_rate;
        let paced = sizes.paced(deliveries, members);
        for round in 1..=sizes.rounds {
            for transport in transports {
                let links = traffic::connect_all(&people, transport).await?;
                let report = traffic::run(&[palaver], &people, links, &paced).await?;
                let mut line = record("transport-latency", transport, round);
                line["target_deliveries_per_sec"] = json!(deliveries);
                line["report"] = json!(report);
                records.push(line);
            }
        }
    }
    Ok(records)
}

/// Cluster mode against its baselines, the same rooms at the same rates:
/// one node on PostgreSQL without Kafka ("single-node"), the broker's own
/// round trip ("broker-floor"), then three nodes on one database and one
/// broker with every member on the sender's node ("same-node"), every
/// receiver on another node ("cross-node"), and receivers spread over the
/// two other nodes ("three-nodes"). Server CPU covers every node; each
/// record carries each node's stage timings (`stages.rs`).
async fn cluster_scenario(
    args: &SuiteArgs,
    sizes: &Sizes,
    admin_url: &str,
    tansu: &std::path::Path,
) -> anyhow::Result<Vec<Value>> {
    let (rooms, members) = sizes.cluster_shape;
    let mut records = Vec::new();

    let database = ScratchDatabase::create(admin_url, "single").await?;
    let single = ServerProcess::start(
        Kind::Palaver,
        &args.palaver_bin,
        args.server_core,
        &["--database-url".to_owned(), database.url.clone()],
    )
    .await?;
    let people = setup(&single, "single", rooms, members).await?;
    for &deliveries in &sizes.cluster_rates {
        let links = traffic::connect_all(&people, Transport::WebSocket).await?;
        let (report, stages) = timed_traffic(
            &[&single],
            None,
            &people,
            links,
            &sizes.paced(deliveries, members),
        )
        .await?;
        let placement = ("single-node", None);
        records.push(cluster_record(placement, sizes, deliveries, report, stages));
    }
    drop(single);
    database.drop_now().await;

    records.extend(
        cluster_run(
            args,
            sizes,
            admin_url,
            tansu,
            None,
            &["same-node", "cross-node", "three-nodes"],
        )
        .await?,
    );
    if args.cluster_link_delay_ms > 0.0 {
        match netns::Lan::create(3) {
            Ok(lan) => {
                let delay = Duration::from_secs_f64(args.cluster_link_delay_ms / 1000.0);
                let site = Some((&lan, delay));
                let placements = ["cross-node", "three-nodes"];
                records
                    .extend(cluster_run(args, sizes, admin_url, tansu, site, &placements).await?);
            }
            Err(err) => records.push(json!({"scenario": "cluster-namespaces",
                "skipped": format!("network namespaces could not be made: {err:#}")})),
        }
    }
    Ok(records)
}

/// Three nodes on one scratch database and one broker, each placement at
/// each rate, after the broker's own round trip at each rate. On loopback,
/// or (`site`) each node in a namespace of its own whose links to the broker
/// and the database are delayed each way; the broker floor is then measured
/// from such a namespace too, across the same delay.
async fn cluster_run(
    args: &SuiteArgs,
    sizes: &Sizes,
    admin_url: &str,
    tansu: &std::path::Path,
    site: Option<(&netns::Lan, Duration)>,
    placements: &[&str],
) -> anyhow::Result<Vec<Value>> {
    let (rooms, members) = sizes.cluster_shape;
    let network = site.map(|(_, delay)| {
        format!(
            "own namespaces, links {} ms each way",
            delay.as_secs_f64() * 1000.0
        )
    });
    let mut records = Vec::new();
    let database = ScratchDatabase::create(admin_url, "cluster").await?;
    let broker_core = args.broker_core.or(args.server_core);
    let mut database_url = url::Url::parse(&database.url)?;
    let broker = match site {
        None => Broker::start(tansu, broker_core).await?,
        Some((lan, delay)) => {
            // The services listen on loopback: the namespaces reach them
            // through delaying relays on the bridge; the broker advertises
            // its relay, so every connection a client makes to it is delayed.
            let host = database_url.host_str().unwrap_or("127.0.0.1").to_owned();
            let target = tokio::net::lookup_host((host, database_url.port().unwrap_or(5432)))
                .await?
                .next()
                .ok_or_else(|| anyhow::anyhow!("no address for the database"))?;
            let port = netns::relay(lan.host, target, delay)?;
            database_url.set_host(Some(&lan.host.to_string()))?;
            let _ = database_url.set_port(Some(port));
            let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let advertised = (lan.host, netns::relay(lan.host, listen, delay)?).into();
            Broker::start_on(tansu, broker_core, listen, Some(advertised)).await?
        }
    };
    for &deliveries in &sizes.cluster_rates {
        let floor = broker_floor::FloorConfig {
            records_per_sec: deliveries / members as f64,
            duration: sizes.measure,
            payload_bytes: 300,
            fetch_wait_ms: args.cluster_fetch_wait_ms,
            partitions: args.cluster_partitions,
            keys: rooms,
        };
        let report = match site {
            None => json!(broker_floor::measure(&broker.addr, &floor).await?),
            Some((lan, _)) => {
                broker_floor::measure_in(&lan.exec_in(0), &broker.addr, &floor).await?
            }
        };
        records.push(
            json!({"scenario": "broker-floor", "target": "tansu", "network": network,
            "target_deliveries_per_sec": deliveries, "report": report}),
        );
    }
    let partitions = args.cluster_partitions.to_string();
    let fetch_wait = args.cluster_fetch_wait_ms.to_string();
    let node_args: Vec<String> = [
        "--database-url",
        database_url.as_str(),
        "--kafka-brokers",
        &broker.addr,
        "--kafka-topic",
        "palaver.bench",
        "--kafka-partitions",
        &partitions,
        "--kafka-fetch-wait-ms",
        &fetch_wait,
        // Nodes of one cluster verify each other's tokens: a shared secret,
        // which builds before the signing keys in the store also know.
        "--jwt-secret",
        "benchmark-cluster-secret-0123456789abcdef",
    ]
    .map(String::from)
    .to_vec();
    let mut nodes = Vec::new();
    for n in 0..3 {
        let place = match site {
            None => Place::loopback(),
            Some((lan, _)) => Place {
                wrapper: lan.exec_in(n),
                host: lan.address(n).into(),
            },
        };
        let node = ServerProcess::start_at(
            Kind::Palaver,
            &args.palaver_bin,
            args.server_core,
            &place,
            &node_args,
        )
        .await?;
        wait_for_bus(&node.base_url).await?;
        nodes.push(node);
    }
    let people = setup(&nodes[0], "cluster", rooms, members).await?;
    let all: Vec<&ServerProcess> = nodes.iter().collect();
    for &placement in placements {
        let placed: Vec<Member> = people
            .iter()
            .enumerate()
            .map(|(n, member)| {
                // The first member of each room sends and stays on node 0.
                let receiver = n % members;
                let node = match placement {
                    _ if receiver == 0 => 0,
                    "cross-node" => 1,
                    "three-nodes" => 1 + receiver % 2,
                    _ => 0,
                };
                let mut member = member.clone();
                member.base_url = nodes[node].base_url.clone();
                member.url = format!("{}/api/v1/ws", member.base_url.replacen("http", "ws", 1));
                member
            })
            .collect();
        for &deliveries in &sizes.cluster_rates {
            let links = traffic::connect_all(&placed, Transport::WebSocket).await?;
            let (report, stages) = timed_traffic(
                &all,
                Some(&broker),
                &placed,
                links,
                &sizes.paced(deliveries, members),
            )
            .await?;
            let placement = (placement, network.as_deref());
            records.push(cluster_record(placement, sizes, deliveries, report, stages));
        }
    }
    drop(nodes);
    database.drop_now().await;
    Ok(records)
}

/// One cluster measurement: `placement` is where the members sit and on
/// what network (none: loopback).
fn cluster_record(
    (placement, network): (&str, Option<&str>),
    sizes: &Sizes,
    deliveries: f64,
    report: TrafficReport,
    stages: Value,
) -> Value {
    let (rooms, members) = sizes.cluster_shape;
    json!({"scenario": "cluster", "target": "palaver", "placement": placement,
        "network": network, "shape": format!("{rooms}x{members}"), "rooms": rooms,
        "members": members, "target_deliveries_per_sec": deliveries, "report": report,
        "stages": stages})
}

/// A traffic run on `nodes`, with each node's stage timings over it and the
/// share of a core the broker (if any) used meanwhile.
async fn timed_traffic(
    nodes: &[&ServerProcess],
    broker: Option<&Broker>,
    people: &[Member],
    links: Vec<palaver_bench::link::Link>,
    config: &TrafficConfig,
) -> anyhow::Result<(TrafficReport, Value)> {
    let metrics_url = |node: &ServerProcess| {
        node.metrics_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{} serves no metrics", node.base_url))
    };
    let mut before = Vec::new();
    for node in nodes {
        before.push(stages::snapshot(&metrics_url(node)?).await?);
    }
    let started = (std::time::Instant::now(), broker.map(Broker::cpu_seconds));
    let report = traffic::run(nodes, people, links, config).await?;
    let mut timings = serde_json::Map::new();
    for (n, (node, before)) in nodes.iter().zip(&before).enumerate() {
        let after = stages::snapshot(&metrics_url(node)?).await?;
        timings.insert(format!("node{n}"), json!(stages::between(before, &after)));
    }
    if let (Some(broker), Some(cpu_before)) = (broker, started.1) {
        let share = (broker.cpu_seconds() - cpu_before) / started.0.elapsed().as_secs_f64();
        timings.insert("broker_core_share".into(), json!(share));
    }
    Ok((report, Value::Object(timings)))
}

#[cfg(test)]
mod tests {
    use super::parse_shape;

    #[test]
    fn shapes_read_as_rooms_by_members() {
        assert_eq!(parse_shape("100x10"), Ok((100, 10)));
        assert_eq!(parse_shape("1x1000"), Ok((1, 1000)));
        for bad in ["10", "0x5", "5x0", "ax5", "5x", "x5", ""] {
            assert!(parse_shape(bad).is_err(), "{bad:?} accepted");
        }
    }
}
