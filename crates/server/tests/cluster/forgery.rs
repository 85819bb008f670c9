//! The topic is an input: a client that can produce to it, but is no node,
//! cannot make a node deliver words a user never sent or drop a real
//! message; and a genuine record produced again delivers nothing twice.

use std::time::Duration;

use palaver_client::frames::ServerFrame;
use palaver_client::{WsAuth, WsConnection};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::helpers::*;
use crate::node::Broker;
use crate::{signup, start_cluster_node, TOPIC};

/// A record as read from the topic.
#[derive(Debug, Clone)]
struct Copied {
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

impl Copied {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }
}

fn producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap()
}

async fn produce(producer: &FutureProducer, key: &[u8], payload: &[u8], headers: &[(&str, &[u8])]) {
    let mut owned = OwnedHeaders::new();
    for (name, value) in headers {
        owned = owned.insert(Header {
            key: name,
            value: Some(*value),
        });
    }
    let record = FutureRecord::to(TOPIC)
        .key(key)
        .payload(payload)
        .headers(owned);
    producer
        .send(record, Duration::from_secs(5))
        .await
        .expect("the broker takes the record");
}

/// Every record keyed `key` on the topic, once those matching `until` are
/// all there.
async fn records_of(broker: &Broker, key: &str, until: &[&str]) -> Vec<Copied> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "forgery-test-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let partitions = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
        .unwrap()
        .topics()[0]
        .partitions()
        .len() as i32;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(TOPIC, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !until.iter().all(|needle| {
            records
                .iter()
                .any(|r: &Copied| String::from_utf8_lossy(&r.payload).contains(needle))
        }) {
            let message = consumer.recv().await.unwrap();
            if message.key() != Some(key.as_bytes()) {
                continue;
            }
            records.push(Copied {
                key: message.key().unwrap().to_vec(),
                payload: message.payload().unwrap_or_default().to_vec(),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    })
    .await
    .expect("the genuine records are on the topic");
    records
}

/// Frames up to the message `seq`; panics if another message comes first,
/// or an edit that is not `current_edit` (a repeated notice of the current
/// state is harmless, an old state shown again is not).
async fn nothing_but_message(ws: &mut WsConnection, seq: u64, current_edit: &str) -> String {
    next_matching(ws, |frame| match frame {
        ServerFrame::Message { seq: got, body, .. } if got == seq => Some(body),
        ServerFrame::Message { seq: got, body, .. } => {
            panic!("message {got} ({body:?}) delivered before {seq}")
        }
        ServerFrame::MessageEdited { seq: got, body, .. } if body != current_edit => {
            panic!("stale edit of {got} ({body:?}) delivered before message {seq}")
        }
        _ => None,
    })
    .await
}

#[tokio::test]
async fn records_no_node_wrote_are_not_believed_and_replayed_ones_deliver_nothing_twice() {
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();
    let broker = Broker::start().await;
    let nodes = [
        start_cluster_node(&url, &broker).await,
        start_cluster_node(&url, &broker).await,
    ];
    let (alice, alice_token) = signup(&nodes[0].client, "alice").await;
    let (bob, bob_token) = signup(&nodes[1].client, "bob").await;
    let room = alice.create_room("guarded", None).await.unwrap();
    bob.join_room(&room.code, None).await.unwrap();
    let alice_id = alice.me().await.unwrap().id;
    // A member on each node: the forger's records reach both.
    let mut watchers = [
        WsConnection::connect(&nodes[0].base_url, WsAuth::Header(alice_token))
            .await
            .unwrap(),
        WsConnection::connect(&nodes[1].base_url, WsAuth::Header(bob_token))
            .await
            .unwrap(),
    ];

    alice.post_message(room.id, "first", None).await.unwrap();
    for ws in &mut watchers {
        assert_eq!(next_message(ws).await.body, "first");
    }
    let key = room.id.to_string();
    let genuine = records_of(&broker, &key, &["\"first\""]).await;
    let first = genuine
        .iter()
        .find(|r| String::from_utf8_lossy(&r.payload).contains("\"first\""))
        .unwrap();
    let origin = first.header("origin").unwrap().to_vec();
    let genuine_mac = first
        .header("mac")
        .expect("nodes sign their records")
        .to_vec();

    // Seq 2 is the next one: believed, it would be shown as alice's words
    // and the real seq 2 dropped as a duplicate.
    let forged = serde_json::json!({
        "v": 1, "type": "message_posted", "room_id": room.id, "seq": 2,
        "sender_id": alice_id, "body": "forged", "created_at": 1_700_000_000_000_i64
    })
    .to_string();
    let forger = producer(&broker);
    let zeros = [b'0'; 64];
    for headers in [
        vec![],
        vec![("origin", b"intruder".as_slice())],
        vec![("origin", origin.as_slice()), ("mac", zeros.as_slice())],
        // A real record's MAC does not cover another payload.
        vec![
            ("origin", origin.as_slice()),
            ("mac", genuine_mac.as_slice()),
        ],
    ] {
        produce(&forger, key.as_bytes(), forged.as_bytes(), &headers).await;
    }
    // Same key, same partition: every node reads the forgeries first.
    let real = alice.post_message(room.id, "real", None).await.unwrap();
    assert_eq!(real.seq, 2);
    for ws in &mut watchers {
        assert_eq!(nothing_but_message(ws, 2, "").await, "real");
    }

    alice
        .edit_message(room.id, 1, "first, edited")
        .await
        .unwrap();
    alice
        .edit_message(room.id, 1, "first, final")
        .await
        .unwrap();
    for ws in &mut watchers {
        let body = next_matching(ws, |frame| match frame {
            ServerFrame::MessageEdited { body, .. } if body.ends_with("final") => Some(body),
            _ => None,
        })
        .await;
        assert_eq!(body, "first, final");
    }

    // Everything the nodes wrote about the room, produced again verbatim:
    // joins, both messages, both edits. Messages are dropped as seqs already
    // delivered; the first edit no longer matches the store.
    let genuine = records_of(
        &broker,
        &key,
        &["\"real\"", "first, edited", "first, final"],
    )
    .await;
    for record in &genuine {
        let headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        produce(&forger, &record.key, &record.payload, &headers).await;
    }
    alice
        .post_message(room.id, "after the replay", None)
        .await
        .unwrap();
    for ws in &mut watchers {
        assert_eq!(
            nothing_but_message(ws, 3, "first, final").await,
            "after the replay"
        );
    }
}
