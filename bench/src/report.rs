//! Turns the suite's JSON records into `benchmarks.md` tables and an SVG chart.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

/// The servers of the fan-out, latency and connections scenarios, in the
/// order their rows are written (Node's ws server only when it was given).
const SERVERS: [&str; 3] = ["baseline", "palaver", "node-ws"];

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn find<'a>(
    records: &'a [Value],
    scenario: &str,
    target: &str,
    shape: Option<&str>,
) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["scenario"] == scenario && r["target"] == target)
        .filter(|r| shape.is_none_or(|s| r["shape"] == s))
        .collect()
}

/// The middle value (the mean of the middle two for an even count; 0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn round_of(record: &Value) -> u64 {
    record["round"].as_u64().unwrap_or(1)
}

/// The record of `records` from the same round as `record`.
fn same_round<'a>(records: &[&'a Value], record: &Value) -> Option<&'a Value> {
    records
        .iter()
        .find(|r| round_of(r) == round_of(record))
        .copied()
}

/// A report figure of every record, in record order.
fn figures(records: &[&Value], figure: &str) -> Vec<f64> {
    records.iter().map(|r| f(&r["report"][figure])).collect()
}

/// The distinct offered rates of a shape's latency records, ascending.
fn levels(records: &[Value], shape: &str) -> Vec<f64> {
    let mut levels: Vec<f64> = records
        .iter()
        .filter(|r| r["scenario"] == "latency" && r["shape"] == shape)
        .map(|r| f(&r["target_deliveries_per_sec"]))
        .collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    levels
}

fn at_level<'a>(records: &'a [Value], target: &str, shape: &str, level: f64) -> Vec<&'a Value> {
    find(records, "latency", target, Some(shape))
        .into_iter()
        .filter(|r| f(&r["target_deliveries_per_sec"]) == level)
        .collect()
}

fn ratio(palaver: f64, baseline: f64) -> String {
    if baseline > 0.0 {
        format!("{:.2}", palaver / baseline)
    } else {
        "–".into()
    }
}

/// Writes `benchmarks.md` (tables) and `benchmarks-latency.svg` into `out_dir`.
pub fn write(out_dir: &Path, records: &[Value]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(
        out_dir.join("benchmarks-latency.svg"),
        latency_chart(records),
    )?;
    std::fs::write(out_dir.join("benchmarks-results.md"), tables(records))?;
    Ok(())
}

