//! The broker's own produce → consume round trip, with the producer and
//! consumer settings a node uses: the floor under cross-node latency that
//! no change to Palaver can go below, measured in the same run as the
//! cluster figures it is compared with.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    pub records_per_sec: f64,
    pub records: u64,
    /// Produced until read.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Produced until the broker acknowledged it (acks=all).
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
}

/// What the probe sends: paced records of a message event's size.
pub struct FloorConfig {
    pub records_per_sec: f64,
    pub duration: Duration,
    pub payload_bytes: usize,
    /// The node's `fetch.wait.max.ms`.
    pub fetch_wait_ms: u64,
    /// The nodes' topic layout: partitions, and keys spread over them (a
    /// node keys each record by its room).
    pub partitions: i32,
    pub keys: usize,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// [`measure`] in another process started by the command words `wrapper`
/// (e.g. `ip netns exec NAME`): this binary's hidden `broker-floor`
/// subcommand, which prints the report.
pub async fn measure_in(
    wrapper: &[String],
    brokers: &str,
    config: &FloorConfig,
) -> anyhow::Result<serde_json::Value> {
    let output = tokio::process::Command::new(&wrapper[0])
        .args(&wrapper[1..])
        .arg(std::env::current_exe()?)
        .arg("broker-floor")
        .args(["--brokers", brokers])
        .args(["--records-per-sec", &config.records_per_sec.to_string()])
        .args(["--seconds", &config.duration.as_secs_f64().to_string()])
        .args(["--payload-bytes", &config.payload_bytes.to_string()])
        .args(["--fetch-wait-ms", &config.fetch_wait_ms.to_string()])
        .args(["--partitions", &config.partitions.to_string()])
        .args(["--keys", &config.keys.to_string()])
        .kill_on_drop(true)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "the broker floor probe failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Produces to a fresh topic of its own and times each record until the
/// consumer reads it (the send time travels in the payload).
pub async fn measure(brokers: &str, config: &FloorConfig) -> anyhow::Result<FloorReport> {
    let topic = format!("palaver.floor.{}", std::process::id());
    let client = |extra: &[(&str, String)]| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers)
            .set("allow.auto.create.topics", "false")
            .set("socket.nagle.disable", "true")
            .set("log_level", "3");
        for (key, value) in extra {
            c.set(*key, value);
        }
        c
    };
    let admin: AdminClient<DefaultClientContext> = client(&[]).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    admin
        .create_topics(
            [&NewTopic::new(
                &topic,
                config.partitions,
                TopicReplication::Fixed(1),
            )],
            &options,
        )
        .await?;
    let producer: FutureProducer = client(&[
        ("enable.idempotence", "true".into()),
        ("acks", "all".into()),
        ("linger.ms", "1".into()),
    ])
    .create()?;
    let consumer: StreamConsumer = client(&[
        ("group.id", format!("floor-{}", std::process::id())),
        ("enable.auto.commit", "false".into()),
        ("fetch.wait.max.ms", config.fetch_wait_ms.to_string()),
    ])
    .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..config.partitions {
        assignment.add_partition_offset(&topic, partition, Offset::End)?;
    }
    consumer.assign(&assignment)?;

    let total = (config.records_per_sec * config.duration.as_secs_f64()).max(1.0) as u64;
    // Every record has arrived well before this, or some were lost.
    let deadline = Instant::now() + config.duration + Duration::from_secs(30);
    let reader = tokio::spawn(async move {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        while latency.len() < total && Instant::now() < deadline {
            let Ok(Ok(message)) =
                tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
            else {
                break;
            };
            let sent = message
                .payload()
                .and_then(|p| std::str::from_utf8(p.get(..20)?).ok())
                .and_then(|p| p.trim().parse::<u64>().ok());
            if let Some(sent) = sent {
                latency.record(now_us().saturating_sub(sent).max(1))?;
            }
        }
        anyhow::Ok(latency)
    });

    // Let the consumer's first fetch settle before timing anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let padding = "x".repeat(config.payload_bytes.saturating_sub(20));
    let interval = Duration::from_secs_f64(1.0 / config.records_per_sec);
    // Acknowledgements, timed in the order they were asked for.
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, _)>();
    let acker = tokio::spawn(async move {
        let mut acked = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        while let Some((sent, delivery)) = acks_rx.recv().await {
            let delivery: rdkafka::producer::DeliveryFuture = delivery;
            if let Ok(Ok(_)) = delivery.await {
                acked.record((sent.elapsed().as_micros() as u64).max(1))?;
            }
        }
        anyhow::Ok(acked)
    });
    let started = tokio::time::Instant::now();
    for n in 0..total {
        tokio::time::sleep_until(started + interval.mul_f64(n as f64)).await;
        let payload = format!("{:>20}{padding}", now_us());
        let key = (n as usize % config.keys.max(1)).to_string();
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        match producer.send_result(record) {
            Ok(delivery) => {
                let _ = acks_tx.send((Instant::now(), delivery));
            }
            Err((err, _)) => anyhow::bail!("producing: {err}"),
        }
    }
    drop(acks_tx);
    let acked = acker.await??;
    let latency = reader.await??;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(FloorReport {
        records_per_sec: config.records_per_sec,
        records: latency.len(),
        p50_ms: ms(&latency, 0.5),
        p99_ms: ms(&latency, 0.99),
        max_ms: latency.max() as f64 / 1000.0,
        ack_p50_ms: ms(&acked, 0.5),
        ack_p99_ms: ms(&acked, 0.99),
    })
}
