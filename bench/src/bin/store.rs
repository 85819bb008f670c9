//! `store` scenario: sustained durable messages/second on SQLite and PostgreSQL,
//! batched versus unbatched, as JSON lines plus a summary line of medians.
//!
//! ```text
//! cargo run --release -p palaver-bench --bin store -- --repeat 3 --seconds 3
//! ```

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use palaver_bench::store::{run, StoreReport, StoreScenario};
use palaver_domain::messages::WriterConfig;
use palaver_store::{PostgresStore, SqliteStore, StoreOptions};
use sqlx::Connection;

#[derive(Parser)]
struct Args {
    /// Concurrent senders.
    #[arg(long, default_value_t = 100)]
    senders: usize,
    /// Rooms the senders are spread over.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Measured seconds per run (after one second of warm-up).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Runs per configuration; the summary reports the median.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// PostgreSQL server to create a scratch database on; PostgreSQL is skipped
    /// (and says so) when none is given.
    #[arg(long, env = "PALAVER_BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut engines = vec!["sqlite"];
    if args.postgres_url.is_some() {
        engines.push("postgres");
    } else {
        eprintln!("store bench: no --postgres-url; measuring SQLite only");
    }
    for engine in engines {
        let mut medians = Vec::new();
        // Unbatched, then the server's own batch limit.
        for max_batch in [1, WriterConfig::default().max_batch] {
            let mut runs = Vec::new();
            for _ in 0..args.repeat {
                let scenario = StoreScenario {
                    senders: args.senders,
                    rooms: args.rooms,
                    warmup: Duration::from_secs(1),
                    measure: Duration::from_secs_f64(args.seconds),
                    body_bytes: 100,
                    max_batch,
                };
                let report = run_once(engine, &args, &scenario).await?;
                println!("{}", serde_json::to_string(&report)?);
                anyhow::ensure!(
                    report.lost == 0,
                    "{} acknowledged messages were lost",
                    report.lost
                );
                runs.push(report.messages_per_sec);
            }
            runs.sort_by(f64::total_cmp);
            medians.push(runs[runs.len() / 2]);
        }
        println!(
            "{}",
            serde_json::json!({
                "summary": "store",
                "store": engine,
                "senders": args.senders,
                "unbatched_median_per_sec": medians[0].round(),
                "batched_median_per_sec": medians[1].round(),
                "batched_vs_unbatched": (medians[1] / medians[0] * 100.0).round() / 100.0,
            })
        );
    }
    Ok(())
}

async fn run_once(
    engine: &str,
    args: &Args,
    scenario: &StoreScenario,
) -> anyhow::Result<StoreReport> {
    let options = StoreOptions::default();
    match engine {
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let store = SqliteStore::open(&dir.path().join("bench.db"), &options).await?;
            let report = run(Arc::new(store.clone()), engine, scenario).await;
            palaver_store::ManagedStore::close(&store).await;
            report
        }
        _ => {
            let admin_url = args.postgres_url.as_deref().expect("checked above");
            let name = format!("palaver_bench_{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await?;
            let url = match admin_url.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => anyhow::bail!("--postgres-url must end with /DATABASE"),
            };
            let store = PostgresStore::open(
                &url,
                &StoreOptions {
                    pool_size: 20,
                    ..options
                },
            )
            .await?;
            let report = run(Arc::new(store.clone()), engine, scenario).await;
            palaver_store::ManagedStore::close(&store).await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            report
        }
    }
}
