//! The bus of a cluster: Kafka (or any Kafka-API broker).
//!
//! Publishing delivers to this node's own connections at once (no round trip
//! through the broker) and produces each event, keyed by room id, to one topic.
//! Every node reads every partition of that topic without a consumer group
//! (each node needs every room's events, and group joins are slow) and
//! delivers what other nodes published. The `origin` header tells a node its
//! own events apart; the outbox relay re-sends under the original origin.
//! Every record carries a MAC (`palaver_domain::bus_auth`) keyed by the
//! cluster's secret; records without a valid one are dropped unread, so a
//! client that can produce to the topic cannot speak for the nodes.
//!
//! The broker may replay, duplicate or lose: sessions deduplicate messages by
//! seq and fill gaps from the store, and membership events are checked
//! against the store before they change who hears a room.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palaver_domain::bus::{Bus, BusError, Delivery, EventSink, Publication};
use palaver_domain::bus_auth::{ClusterKey, Record, Refused, MAC_HEADER};
use palaver_domain::events::OutboxEntry;
use palaver_domain::remote::still_true;
use palaver_domain::store::Store;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use crate::security::KafkaSecurity;

const ORIGIN_HEADER: &str = "origin";
/// When the record was produced, in Unix microseconds: the start of the
/// receiving node's `palaver_bus_transit_seconds` (clocks of the nodes must
/// agree for it to mean anything across machines).
const PRODUCED_HEADER: &str = "produced_us";
/// How often the broker's reachability is checked.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
/// At most one warning about refused records per this long: whoever writes
/// them must not be able to flood the log.
const REFUSED_WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// Events read from other nodes.
const RECEIVED: &str = "palaver_bus_events_received_total";
/// Produced (by any node) → read here.
const TRANSIT: &str = "palaver_bus_transit_seconds";
/// Read here → handed to this node's connections.
const APPLY: &str = "palaver_bus_apply_seconds";

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port,…`
    pub brokers: String,
    pub topic: String,
    /// Partitions of the topic if this node has to create it.
    pub partitions: i32,
    /// This node's id, sent as the `origin` header of what it publishes.
    pub origin: String,
    /// How long the broker may hold a fetch open waiting for data: the floor
    /// of cross-node latency on a quiet topic, traded against idle polling.
    pub fetch_wait: Duration,
    /// How long a produced event may wait for the broker before its delivery
    /// fails (and the outbox relay takes over).
    pub delivery_timeout: Duration,
    /// TLS and SASL towards the brokers.
    pub security: KafkaSecurity,
    /// Signs what this node produces and checks what it reads.
    pub cluster_key: ClusterKey,
}

/// What the bus reports for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusState {
    /// Not yet reading the topic.
    Starting,
    Ready,
    /// The broker cannot be reached; sends still commit and wait in the outbox.
    Degraded,
}

impl BusState {
    pub fn as_str(self) -> &'static str {
        match self {
            BusState::Starting => "starting",
            BusState::Ready => "ok",
            BusState::Degraded => "degraded",
        }
    }
}

pub struct KafkaBus {
    producer: FutureProducer,
    topic: String,
    origin: String,
    cluster_key: ClusterKey,
    sink: Arc<dyn EventSink>,
    reachable: Arc<AtomicBool>,
    consuming: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl KafkaBus {
    /// Starts producing and consuming. Never waits for the broker: a node must
    /// start, and keep committing sends, while Kafka is down.
    pub fn start(
        config: KafkaConfig,
        sink: Arc<dyn EventSink>,
        store: Arc<dyn Store>,
    ) -> Result<Self, BusError> {
        let producer: FutureProducer = client_config(&config)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .create()
            .map_err(kafka_err)?;
        let consumer: StreamConsumer = client_config(&config)
            // Required by librdkafka, unused: partitions are assigned, not balanced.
            .set("group.id", format!("palaver-node-{}", config.origin))
            .set("enable.auto.commit", "false")
            .set(
                "fetch.wait.max.ms",
                config.fetch_wait.as_millis().to_string(),
            )
            .create()
            .map_err(kafka_err)?;
        let admin: AdminClient<DefaultClientContext> =
            client_config(&config).create().map_err(kafka_err)?;

        let reachable = Arc::new(AtomicBool::new(false));
        let consuming = Arc::new(AtomicBool::new(false));
        let tasks = vec![
            tokio::spawn(watch_broker(
                producer.clone(),
                config.topic.clone(),
                reachable.clone(),
            )),
            tokio::spawn(consume(
                Arc::new(consumer),
                admin,
                config.clone(),
                sink.clone(),
                store,
                consuming.clone(),
            )),
        ];
        Ok(Self {
            producer,
            topic: config.topic,
            origin: config.origin,
            cluster_key: config.cluster_key,
            sink,
            reachable,
            consuming,
            tasks,
        })
    }

    pub fn state(&self) -> BusState {
        match (
            self.consuming.load(Ordering::Relaxed),
            self.reachable.load(Ordering::Relaxed),
        ) {
            (false, _) => BusState::Starting,
            (true, true) => BusState::Ready,
            (true, false) => BusState::Degraded,
        }
    }

    /// Waits (at most `timeout`) until the broker acknowledged everything produced.
    pub async fn flush(&self, timeout: Duration) {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!("Kafka did not take every event before shutdown; the outbox keeps them");
        }
    }

    /// Hands one record to the producer's queue (never blocks).
    fn produce(&self, room: i64, payload: &str, origin: &str) -> Result<DeliveryFuture, BusError> {
        let key = room.to_string();
        let produced = unix_micros().to_string();
        let mac = self.cluster_key.sign(Record {
            key: key.as_bytes(),
            origin: origin.as_bytes(),
            payload: payload.as_bytes(),
        });
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: ORIGIN_HEADER,
                value: Some(origin),
            })
            .insert(Header {
                key: PRODUCED_HEADER,
                value: Some(&produced),
            })
            .insert(Header {
                key: MAC_HEADER,
                value: Some(&mac),
            });
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(payload)
            .headers(headers);
        self.producer
            .send_result(record)
            .map_err(|(err, _)| kafka_err(err))
    }
}

impl Drop for KafkaBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Bus for KafkaBus {
    fn publish(&self, events: Vec<Publication>) -> Delivery {
        for publication in &events {
            self.sink.deliver(&publication.event);
        }
        let started = Instant::now();
        let mut deliveries = Vec::with_capacity(events.len());
        for publication in &events {
            // Encoded once: the outbox row's payload when there is one.
            let payload = publication.payload();
            match self.produce(publication.event.key(), &payload, &self.origin) {
                Ok(delivery) => deliveries.push(delivery),
                Err(err) => return Box::pin(std::future::ready(Err(err))),
            }
        }
        Box::pin(async move {
            let result = await_all(deliveries).await;
            metrics::histogram!("palaver_bus_publish_seconds").record(started.elapsed());
            result
        })
    }

    fn republish(&self, entries: &[OutboxEntry]) -> Delivery {
        let mut deliveries = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.produce(entry.room_id.0, &entry.payload, &entry.origin) {
                Ok(delivery) => deliveries.push(delivery),
                Err(err) => return Box::pin(std::future::ready(Err(err))),
            }
        }
        Box::pin(await_all(deliveries))
    }

    fn is_healthy(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }
}

async fn await_all(deliveries: Vec<DeliveryFuture>) -> Result<(), BusError> {
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((err, _))) => return Err(kafka_err(err)),
            Err(_) => return Err(BusError("producer closed".into())),
        }
    }
    Ok(())
}

fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", format!("palaver-{}", config.origin))
        // Come back quickly after a broker restart; the defaults wait up to 10 s.
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "1000")
        // The topic is created with the configured partitions, not by a broker default.
        .set("allow.auto.create.topics", "false")
        // librdkafka leaves Nagle's algorithm on: across a real link a small
        // request then waits for the peer's delayed ACK (measured through a
        // relay delaying 1 ms each way: 20 ms per acknowledgement with it).
        .set("socket.nagle.disable", "true")
        .set("log_level", "4");
    config.security.apply(&mut client);
    client
}

fn kafka_err(err: KafkaError) -> BusError {
    BusError(err.to_string())
}

/// Asks the broker for the topic's metadata every second; the answer is the
/// bus's health.
async fn watch_broker(producer: FutureProducer, topic: String, reachable: Arc<AtomicBool>) {
    loop {
        let probe = producer.clone();
        let name = topic.clone();
        let ok = tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(Some(&name), METADATA_TIMEOUT)
                .is_ok_and(|m| m.topics().iter().any(|t| !t.partitions().is_empty()))
        })
        .await
        .unwrap_or(false);
        let was = reachable.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!(%topic, "Kafka reachable");
            } else {
                tracing::warn!(%topic, "Kafka unreachable: sends still commit; other nodes catch up when it returns");
            }
        }
        metrics::gauge!("palaver_bus_up").set(if ok { 1.0 } else { 0.0 });
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

/// Creates the topic if needed, assigns every partition from its end, then
/// delivers other nodes' events until aborted.
async fn consume(
    consumer: Arc<StreamConsumer>,
    admin: AdminClient<DefaultClientContext>,
    config: KafkaConfig,
    sink: Arc<dyn EventSink>,
    store: Arc<dyn Store>,
    consuming: Arc<AtomicBool>,
) {
    // Exported from the start, before the broker answers: a node that never
    // reads shows zero received rather than nothing.
    metrics::counter!(RECEIVED).increment(0);
    // Registered without a sample: exported as empty summaries.
    let _ = (metrics::histogram!(TRANSIT), metrics::histogram!(APPLY));
    let partitions = loop {
        match prepare_topic(&consumer, &admin, &config).await {
            Ok(partitions) => break partitions,
            Err(err) => {
                tracing::warn!(%err, topic = %config.topic, "waiting for Kafka");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(&config.topic, partition, Offset::End)
            .expect("a fresh list accepts any partition");
    }
    if let Err(err) = consumer.assign(&assignment) {
        tracing::error!(%err, "cannot read the Kafka topic; this node hears only itself");
        return;
    }
    consuming.store(true, Ordering::Relaxed);
    tracing::info!(topic = %config.topic, partitions, "reading the Kafka topic");
    let mut refused = RefusedRecords::default();
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(%err, "Kafka read failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let received = Instant::now();
        let header = |name: &str| {
            message
                .headers()
                .and_then(|headers| headers.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
        };
        let origin = header(ORIGIN_HEADER);
        if origin.is_some_and(|origin| origin == config.origin.as_bytes()) {
            continue; // delivered locally when it was published
        }
        // Checked before anything else of the record is believed.
        let record = Record {
            key: message.key().unwrap_or_default(),
            origin: origin.unwrap_or_default(),
            payload: message.payload().unwrap_or_default(),
        };
        let event = match config.cluster_key.open(record, header(MAC_HEADER)) {
            Ok(Some(event)) => event,
            Ok(None) => continue, // a newer node's event type: not ours to show
            Err(refusal) => {
                refused.count(&refusal, message.partition(), message.offset());
                continue;
            }
        };
        let produced = header(PRODUCED_HEADER)
            .and_then(|value| std::str::from_utf8(value).ok()?.parse::<u64>().ok());
        if let Some(produced) = produced {
            let transit = unix_micros().saturating_sub(produced);
            metrics::histogram!(TRANSIT).record(Duration::from_micros(transit));
        }
        metrics::counter!(RECEIVED).increment(1);
        match still_true(store.as_ref(), &event).await {
            Ok(true) => sink.deliver(&event),
            Ok(false) => {}
            // Not knowing, keep the room private: the member's connections
            // pick the room up when they reconnect.
            Err(err) => tracing::warn!(%err, "membership event not applied: store unavailable"),
        }
        metrics::histogram!(APPLY).record(received.elapsed());
    }
}

/// Records dropped unread: counted by reason, logged at debug, and warned
/// about at most once a `REFUSED_WARNING_INTERVAL`.
#[derive(Default)]
struct RefusedRecords {
    last_warning: Option<Instant>,
    since_warning: u64,
}

impl RefusedRecords {
    fn count(&mut self, refusal: &Refused, partition: i32, offset: i64) {
        metrics::counter!("palaver_bus_records_refused_total", "reason" => refusal.reason())
            .increment(1);
        tracing::debug!(%refusal, partition, offset, "record on the topic refused");
        self.since_warning += 1;
        if self
            .last_warning
            .is_none_or(|last| last.elapsed() >= REFUSED_WARNING_INTERVAL)
        {
            tracing::warn!(
                refused = self.since_warning,
                last_reason = refusal.reason(),
                "records on the topic refused: not written by a node of this cluster \
                 (another cluster's database, an old node, or a forger)"
            );
            self.last_warning = Some(Instant::now());
            self.since_warning = 0;
        }
    }
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// Makes sure the topic exists and returns its partition count.
async fn prepare_topic(
    consumer: &Arc<StreamConsumer>,
    admin: &AdminClient<DefaultClientContext>,
    config: &KafkaConfig,
) -> Result<i32, BusError> {
    let topic = NewTopic::new(&config.topic, config.partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    match admin.create_topics([&topic], &options).await {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => {
                        return Err(BusError(format!("creating topic {name}: {code}")))
                    }
                }
            }
        }
        Err(err) => return Err(kafka_err(err)),
    }
    let probe = consumer.clone();
    let name = config.topic.clone();
    tokio::task::spawn_blocking(move || {
        let metadata = probe
            .fetch_metadata(Some(&name), METADATA_TIMEOUT)
            .map_err(kafka_err)?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .map_or(0, |t| t.partitions().len() as i32);
        if partitions == 0 {
            return Err(BusError(format!("topic {name} has no partitions yet")));
        }
        Ok(partitions)
    })
    .await
    .map_err(|e| BusError(e.to_string()))?
}
