//! A flood of logins costs bounded memory: a few password hashes run at a
//! time, a few more wait, and the rest are refused at once with 503.

use std::time::Duration;

use futures::future::join_all;

use crate::helpers::WAIT;
use crate::node::{rss_kib, Node};

const FLOOD: usize = 1000;
/// Two hashes of 19 MiB at once, and headroom for the flood's connections.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

#[tokio::test]
async fn a_thousand_concurrent_wrong_logins_cost_bounded_memory_and_others_are_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("palaver.db").display());
    let args = ["--argon2-concurrency", "2", "--argon2-queue", "16"].map(String::from);
    let node = Node::start_with_default_hashing(&url, &args).await;
    let client = &node.client;
    client
        .register("victim", "the victim's password", None)
        .await
        .unwrap();
    client
        .register("bob", "bob's own password", None)
        .await
        .unwrap();
    let bob = client.login("bob", "bob's own password").await.unwrap();
    let bob = client.with_token(bob.access_token);
    let room = bob.create_room("still here", None).await.unwrap();
    let pid = node.pid();
    let before = rss_kib(pid);
    // The peak, sampled until the flood is answered.
    let (flood_done, mut answered) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut peak = rss_kib(pid);
        while !*answered.borrow_and_update() {
            peak = peak.max(rss_kib(pid));
            let _ = tokio::time::timeout(Duration::from_millis(10), answered.changed()).await;
        }
        peak.max(rss_kib(pid))
    });

    // One client per request: a thousand connections at once, as a botnet would.
    let flood = (0..FLOOD).map(|n| {
        let base = node.base_url.clone();
        async move {
            let client = palaver_client::Client::new(&base);
            let refused = client
                .login("victim", &format!("guess {n}"))
                .await
                .unwrap_err();
            refused.status().expect("an HTTP answer")
        }
    });
    let flood = tokio::spawn(join_all(flood));

    // Meanwhile: sends need no hash and are served; bob's correct login may
    // be told to come back, and then gets in.
    for n in 0..20 {
        let message = bob
            .post_message(room.id, &format!("during the flood {n}"), None)
            .await;
        assert!(message.is_ok(), "a send during the flood: {message:?}");
    }
    tokio::time::timeout(WAIT * 4, async {
        loop {
            match client.login("bob", "bob's own password").await {
                Ok(_) => return,
                Err(err) => {
                    assert_eq!(err.status(), Some(503), "{err:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
    .await
    .expect("bob logs in during the flood");

    let statuses = tokio::time::timeout(WAIT * 12, flood)
        .await
        .expect("the flood is answered")
        .unwrap();
    flood_done.send(true).unwrap();
    let peak = sampler.await.unwrap();
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    let wrong = statuses.iter().filter(|&&s| s == 401).count();
    assert_eq!(refused + wrong, FLOOD, "only 401 and 503: {statuses:?}");
    assert!(
        refused > 0,
        "the flood is refused, not queued without bound"
    );
    assert!(
        peak.saturating_sub(before) <= MAX_GROWTH_KIB,
        "RSS grew from {before} KiB to {peak} KiB"
    );
}
