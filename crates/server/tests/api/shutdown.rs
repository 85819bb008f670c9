//! Stopping the server: prompt when there is nothing to wait for.

use std::time::{Duration, Instant};

use crate::helpers::{expect_close, spawn_app};

/// Shorter than every grace period shutdown has (10 s for sessions, for the
/// presence task and for the message writer): a stop slower than this waited
/// one out, so something held a session, the services or the writer open.
const NO_GRACE_PERIOD_WAITED: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_idle_server_stops_without_waiting_out_a_grace_period() {
    let mut app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    alice
        .client
        .post_message(room.id, "hi", None)
        .await
        .unwrap();
    // A connection that came and went, and one still open.
    drop(alice.connect().await);
    let mut open = alice.connect().await;

    let stopping = Instant::now();
    app.shutdown().await;
    let took = stopping.elapsed();
    assert!(
        took < NO_GRACE_PERIOD_WAITED,
        "stopping took {took:?}: a grace period ran out"
    );
    assert_eq!(expect_close(&mut open).await.0, 1001);
}
