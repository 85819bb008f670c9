//! Cluster mode: several `palaver` processes on one PostgreSQL database and one
//! Kafka-API broker (tansu, started per test). Needs PostgreSQL
//! (`PALAVER_TEST_POSTGRES_URL`) and tansu (`PALAVER_TEST_TANSU`, else fetched
//! by `scripts/tansu`); `./scripts/test` provides both.

mod delivery;
mod forgery;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/mail_sink.rs"]
mod mail_sink;
#[path = "../support/node.rs"]
mod node;
mod outage;
mod presence;

use palaver_client::Client;

use crate::helpers::PASSWORD;
use crate::node::{Broker, Node};

/// The topic the nodes of a test share.
pub const TOPIC: &str = "palaver.test";

/// Flags that put a node in cluster mode on `broker`, with a short outbox
/// hand-over so tests do not wait the production default.
pub fn cluster_args(brokers: &str) -> Vec<String> {
    [
        "--kafka-brokers",
        brokers,
        "--kafka-topic",
        TOPIC,
        "--kafka-fetch-wait-ms",
        "2",
        "--outbox-relay-after-ms",
        "500",
        "--presence-heartbeat-ms",
        "300",
    ]
    .map(String::from)
    .to_vec()
}

pub async fn start_cluster_node(database_url: &str, broker: &Broker) -> Node {
    let node = Node::start(database_url, &cluster_args(&broker.addr)).await;
    node.wait_for_bus().await;
    node
}

/// Registers `name` through `client`'s node; returns an authenticated client and the token.
pub async fn signup(client: &Client, name: &str) -> (Client, String) {
    client.register(name, PASSWORD, None).await.unwrap();
    let tokens = client.login(name, PASSWORD).await.unwrap();
    (client.with_token(&tokens.access_token), tokens.access_token)
}
