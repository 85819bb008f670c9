//! Servers under test as child processes, pinned to a core, and what /proc
//! says about them (CPU seconds, resident memory).

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Flags that lift every per-address and per-user limit.
const NO_LIMITS: &[&str] = &[
    "--limit=all=off",
    "--login-backoff-free=4294967295",
    "--max-connections=1000000",
    "--max-connections-per-address=1000000",
    "--max-sessions-per-user=1000000",
    "--max-sessions-per-address=1000000",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Palaver,
    Baseline,
    /// Node's own socket.io server (bench/node/socketio-server.mjs).
    NodeSocketIo,
    /// Node's `ws` server speaking the baseline's frames (bench/node/ws-server.mjs).
    NodeWs,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Palaver => "palaver",
            Kind::Baseline => "baseline",
            Kind::NodeSocketIo => "node-socketio",
            Kind::NodeWs => "node-ws",
        }
    }
}

/// Where a server runs: the command words its start is wrapped in (e.g.
/// `ip netns exec NAME`) and the address it listens on.
pub struct Place {
    pub wrapper: Vec<String>,
    pub host: std::net::IpAddr,
}

impl Place {
    pub fn loopback() -> Self {
        Self {
            wrapper: Vec::new(),
            host: std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }
}

pub struct ServerProcess {
    pub kind: Kind,
    pub base_url: String,
    /// `http://ADDR/metrics` on the node's metrics listener (palaver only).
    pub metrics_url: Option<String>,
    pub pid: u32,
    _child: Child,
    _data_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `bin` (the palaver or baseline binary, or `node`) on `core`
    /// with `args` (palaver's extra flags; node's script; none for the
    /// baseline), and waits until it listens.
    pub async fn start(
        kind: Kind,
        bin: &Path,
        core: Option<usize>,
        args: &[String],
    ) -> anyhow::Result<Self> {
        Self::start_at(kind, bin, core, &Place::loopback(), args).await
    }

    /// As [`ServerProcess::start`], run and listening where `place` says.
    pub async fn start_at(
        kind: Kind,
        bin: &Path,
        core: Option<usize>,
        place: &Place,
        args: &[String],
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let mut command = wrapped_command(&place.wrapper, core, bin);
        if matches!(kind, Kind::NodeSocketIo | Kind::NodeWs) {
            command.args(args).env("NODE_ENV", "production");
        }
        if kind == Kind::Palaver {
            // Cheap password hashing keeps the setup of thousands of users
            // short; no measured phase hashes passwords. Every client comes
            // from 127.0.0.1 and sends as fast as it can: nothing is limited.
            command
                .args([
                    "--listen",
                    &format!("{}:0", place.host),
                    "--log-format",
                    "json",
                    "--metrics-listen",
                    &format!("{}:0", place.host),
                ])
                .args(["--argon2-memory-kib", "256", "--argon2-iterations", "1"])
                .args(NO_LIMITS)
                .arg("--data-dir")
                .arg(data_dir.path())
                .args(args)
                .env("RUST_LOG", "warn,palaver_server::app=info");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("server exited at once"))?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut metrics_url = None;
        let addr = loop {
            let line = lines
                .next_line()
                .await?
                .ok_or_else(|| anyhow::anyhow!("{} exited before listening", kind.name()))?;
            if let Some(addr) = line.strip_prefix("listening ") {
                break addr.to_owned();
            }
            if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) {
                // Logged before "palaver listening".
                if entry["fields"]["message"] == "metrics listening" {
                    let addr = entry["fields"]["addr"].as_str().unwrap_or_default();
                    metrics_url = Some(format!("http://{addr}/metrics"));
                }
                if entry["fields"]["message"] == "palaver listening" {
                    break entry["fields"]["addr"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            kind,
            base_url: format!("http://{addr}"),
            metrics_url,
            pid,
            _child: child,
            _data_dir: data_dir,
        })
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of_pid(self.pid)
    }

    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }
}

/// `bin` started inside the command words `wrapper` (none: directly),
/// pinned to `core` by `taskset`. Every wrapper execs the next program, so
/// the child's pid is `bin`'s.
pub fn wrapped_command(wrapper: &[String], core: Option<usize>, bin: &Path) -> Command {
    let mut words: Vec<std::ffi::OsString> = wrapper.iter().map(Into::into).collect();
    if let Some(core) = core {
        words.extend(["taskset".into(), "-c".into(), core.to_string().into()]);
    }
    words.push(bin.into());
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]);
    command
}

/// CPU seconds (user + system) this process has used.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds_of("/proc/self/stat")
}

/// CPU seconds (user + system) process `pid` has used.
pub fn cpu_seconds_of_pid(pid: u32) -> f64 {
    cpu_seconds_of(&format!("/proc/{pid}/stat"))
}

fn cpu_seconds_of(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the parenthesized command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / per_second
}

/// Raises this process's open-file limit (children inherit it): to 2^20 where
/// allowed (root may raise the hard limit), else to the hard limit.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid, owned struct.
    unsafe {
        let wanted = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: 1 << 20,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}