pub fn tables(records: &[Value]) -> String {
    let mut md = String::new();
    let shapes: Vec<String> = {
        let mut s: Vec<String> = records
            .iter()
            .filter(|r| r["scenario"] == "fanout")
            .filter_map(|r| r["shape"].as_str().map(str::to_owned))
            .collect();
        s.dedup();
        s
    };
    md.push_str("### Fan-out at saturation: medians of the rounds\n\n");
    md.push_str("The servers alternate round by round; each round's ratio is taken against the baseline's run of the same round.\n\n");
    md.push_str("| rooms × members | rounds | baseline deliveries/s | Palaver deliveries/s | median of the rounds' ratios | baseline CPU µs/delivery | Palaver CPU µs/delivery |\n|---|---|---|---|---|---|---|\n");
    for shape in &shapes {
        let base = find(records, "fanout", "baseline", Some(shape));
        let palaver = find(records, "fanout", "palaver", Some(shape));
        let ratios: Vec<f64> = palaver
            .iter()
            .filter_map(|p| {
                let b = f(&same_round(&base, p)?["report"]["deliveries_per_sec"]);
                (b > 0.0).then(|| f(&p["report"]["deliveries_per_sec"]) / b)
            })
            .collect();
        let _ = writeln!(
            md,
            "| {shape} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
            palaver.len(),
            median(&figures(&base, "deliveries_per_sec")),
            median(&figures(&palaver, "deliveries_per_sec")),
            median(&ratios),
            median(&figures(&base, "server_us_per_delivery")),
            median(&figures(&palaver, "server_us_per_delivery")),
        );
    }
    md.push_str("\n### Fan-out at saturation: every round\n\n");
    md.push_str("| rooms × members | round | target | deliveries/s | acked sends/s | lost | server CPU µs/delivery | server CPU s | load generator CPU s | deliveries ÷ baseline |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for shape in &shapes {
        let base = find(records, "fanout", "baseline", Some(shape));
        for target in SERVERS {
            for r in find(records, "fanout", target, Some(shape)) {
                let rep = &r["report"];
                let base_deliveries =
                    same_round(&base, r).map_or(0.0, |b| f(&b["report"]["deliveries_per_sec"]));
                let _ = writeln!(
                    md,
                    "| {shape} | {} | {target} | {:.0} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} |",
                    round_of(r),
                    f(&rep["deliveries_per_sec"]),
                    f(&rep["acked_per_sec"]),
                    rep["lost"],
                    f(&rep["server_us_per_delivery"]),
                    f(&rep["server_cpu_seconds"]),
                    f(&rep["loadgen_cpu_seconds"]),
                    ratio(f(&rep["deliveries_per_sec"]), base_deliveries),
                );
            }
        }
    }
    md.push_str("\n### Latency at fixed rates (send → each receipt): medians of the rounds\n\n");
    md.push_str("| rooms × members | target | offered deliveries/s | rounds | achieved deliveries/s | p50 ms | p99 ms | p99 of each round, ms |\n|---|---|---|---|---|---|---|---|\n");
    for shape in &shapes {
        for target in SERVERS {
            for level in levels(records, shape) {
                let runs = at_level(records, target, shape, level);
                if runs.is_empty() {
                    continue;
                }
                let each: Vec<String> = figures(&runs, "p99_ms")
                    .iter()
                    .map(|p99| format!("{p99:.2}"))
                    .collect();
                let _ = writeln!(
                    md,
                    "| {shape} | {target} | {level:.0} | {} | {:.0} | {:.2} | {:.2} | {} |",
                    runs.len(),
                    median(&figures(&runs, "deliveries_per_sec")),
                    median(&figures(&runs, "p50_ms")),
                    median(&figures(&runs, "p99_ms")),
                    each.join(" / "),
                );
            }
        }
    }
    md.push_str("\n### Latency at fixed rates: every run\n\n");
    md.push_str("| rooms × members | target | offered deliveries/s | round | achieved deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | lost |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for shape in &shapes {
        for target in SERVERS {
            for r in find(records, "latency", target, Some(shape)) {
                let rep = &r["report"];
                let _ = writeln!(
                    md,
                    "| {shape} | {target} | {:.0} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                    f(&r["target_deliveries_per_sec"]),
                    round_of(r),
                    f(&rep["deliveries_per_sec"]),
                    f(&rep["p50_ms"]),
                    f(&rep["p99_ms"]),
                    f(&rep["p999_ms"]),
                    f(&rep["max_ms"]),
                    rep["lost"],
                );
            }
        }
    }
    md.push_str("\n### Idle authenticated connections\n\n");
    md.push_str("| target | connections | set up per second | server CPU µs per set-up | server RSS per connection | received the final message | lost |\n|---|---|---|---|---|---|---|\n");
    for target in SERVERS {
        for r in find(records, "connections", target, None) {
            let rep = &r["report"];
            let _ = writeln!(
                md,
                "| {target} | {} | {:.0} | {:.0} | {:.1} KiB | {} | {} |",
                rep["connections"],
                f(&rep["connections_per_sec"]),
                f(&rep["server_cpu_us_per_connection"]),
                f(&rep["rss_per_connection_bytes"]) / 1024.0,
                rep["received"],
                rep["lost"],
            );
        }
    }
    md.push_str("\n### Durable store throughput (domain send path)\n\n");
    md.push_str("| store | senders | rooms | messages/s | lost |\n|---|---|---|---|---|\n");
    for r in find(records, "store", "palaver", None) {
        let rep = &r["report"];
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {} |",
            rep["store"].as_str().unwrap_or("?"),
            rep["senders"],
            rep["rooms"],
            f(&rep["messages_per_sec"]),
            rep["lost"]
        );
    }
    ws_tables(&mut md, records);
    transport_tables(&mut md, records);
    socketio_tables(&mut md, records);
    memory_tables(&mut md, records);
    cluster_tables(&mut md, records);
    md
}

