//! Kafka out of reach for one node: its sends still commit and ack, and the
//! outbox relay of a node that can reach Kafka delivers them to everyone.

use palaver_client::WsAuth;
use palaver_client::WsConnection;

use crate::helpers::*;
use crate::node::{refusing_address, Broker, Node};
use crate::{cluster_args, signup, start_cluster_node};

#[tokio::test]
async fn a_node_cut_off_from_kafka_still_acks_and_its_events_reach_other_nodes_through_the_outbox()
{
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();
    let broker = Broker::start().await;
    let healthy = start_cluster_node(&url, &broker).await;
    // Nothing listens there: the node never reaches a broker.
    let (_refusing, nowhere) = refusing_address();
    let cut_off = Node::start(&url, &cluster_args(&nowhere)).await;

    let (status, body) = cut_off.readiness().await;
    assert_eq!(
        status, 200,
        "a bus outage must not take the node out of service"
    );
    assert_eq!(body["status"], "degraded", "{body}");
    assert_ne!(body["bus"], "ok", "{body}");
    assert_eq!(healthy.readiness().await.1["status"], "ok");

    let (owner, _) = signup(&cut_off.client, "owner").await;
    let room = owner.create_room("split", None).await.unwrap();
    let (member, member_token) = signup(&healthy.client, "member").await;
    member.join_room(&room.code, None).await.unwrap();
    let mut watcher = WsConnection::connect(&healthy.base_url, WsAuth::Header(member_token))
        .await
        .unwrap();

    let mut acked = Vec::new();
    for n in 1..=3 {
        let message = owner
            .post_message(room.id, &format!("sent while Kafka is away {n}"), None)
            .await
            .expect("the store is the source of truth: the send commits");
        acked.push(message.seq);
    }
    assert_eq!(acked, [1, 2, 3]);

    // The healthy node's relay picks the rows up after --outbox-relay-after-ms.
    for seq in 1..=3 {
        let received = next_message(&mut watcher).await;
        assert_eq!(
            (received.seq, received.body.as_str()),
            (seq, format!("sent while Kafka is away {seq}").as_str())
        );
    }
    // Once a bus holds them, the rows are gone.
    let mut admin = sqlx_connect(&url).await;
    tokio::time::timeout(WAIT, async {
        loop {
            let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
                .fetch_one(&mut admin)
                .await
                .unwrap();
            if left == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the relay clears the outbox");
}

async fn sqlx_connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap()
}
