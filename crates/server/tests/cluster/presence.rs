//! Presence and typing across nodes: one answer everywhere, and a dead node's
//! users go offline without it.

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::{WsAuth, WsConnection};

use crate::helpers::*;
use crate::node::Broker;
use crate::{signup, start_cluster_node};

fn presence_of(user: i64) -> impl FnMut(ServerFrame) -> Option<String> {
    move |frame| match frame {
        ServerFrame::Presence {
            user_id, status, ..
        } if user_id == user => Some(status),
        _ => None,
    }
}

#[tokio::test]
async fn presence_and_typing_cross_nodes_and_a_killed_nodes_users_go_offline() {
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();
    let broker = Broker::start().await;
    let mut nodes = [
        start_cluster_node(&url, &broker).await,
        start_cluster_node(&url, &broker).await,
    ];
    let (bob, bob_token) = signup(&nodes[0].client, "bob").await;
    let (alice, alice_token) = signup(&nodes[1].client, "alice").await;
    let room = bob.create_room("across", None).await.unwrap();
    alice.join_room(&room.code, None).await.unwrap();
    let alice_id = alice.me().await.unwrap().id;
    let mut bob_ws = WsConnection::connect(&nodes[0].base_url, WsAuth::Header(bob_token))
        .await
        .unwrap();

    let mut alice_ws = WsConnection::connect(&nodes[1].base_url, WsAuth::Header(alice_token))
        .await
        .unwrap();
    assert_eq!(
        next_matching(&mut bob_ws, presence_of(alice_id)).await,
        "online"
    );
    // Node 0 answers for a user connected to node 1.
    let online = nodes[0]
        .client
        .with_token(bob.token().unwrap())
        .online(room.id)
        .await
        .unwrap();
    assert!(online.iter().any(|m| m.user.id == alice_id), "{online:?}");

    alice_ws
        .send(&ClientFrame::Typing {
            room: room.id,
            reference: None,
        })
        .await
        .unwrap();
    let typing = next_matching(&mut bob_ws, |f| match f {
        ServerFrame::Typing { user_id, .. } => Some(user_id),
        _ => None,
    })
    .await;
    assert_eq!(typing, alice_id);

    // Node 1 dies without a word: its heartbeats stop, and node 0 declares
    // alice offline after three missed ones.
    nodes[1].kill().await;
    assert_eq!(
        next_matching(&mut bob_ws, presence_of(alice_id)).await,
        "offline"
    );
    let online = nodes[0]
        .client
        .with_token(bob.token().unwrap())
        .online(room.id)
        .await
        .unwrap();
    assert!(!online.iter().any(|m| m.user.id == alice_id), "{online:?}");
    drop(alice_ws);
}