/// Palaver beside Node's ws server, in the same run: per shape, CPU per
/// delivery and latency at each level run in rounds (the everyday load) and
/// at saturation, and connections; ratios are Palaver's figure over ws's of
/// the same round, then their median.
fn ws_tables(md: &mut String, records: &[Value]) {
    if !records.iter().any(|r| r["target"] == "node-ws") {
        return;
    }
    md.push_str("\n### Palaver beside Node's ws server\n\n");
    md.push_str("Medians of the rounds; ratios are medians of each round's Palaver ÷ ws.\n\n");
    md.push_str("| rooms × members | load | ws CPU µs/delivery | Palaver CPU µs/delivery | CPU ratio | ws p50 ms | Palaver p50 ms | ws p99 ms | Palaver p99 ms | deliveries ratio |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let mut shapes: Vec<String> = records
        .iter()
        .filter(|r| r["scenario"] == "fanout" && r["target"] == "node-ws")
        .filter_map(|r| r["shape"].as_str().map(str::to_owned))
        .collect();
    shapes.dedup();
    let per_round = |palaver: &[&Value], ws: &[&Value], figure: &str| -> f64 {
        let ratios: Vec<f64> = palaver
            .iter()
            .filter_map(|p| {
                let w = f(&same_round(ws, p)?["report"][figure]);
                (w > 0.0).then(|| f(&p["report"][figure]) / w)
            })
            .collect();
        median(&ratios)
    };
    for shape in &shapes {
        let mut loads: Vec<(String, Vec<&Value>, Vec<&Value>)> = levels(records, shape)
            .into_iter()
            .map(|level| {
                (
                    format!("{level:.0} deliveries/s"),
                    at_level(records, "palaver", shape, level),
                    at_level(records, "node-ws", shape, level),
                )
            })
            // Levels run once are fractions of Palaver's own maximum, not
            // the same offered load for both; the rounds are the fixed level.
            .filter(|(_, palaver, ws)| palaver.len() > 1 && !ws.is_empty())
            .collect();
        loads.push((
            "saturated".into(),
            find(records, "fanout", "palaver", Some(shape)),
            find(records, "fanout", "node-ws", Some(shape)),
        ));
        for (load, palaver, ws) in loads {
            let _ = writeln!(
                md,
                "| {shape} | {load} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                median(&figures(&ws, "server_us_per_delivery")),
                median(&figures(&palaver, "server_us_per_delivery")),
                per_round(&palaver, &ws, "server_us_per_delivery"),
                median(&figures(&ws, "p50_ms")),
                median(&figures(&palaver, "p50_ms")),
                median(&figures(&ws, "p99_ms")),
                median(&figures(&palaver, "p99_ms")),
                per_round(&palaver, &ws, "deliveries_per_sec"),
            );
        }
    }
    let conns = |target: &str| find(records, "connections", target, None);
    let (palaver, ws) = (conns("palaver"), conns("node-ws"));
    if !palaver.is_empty() && !ws.is_empty() {
        let _ = writeln!(
            md,
            "\nConnections set up per second: Palaver {:.0}, ws {:.0} (Palaver ÷ ws {:.2}); \
             server CPU µs per set-up: Palaver {:.0}, ws {:.0}.",
            median(&figures(&palaver, "connections_per_sec")),
            median(&figures(&ws, "connections_per_sec")),
            median(&figures(&palaver, "connections_per_sec"))
                / median(&figures(&ws, "connections_per_sec")).max(f64::MIN_POSITIVE),
            median(&figures(&palaver, "server_cpu_us_per_connection")),
            median(&figures(&ws, "server_cpu_us_per_connection")),
        );
    }
}

/// The Socket.IO fan-out: Palaver beside Node's socket.io server (and
/// Palaver over its own WebSocket for reference), medians of alternating
/// rounds, Palaver's figures as ratios to Node's of the same round.
fn socketio_tables(md: &mut String, records: &[Value]) {
    let mut shapes: Vec<String> = records
        .iter()
        .filter(|r| r["scenario"] == "socketio-fanout")
        .filter_map(|r| r["shape"].as_str().map(str::to_owned))
        .collect();
    shapes.dedup();
    if shapes.is_empty() {
        return;
    }
    md.push_str("\n### Fan-out over Socket.IO: Palaver beside Node's socket.io\n\n");
    md.push_str("One load generator speaks Engine.IO v4 / Socket.IO v5 to both, and Palaver's own frames for the WebSocket reference; the runs alternate round by round, each saturated. Node's server stores nothing and checks no token. Ratios: Palaver's figure over Node's in the same round, then their median.\n\n");
    md.push_str("| rooms × members | target | transport | rounds | deliveries/s | CPU µs/delivery | ÷ Node (deliveries, CPU) | lost |\n|---|---|---|---|---|---|---|---|\n");
    let of = |target: &str, transport: &str, shape: &str| -> Vec<&Value> {
        find(records, "socketio-fanout", target, Some(shape))
            .into_iter()
            .filter(|r| r["transport"] == transport)
            .collect()
    };
    for shape in &shapes {
        let node = of("node-socketio", "socketio", shape);
        for (target, transport) in [
            ("node-socketio", "socketio"),
            ("palaver", "socketio"),
            ("palaver", "websocket"),
        ] {
            let runs = of(target, transport, shape);
            if runs.is_empty() {
                continue;
            }
            let per_round = |figure: &str| -> f64 {
                let ratios: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| {
                        let base = f(&same_round(&node, r)?["report"][figure]);
                        (base > 0.0).then(|| f(&r["report"][figure]) / base)
                    })
                    .collect();
                median(&ratios)
            };
            let ratios = if target == "palaver" && !node.is_empty() {
                format!(
                    "{:.2}, {:.2}",
                    per_round("deliveries_per_sec"),
                    per_round("server_us_per_delivery")
                )
            } else {
                String::new()
            };
            let lost: u64 = runs
                .iter()
                .map(|r| r["report"]["lost"].as_u64().unwrap_or(0))
                .sum();
            let _ = writeln!(
                md,
                "| {shape} | {target} | {transport} | {} | {:.0} | {:.2} | {ratios} | {lost} |",
                runs.len(),
                median(&figures(&runs, "deliveries_per_sec")),
                median(&figures(&runs, "server_us_per_delivery")),
            );
        }
    }
}

