//! PostgreSQL going away and coming back.

use std::time::Duration;

use palaver_client::types::HistoryQuery;
use palaver_server::config::Secret;

use crate::helpers::*;
use crate::proxy::Proxy;

#[tokio::test]
async fn while_the_database_is_down_requests_fail_with_503_and_nothing_is_acked_then_it_recovers() {
    let database = TestDatabase::postgres().await;
    let direct = url::Url::parse(database.url.as_ref().unwrap()).unwrap();
    let target = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(
        tokio::net::lookup_host(target)
            .await
            .unwrap()
            .next()
            .unwrap(),
    )
    .await;
    let mut via_proxy = direct.clone();
    via_proxy.set_port(Some(proxy.addr.port())).unwrap();
    via_proxy.set_host(Some("127.0.0.1")).unwrap();

    let app = spawn_app_on(database, |s| {
        s.database.url = Some(Secret::new(via_proxy.to_string().into_bytes()));
        s.database.acquire_timeout = std::time::Duration::from_millis(1000);
        s.database.statement_timeout = std::time::Duration::from_millis(2000);
    })
    .await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    let mut ws = alice.connect().await;
    ws.send(&send_frame(room.id, "before", Some("b")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut ws).await, (Some("b".into()), 1));

    proxy.cut();
    // Bounded by the acquire timeout; the client timeout only guards against a hang.
    let during = alice
        .client
        .post_message(room.id, "during (rest)", Some("d-rest"));
    let err = tokio::time::timeout(Duration::from_secs(30), during)
        .await
        .expect("fails fast")
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(503), Some("store_unavailable"))
    );
    ws.send(&send_frame(room.id, "during (ws)", Some("d-ws")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        ("store_unavailable".into(), Some("d-ws".into()))
    );
    assert_eq!(app.readiness().await, 503);

    proxy.restore();
    // Recovery needs no restart: the pool reconnects on the next request.
    let mut recovered = None;
    for _ in 0..50 {
        match alice.client.post_message(room.id, "after", Some("a")).await {
            Ok(message) => {
                recovered = Some(message);
                break;
            }
            Err(err) if err.status() == Some(503) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(err) => panic!("unexpected error while recovering: {err}"),
        }
    }
    assert_eq!(recovered.expect("the store recovered").seq, 2);
    ws.send(&send_frame(room.id, "after (ws)", Some("a-ws")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut ws).await, (Some("a-ws".into()), 3));
    assert_eq!(app.readiness().await, 200);

    // Exactly the acknowledged messages are stored.
    let page = alice
        .client
        .history(room.id, &HistoryQuery::default())
        .await
        .unwrap();
    let stored: Vec<_> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.body.as_str()))
        .collect();
    assert_eq!(stored, [(1, "before"), (2, "after"), (3, "after (ws)")]);
}
