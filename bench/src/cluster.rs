//! What cluster mode needs for a benchmark run: a fresh PostgreSQL database
//! and a tansu broker (Kafka API), both gone when dropped.

use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection;
use tokio::process::Child;

/// A database created for this run on `admin_url`'s server, dropped afterwards.
pub struct ScratchDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl ScratchDatabase {
    pub async fn create(admin_url: &str, tag: &str) -> anyhow::Result<Self> {
        let name = format!("palaver_bench_{tag}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let mut url = url_parts(admin_url);
        url.set_path(&name);
        Ok(Self {
            url: url.to_string(),
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    pub async fn drop_now(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
        }
    }
}

fn url_parts(url: &str) -> url::Url {
    url::Url::parse(url).expect("a PostgreSQL URL")
}

/// tansu on a free loopback port, with memory storage; killed when dropped.
pub struct Broker {
    /// Where clients reach it.
    pub addr: String,
    pid: u32,
    _child: Child,
}

impl Broker {
    pub async fn start(bin: &std::path::Path, core: Option<usize>) -> anyhow::Result<Self> {
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
        Self::start_on(bin, core, listen, None).await
    }

    /// On `listen`; `advertised` is where clients are told to reach it (a
    /// relay), if not there.
    pub async fn start_on(
        bin: &std::path::Path,
        core: Option<usize>,
        listen: std::net::SocketAddr,
        advertised: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Self> {
        let addr = advertised.unwrap_or(listen).to_string();
        let child = crate::server::wrapped_command(&[], core, bin)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://{listen}")])
            .args(["--advertised-listener-url", &format!("tcp://{addr}")])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&listen).await.is_err() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "tansu did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            addr,
            pid: child.id().unwrap_or(0),
            _child: child,
        })
    }
}

impl Broker {
    /// CPU seconds the broker has used (`taskset` execs it: same pid).
    pub fn cpu_seconds(&self) -> f64 {
        crate::server::cpu_seconds_of_pid(self.pid)
    }
}

/// A loopback port free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until a node reads its Kafka bus (`/readyz` says `bus: ok`).
pub async fn wait_for_bus(base_url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready: serde_json::Value = reqwest::get(format!("{base_url}/readyz"))
            .await?
            .json()
            .await?;
        if ready["bus"] == "ok" {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "bus not ready: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