/// Server memory per idle authenticated connection by transport: medians
/// of the rounds, each on a server started for it.
fn memory_tables(md: &mut String, records: &[Value]) {
    let runs: Vec<&Value> = records
        .iter()
        .filter(|r| r["scenario"] == "transport-connections")
        .collect();
    if runs.is_empty() {
        return;
    }
    md.push_str("\n### Memory per idle authenticated connection, by transport\n\n");
    md.push_str("Each measurement on a server started for it; medians of the rounds.\n\n");
    md.push_str("| target | transport | rounds | connections | server RSS per connection | set up per second | server CPU µs per set-up | lost |\n|---|---|---|---|---|---|---|---|\n");
    let mut rows: Vec<(&str, &str)> = runs
        .iter()
        .filter_map(|r| Some((r["target"].as_str()?, r["transport"].as_str()?)))
        .collect();
    let mut seen = std::collections::HashSet::new();
    rows.retain(|row| seen.insert(*row));
    for (target, transport) in rows {
        let of: Vec<&Value> = runs
            .iter()
            .copied()
            .filter(|r| r["target"] == target && r["transport"] == transport)
            .collect();
        let lost: u64 = of
            .iter()
            .map(|r| r["report"]["lost"].as_u64().unwrap_or(0))
            .sum();
        let _ = writeln!(
            md,
            "| {target} | {transport} | {} | {} | {:.1} KiB | {:.0} | {:.0} | {lost} |",
            of.len(),
            of[0]["report"]["connections"],
            median(&figures(&of, "rss_per_connection_bytes")) / 1024.0,
            median(&figures(&of, "connections_per_sec")),
            median(&figures(&of, "server_cpu_us_per_connection")),
        );
    }
}

