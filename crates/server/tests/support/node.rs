//! Real `palaver` processes and a real Kafka-API broker (tansu), for the tests
//! that need several nodes.

// Shared by two test binaries (`postgres`, `cluster`); each uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;

use palaver_client::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::WAIT;

pub const CHEAP_HASHING: &[&str] = &["--argon2-memory-kib", "256", "--argon2-iterations", "1"];

/// Tests send from one address far more than the limits allow; the limits have tests of their own.
pub const NO_RATE_LIMITS: &[&str] = &[
    "--limit=all=off",
    "--login-backoff-free=4294967295",
    "--max-connections-per-address=100000",
    "--max-sessions-per-address=100000",
];

/// `groups` of flags, then `extra`.
pub fn with(groups: &[&[&str]], extra: &[String]) -> Vec<String> {
    groups
        .iter()
        .flat_map(|group| group.iter().map(|flag| flag.to_string()))
        .chain(extra.iter().cloned())
        .collect()
}

/// A `palaver` child process; killed when dropped.
pub struct Node {
    pub base_url: String,
    pub client: Client,
    child: Child,
    _data_dir: tempfile::TempDir,
}

impl Node {
    /// Starts the real binary on `database_url` with extra flags, cheap
    /// password hashing and no rate limits, and waits until it listens.
    pub async fn start(database_url: &str, extra_args: &[String]) -> Node {
        Self::launch(
            database_url,
            &with(&[CHEAP_HASHING, NO_RATE_LIMITS], extra_args),
        )
        .await
    }

    /// As [`Node::start`], with the production cost of password hashing.
    pub async fn start_with_default_hashing(database_url: &str, extra_args: &[String]) -> Node {
        Self::launch(database_url, &with(&[NO_RATE_LIMITS], extra_args)).await
    }

    /// Starts the real binary with exactly `args` (besides where it listens,
    /// logs and keeps its data), and waits until it listens.
    pub async fn launch(database_url: &str, args: &[String]) -> Node {
        let extra_args = args;
        let data_dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_palaver"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            // Many nodes run at once: none takes the default metrics port.
            .args(["--metrics-listen", "off"])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(extra_args)
            .env("PALAVER_DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("palaver binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if entry["fields"]["message"] == "palaver listening" {
                    return entry["fields"]["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("palaver exited before listening")
        })
        .await
        .expect("palaver listens in time");
        // Keep reading so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base_url = format!("http://{addr}");
        Node {
            client: Client::new(&base_url),
            base_url,
            child,
            _data_dir: data_dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the node is running")
    }

    /// Kills the process with SIGKILL: no shutdown, no flush.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("the node is running");
        self.child.wait().await.unwrap();
    }

    /// The `/readyz` body.
    pub async fn readiness(&self) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}/readyz", self.base_url))
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Waits until the node reads the bus (`/readyz` reports `bus: ok`).
    pub async fn wait_for_bus(&self) {
        tokio::time::timeout(WAIT * 3, async {
            loop {
                if self.readiness().await.1["bus"] == "ok" {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the node's Kafka bus becomes ready");
    }
}

/// A tansu broker with memory storage on a loopback port; killed when dropped.
pub struct Broker {
    pub addr: String,
    _child: Child,
}

/// Ports tried before giving up on starting a broker.
const BROKER_PORT_ATTEMPTS: usize = 8;

impl Broker {
    /// tansu advertises the port it listens on, so it must be told one (it
    /// cannot take port 0 and report back). A random port in the dynamic
    /// range is tried: tansu prints `ready` once it listens, and exits
    /// without it when the port is taken, and then another is tried.
    pub async fn start() -> Broker {
        for _ in 0..BROKER_PORT_ATTEMPTS {
            let port = rand::Rng::gen_range(&mut rand::thread_rng(), 49152..65535u16);
            let addr = format!("127.0.0.1:{port}");
            let mut child = Command::new(tansu_binary())
                .arg("broker")
                .args(["--listener-url", &format!("tcp://{addr}")])
                .args(["--advertised-listener-url", &format!("tcp://{addr}")])
                .args(["--storage-engine", "memory://tansu/"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("tansu starts");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let ready = tokio::time::timeout(WAIT, async {
                while let Some(line) = lines.next_line().await.unwrap_or(None) {
                    if line.starts_with("ready in") {
                        return true;
                    }
                }
                false
            })
            .await
            .expect("tansu listens or exits in time");
            if ready {
                // Keep reading so the broker never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Broker {
                    addr,
                    _child: child,
                };
            }
        }
        panic!("tansu could not listen on any of {BROKER_PORT_ATTEMPTS} ports");
    }
}

/// `PALAVER_TEST_TANSU`, or what `scripts/tansu path` fetches (and caches).
fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("PALAVER_TEST_TANSU") {
        return path.into();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/tansu");
    let output = std::process::Command::new(script)
        .arg("path")
        .output()
        .expect("scripts/tansu runs");
    assert!(
        output.status.success(),
        "scripts/tansu could not provide a broker: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().into()
}

/// A loopback address where connections are refused for as long as the
/// returned socket lives: bound, so nothing else can take the port, and not
/// listening.
pub fn refusing_address() -> (tokio::net::TcpSocket, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    (socket, addr)
}

/// The resident memory of process `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
