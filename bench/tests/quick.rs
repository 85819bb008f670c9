//! Every benchmark scenario runs for about a second on a tiny configuration
//! against both servers (and Node's socket.io server, whose packages
//! scripts/bench-node installs), and none loses a message. (No timing is asserted:
//! performance is measured by `bench/run`, not by tests.)

use std::path::PathBuf;
use std::process::Command;

/// The `palaver` binary of this build (cargo puts every workspace binary in the
/// same directory, one level above this test's executable).
fn palaver_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = dir.join("palaver");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (it builds palaver)",
        bin.display()
    );
    bin
}

/// The server `./scripts/test` provides (see scripts/postgres).
fn postgres_url() -> String {
    std::env::var("PALAVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// `PALAVER_TEST_TANSU`, or what `scripts/tansu path` fetches.
fn tansu_bin() -> PathBuf {
    if let Ok(path) = std::env::var("PALAVER_TEST_TANSU") {
        return path.into();
    }
    let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/tansu"))
        .arg("path")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().into()
}

/// Node's socket.io server script, its packages installed by `scripts/bench-node`.
fn node_socketio_server() -> PathBuf {
    let output = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/bench-node"
    ))
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().into()
}

#[test]
fn every_scenario_runs_against_both_servers_and_loses_nothing() {
    let out_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palaver-bench"))
        .args(["suite", "--quick"])
        .arg("--postgres-url")
        .arg(postgres_url())
        .arg("--tansu-bin")
        .arg(tansu_bin())
        .arg("--palaver-bin")
        .arg(palaver_bin())
        .arg("--baseline-bin")
        .arg(env!("CARGO_BIN_EXE_baseline"))
        .arg("--node-socketio-server")
        .arg(node_socketio_server())
        .arg("--out-dir")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for (scenario, target) in [
        ("fanout", "baseline"),
        ("fanout", "palaver"),
        ("latency", "baseline"),
        ("latency", "palaver"),
        ("connections", "baseline"),
        ("connections", "palaver"),
        ("transport-fanout", "palaver"),
        ("transport-latency", "palaver"),
        ("socketio-fanout", "palaver"),
        ("socketio-fanout", "node-socketio"),
        ("transport-connections", "palaver"),
        ("transport-connections", "node-socketio"),
        ("store", "palaver"),
        ("cluster", "palaver"),
    ] {
        let runs: Vec<_> = records
            .iter()
            .filter(|r| r["scenario"] == scenario && r["target"] == target)
            .collect();
        assert!(!runs.is_empty(), "{scenario} did not run against {target}");
        for run in runs {
            assert_eq!(run["report"]["lost"], 0, "{run}");
        }
    }
    let transports: Vec<&str> = records
        .iter()
        .filter(|r| r["scenario"] == "transport-fanout" && r["shape"] == "1x20")
        .filter_map(|r| r["transport"].as_str())
        .collect();
    assert_eq!(transports, ["websocket", "grpc", "websocket", "grpc"]);
    // Socket.IO: Palaver and Node's socket.io alternate, round by round.
    let socketio_order: Vec<(&str, u64)> = records
        .iter()
        .filter(|r| r["scenario"] == "socketio-fanout" && r["shape"] == "4x5")
        .map(|r| (r["target"].as_str().unwrap(), r["round"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        socketio_order,
        [
            ("palaver", 1),
            ("node-socketio", 1),
            ("palaver", 2),
            ("node-socketio", 2)
        ]
    );
    // Idle connections over every transport, each of which got the message.
    let by_transport: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["scenario"] == "transport-connections")
        .map(|r| {
            let report = &r["report"];
            assert_eq!(report["received"], report["connections"], "{r}");
            (
                r["target"].as_str().unwrap(),
                r["transport"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_transport,
        [
            ("palaver", "websocket"),
            ("palaver", "grpc"),
            ("palaver", "socketio"),
            ("palaver", "stomp"),
            ("palaver", "signalr"),
            ("node-socketio", "socketio")
        ]
    );
    for record in records.iter().filter(|r| {
        r["scenario"] == "fanout"
            || r["scenario"] == "transport-fanout"
            || r["scenario"] == "socketio-fanout"
    }) {
        assert!(
            record["report"]["deliveries_per_sec"].as_f64().unwrap() > 0.0,
            "{record}"
        );
    }
    // The saturated runs alternate the servers, round by round.
    let fanout_order: Vec<(&str, u64)> = records
        .iter()
        .filter(|r| r["scenario"] == "fanout" && r["shape"] == "1x20")
        .map(|r| (r["target"].as_str().unwrap(), r["round"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        fanout_order,
        [
            ("baseline", 1),
            ("palaver", 1),
            ("baseline", 2),
            ("palaver", 2)
        ]
    );
    let stores: Vec<&str> = records
        .iter()
        .filter(|r| r["scenario"] == "store")
        .filter_map(|r| r["report"]["store"].as_str())
        .collect();
    assert_eq!(stores, ["sqlite", "postgres", "postgres+outbox"]);
    let placements = |network: &serde_json::Value| -> Vec<&str> {
        records
            .iter()
            .filter(|r| r["scenario"] == "cluster" && &r["network"] == network)
            .filter_map(|r| r["placement"].as_str())
            .collect()
    };
    assert_eq!(
        placements(&serde_json::Value::Null),
        ["single-node", "same-node", "cross-node", "three-nodes"]
    );
    // The nodes in network namespaces of their own, behind delayed links:
    // root can make them; anyone else gets a record saying why not.
    let namespaced = serde_json::json!("own namespaces, links 1 ms each way");
    if is_root() {
        assert_eq!(placements(&namespaced), ["cross-node", "three-nodes"]);
        assert!(
            records
                .iter()
                .any(|r| r["scenario"] == "broker-floor" && r["network"] == namespaced),
            "the floor is measured across the same links"
        );
    } else {
        assert!(records
            .iter()
            .any(|r| r["scenario"] == "cluster-namespaces" && r["skipped"].is_string()));
    }
    let floor = records
        .iter()
        .find(|r| r["scenario"] == "broker-floor")
        .expect("the broker's own round trip is measured");
    assert!(floor["report"]["records"].as_u64().unwrap() > 0, "{floor}");
    // Cross-node: the sender's node commits and publishes, the receivers'
    // node reads, applies and delivers; each stage was timed.
    let cross = records
        .iter()
        .find(|r| r["scenario"] == "cluster" && r["placement"] == "cross-node")
        .unwrap();
    for (node, stage) in [
        ("node0", "commit"),
        ("node0", "publish"),
        ("node1", "transit"),
        ("node1", "apply"),
        ("node1", "delivery"),
    ] {
        let timed = &cross["stages"][node][stage];
        assert!(
            timed["count"].as_u64().unwrap_or(0) > 0,
            "{node} {stage}: {cross}"
        );
        assert!(timed["mean_ms"].as_f64().unwrap() >= 0.0, "{cross}");
    }
    let tables = std::fs::read_to_string(out_dir.path().join("benchmarks-results.md")).unwrap();
    assert!(tables.contains("| 1x20 | 2 | palaver |"), "{tables}");
    assert!(tables.contains("medians of the rounds"), "{tables}");
    assert!(tables.contains("| 2x5 | cross-node |"), "{tables}");
    assert!(tables.contains("| 2x5 | three-nodes |"), "{tables}");
    assert!(tables.contains("| cross-node | 200 | node1 |"), "{tables}");
    if is_root() {
        let row = "| 2x5 | cross-node, own namespaces, links 1 ms each way |";
        assert!(tables.contains(row), "{tables}");
    }
    assert!(tables.contains("| 4x5 | grpc | 2 |"), "{tables}");
    assert!(
        tables.contains("| 4x5 | palaver | socketio | 2 |"),
        "{tables}"
    );
    assert!(
        tables.contains("| palaver | signalr | 1 | 40 |"),
        "{tables}"
    );
    let chart = std::fs::read_to_string(out_dir.path().join("benchmarks-latency.svg")).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("polyline"));
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