/// Cluster latency and CPU beside their baselines (the broker's own round
/// trip, one node without Kafka, at the same offered rate), then where each
/// placement's time went, stage by stage.
fn cluster_tables(md: &mut String, records: &[Value]) {
    let cluster = find(records, "cluster", "palaver", None);
    if cluster.is_empty() {
        return;
    }
    // A floor or single node at the same rate, on the same kind of network.
    let at = |list: &[&'_ Value], rate: f64, network: &Value| -> Option<Value> {
        list.iter()
            .find(|r| f(&r["target_deliveries_per_sec"]) == rate && &r["network"] == network)
            .map(|r| (*r).clone())
    };
    // Records of the loopback runs carry no network name.
    let placed = |r: &Value, what: &str| match r["network"].as_str() {
        Some(network) => format!("{what}, {network}"),
        None => what.to_owned(),
    };
    let floors = find(records, "broker-floor", "tansu", None);
    let singles: Vec<&Value> = cluster
        .iter()
        .copied()
        .filter(|r| r["placement"] == "single-node")
        .collect();
    md.push_str(
        "\n### Cluster: nodes on PostgreSQL and Kafka (tansu), beside one node without Kafka\n\n",
    );
    md.push_str("Ratios: p50 and p99 over the broker's own produce → consume round trip at the same record rate; server CPU per delivery (every node) over one PostgreSQL node without Kafka at the same load.\n\n");
    md.push_str("| rooms × members | placement | offered deliveries/s | achieved | p50 ms | p99 ms | max ms | ÷ broker (p50, p99) | CPU µs/delivery | ÷ single node | broker's core share | lost |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for floor in &floors {
        let rep = &floor["report"];
        let _ = writeln!(
            md,
            "| | {} | {:.0} | {:.0} records/s | {:.2} | {:.2} | {:.2} | acked p50 {:.2}, p99 {:.2} | | | | |",
            placed(floor, "broker floor"),
            f(&floor["target_deliveries_per_sec"]),
            f(&rep["records_per_sec"]),
            f(&rep["p50_ms"]),
            f(&rep["p99_ms"]),
            f(&rep["max_ms"]),
            f(&rep["ack_p50_ms"]),
            f(&rep["ack_p99_ms"]),
        );
    }
    for r in &cluster {
        let rep = &r["report"];
        let rate = f(&r["target_deliveries_per_sec"]);
        let vs_floor = match (
            r["placement"] != "single-node",
            at(&floors, rate, &r["network"]),
        ) {
            (true, Some(floor)) => format!(
                "{}, {}",
                ratio(f(&rep["p50_ms"]), f(&floor["report"]["p50_ms"])),
                ratio(f(&rep["p99_ms"]), f(&floor["report"]["p99_ms"]))
            ),
            _ => String::new(),
        };
        let vs_single = match at(&singles, rate, &Value::Null) {
            Some(single) if r["placement"] != "single-node" => ratio(
                f(&rep["server_us_per_delivery"]),
                f(&single["report"]["server_us_per_delivery"]),
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {} | {} | {} |",
            r["shape"].as_str().unwrap_or("?"),
            placed(r, r["placement"].as_str().unwrap_or("?")),
            rate,
            f(&rep["deliveries_per_sec"]),
            f(&rep["p50_ms"]),
            f(&rep["p99_ms"]),
            f(&rep["max_ms"]),
            vs_floor,
            f(&rep["server_us_per_delivery"]),
            vs_single,
            r["stages"]["broker_core_share"]
                .as_f64()
                .map_or(String::new(), |share| format!("{share:.2}")),
            rep["lost"],
        );
    }
    for skipped in records
        .iter()
        .filter(|r| r["scenario"] == "cluster-namespaces")
    {
        let _ = writeln!(
            md,
            "\nNodes in network namespaces: not run ({}).",
            skipped["skipped"].as_str().unwrap_or("?")
        );
    }
    md.push_str("\n#### Where the time goes: mean ms per stage (times timed), by node\n\n");
    md.push_str("commit: the batch transaction (sender's node); publish: produced until the broker acknowledged; transit: produced until a node read it; apply: read until handed to the hub; delivery: the hub until written to a socket (each write's oldest message).\n\n");
    md.push_str("| placement | offered deliveries/s | node | commit | publish | transit | apply | delivery |\n|---|---|---|---|---|---|---|---|\n");
    for r in &cluster {
        let Some(nodes) = r["stages"].as_object() else {
            continue;
        };
        for (node, stages) in nodes.iter().filter(|(_, v)| v.is_object()) {
            let cell = |stage: &str| match stages.get(stage) {
                Some(t) => format!("{:.2} ({})", f(&t["mean_ms"]), t["count"]),
                None => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {:.0} | {node} | {} | {} | {} | {} | {} |",
                placed(r, r["placement"].as_str().unwrap_or("?")),
                f(&r["target_deliveries_per_sec"]),
                cell("commit"),
                cell("publish"),
                cell("transit"),
                cell("apply"),
                cell("delivery"),
            );
        }
    }
}

/// Palaver's records of `scenario` over one transport, for one shape.
fn by_transport<'a>(
    records: &'a [Value],
    scenario: &str,
    transport: &str,
    shape: &str,
) -> Vec<&'a Value> {
    find(records, scenario, "palaver", Some(shape))
        .into_iter()
        .filter(|r| r["transport"] == transport)
        .collect()
}

/// Fan-out over gRPC beside the WebSocket: medians of alternating rounds,
/// gRPC's figures as ratios to the WebSocket's of the same round.
fn transport_tables(md: &mut String, records: &[Value]) {
    let mut shapes: Vec<String> = records
        .iter()
        .filter(|r| r["scenario"] == "transport-fanout")
        .filter_map(|r| r["shape"].as_str().map(str::to_owned))
        .collect();
    shapes.dedup();
    if shapes.is_empty() {
        return;
    }
    md.push_str("\n### Fan-out by transport: Palaver over the WebSocket and over gRPC\n\n");
    md.push_str("The transports alternate round by round on one server; the ratios are gRPC's figure over the WebSocket's in the same round, then their median. Latency is measured at a fixed rate well below either's maximum.\n\n");
    md.push_str("| rooms × members | transport | rounds | deliveries/s at saturation | CPU µs/delivery | ÷ WebSocket (deliveries, CPU) | offered deliveries/s | p50 ms | p99 ms | lost |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for shape in &shapes {
        let websocket = by_transport(records, "transport-fanout", "websocket", shape);
        for transport in ["websocket", "grpc"] {
            let saturated = by_transport(records, "transport-fanout", transport, shape);
            let paced = by_transport(records, "transport-latency", transport, shape);
            let per_round = |figure: &str| -> f64 {
                let ratios: Vec<f64> = saturated
                    .iter()
                    .filter_map(|r| {
                        let base = f(&same_round(&websocket, r)?["report"][figure]);
                        (base > 0.0).then(|| f(&r["report"][figure]) / base)
                    })
                    .collect();
                median(&ratios)
            };
            let lost: u64 = saturated
                .iter()
                .chain(&paced)
                .map(|r| r["report"]["lost"].as_u64().unwrap_or(0))
                .sum();
            let _ = writeln!(
                md,
                "| {shape} | {transport} | {} | {:.0} | {:.2} | {:.2}, {:.2} | {:.0} | {:.2} | {:.2} | {lost} |",
                saturated.len(),
                median(&figures(&saturated, "deliveries_per_sec")),
                median(&figures(&saturated, "server_us_per_delivery")),
                per_round("deliveries_per_sec"),
                per_round("server_us_per_delivery"),
                paced.first().map_or(0.0, |r| f(&r["target_deliveries_per_sec"])),
                median(&figures(&paced, "p50_ms")),
                median(&figures(&paced, "p99_ms")),
            );
        }
    }
}

/// One measured rate: (achieved deliveries/s, p50 ms, p99 ms).
type LatencyPoint = (f64, f64, f64);

/// p50 and p99 latency against achieved deliveries/s, one line per target and shape.
pub fn latency_chart(records: &[Value]) -> String {
    let series: Vec<(String, Vec<LatencyPoint>)> = ["baseline", "palaver"]
        .iter()
        .flat_map(|target| {
            let mut shapes: Vec<String> = find(records, "latency", target, None)
                .iter()
                .filter_map(|r| r["shape"].as_str().map(str::to_owned))
                .collect();
            shapes.dedup();
            shapes.into_iter().map(move |shape| {
                // One point per offered rate: the medians of its rounds.
                let points: Vec<LatencyPoint> = levels(records, &shape)
                    .into_iter()
                    .map(|level| at_level(records, target, &shape, level))
                    .filter(|runs| !runs.is_empty())
                    .map(|runs| {
                        (
                            median(&figures(&runs, "deliveries_per_sec")),
                            median(&figures(&runs, "p50_ms")),
                            median(&figures(&runs, "p99_ms")),
                        )
                    })
                    .collect();
                (format!("{target} {shape}"), points)
            })
        })
        .collect();
    let (width, height, margin) = (720.0, 420.0, 60.0);
    let max_x = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 1.05;
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.2))
        .fold(1.0, f64::max)
        * 1.1;
    let x = |v: f64| margin + v / max_x * (width - 2.0 * margin);
    let y = |v: f64| height - margin - v / max_y * (height - 2.0 * margin);
    let colors = ["#888888", "#bbbbbb", "#1f6feb", "#d1242f"];
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">Latency (send → receipt) vs. deliveries/s — solid p99, dashed p50</text>
<line x1="{margin}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{margin}" y1="{margin}" x2="{margin}" y2="{b}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">deliveries per second</text>
<text x="15" y="{}" transform="rotate(-90 15 {})" text-anchor="middle">milliseconds</text>
"##,
        width / 2.0,
        width / 2.0,
        height - 15.0,
        height / 2.0,
        height / 2.0,
        b = height - margin,
        r = width - margin,
    );
    for i in 0..=4 {
        let vx = max_x * i as f64 / 4.0;
        let vy = max_y * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}</text>"#,
            x(vx),
            height - margin + 16.0,
            vx
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.1}</text>"#,
            margin - 6.0,
            y(vy) + 4.0,
            vy
        );
    }
    for (n, (name, points)) in series.iter().enumerate() {
        let color = colors[n % colors.len()];
        for (index, dash) in [(2usize, ""), (1usize, r#" stroke-dasharray="4 3""#)] {
            let path: Vec<String> = points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.0), y(if index == 2 { p.2 } else { p.1 })))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                path.join(" ")
            );
        }
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            margin + 10.0,
            margin + 10.0 + n as f64 * 16.0,
            margin + 28.0,
            margin + 15.0 + n as f64 * 16.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    fn fanout(target: &str, round: u64, deliveries: f64) -> Value {
        json!({"scenario": "fanout", "target": target, "shape": "1x10", "round": round,
               "report": {"deliveries_per_sec": deliveries, "server_us_per_delivery": 1.0, "lost": 0}})
    }

    #[test]
    fn each_round_is_compared_with_the_baseline_of_the_same_round() {
        let records = [
            fanout("baseline", 1, 100.0),
            fanout("palaver", 1, 90.0),
            fanout("baseline", 2, 200.0),
            fanout("palaver", 2, 100.0),
            fanout("baseline", 3, 100.0),
            fanout("palaver", 3, 80.0),
        ];
        let md = tables(&records);
        // Ratios 0.9, 0.5, 0.8: the median is 0.80, not 90/100 (the medians' ratio).
        assert!(
            md.contains("| 1x10 | 3 | 100 | 90 | 0.80 | 1.00 | 1.00 |"),
            "{md}"
        );
        assert!(md.contains("| 1x10 | 2 | palaver | 100 |"), "{md}");
    }

    fn socketio(target: &str, round: u64, deliveries: f64, cpu: f64) -> Value {
        json!({"scenario": "socketio-fanout", "target": target, "transport": "socketio",
               "shape": "1x10", "round": round,
               "report": {"deliveries_per_sec": deliveries, "server_us_per_delivery": cpu, "lost": 0}})
    }

    #[test]
    fn socketio_rounds_are_compared_with_node_of_the_same_round() {
        let records = [
            socketio("palaver", 1, 300.0, 2.0),
            socketio("node-socketio", 1, 100.0, 8.0),
            socketio("palaver", 2, 200.0, 3.0),
            socketio("node-socketio", 2, 200.0, 4.0),
            socketio("palaver", 3, 500.0, 1.0),
            socketio("node-socketio", 3, 100.0, 10.0),
        ];
        let md = tables(&records);
        // Deliveries ratios 3, 1, 5 and CPU ratios 0.25, 0.75, 0.1: medians 3 and 0.25.
        assert!(
            md.contains("| 1x10 | palaver | socketio | 3 | 300 | 2.00 | 3.00, 0.25 | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| 1x10 | node-socketio | socketio | 3 | 100 | 8.00 |  | 0 |"),
            "{md}"
        );
    }

    #[test]
    fn memory_is_reported_per_target_and_transport() {
        let memory = |transport: &str, round: u64, bytes: f64| {
            json!({"scenario": "transport-connections", "target": "palaver",
                   "transport": transport, "round": round,
                   "report": {"connections": 10, "rss_per_connection_bytes": bytes,
                              "connections_per_sec": 100.0,
                              "server_cpu_us_per_connection": bytes / 8.0, "lost": 0}})
        };
        let records = [
            memory("websocket", 1, 2048.0),
            memory("stomp", 1, 4096.0),
            memory("websocket", 2, 1024.0),
            memory("stomp", 2, 8192.0),
        ];
        let md = tables(&records);
        assert!(
            md.contains("| palaver | websocket | 2 | 10 | 1.5 KiB | 100 | 192 | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| palaver | stomp | 2 | 10 | 6.0 KiB | 100 | 768 | 0 |"),
            "{md}"
        );
    }
}
