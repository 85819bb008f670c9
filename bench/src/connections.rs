//! Idle connections: server memory per authenticated connection, how fast
//! connections are set up, and that every one of them still receives a message.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::members::{connect, Member};
use crate::server::ServerProcess;

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    pub connections: usize,
    pub connect_seconds: f64,
    pub connections_per_sec: f64,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub rss_per_connection_bytes: f64,
    pub received: usize,
    pub lost: usize,
}

/// Opens one connection per member (members may repeat: several connections
/// of one user), from 127.0.0.1–127.0.0.16, `concurrency` handshakes at a time.
pub async fn run(
    server: &ServerProcess,
    members: &[Member],
    concurrency: usize,
) -> anyhow::Result<ConnectionsReport> {
    let sources: Vec<Ipv4Addr> = (1..=16).map(|n| Ipv4Addr::new(127, 0, 0, n)).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_bytes();
    let started = Instant::now();
    let sockets: Vec<_> = futures::stream::iter(members.iter().enumerate())
        .map(|(n, member)| connect(member, Some(sources[n % sources.len()])))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let connect_seconds = started.elapsed().as_secs_f64();
    // Let allocations settle (first writes, buffers) before reading RSS.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.rss_bytes();

    // One message into the (single) room: every connection must get it.
    let mut sockets = sockets;
    let room = members[0].room;
    sockets[0]
        .send(Message::text(format!(
            r#"{{"type":"send","room":{room},"body":"hello all","client_id":"c1"}}"#
        )))
        .await?;
    let received = futures::stream::iter(sockets)
        .map(|mut socket| async move {
            tokio::time::timeout(Duration::from_secs(20), async {
                while let Some(Ok(frame)) = socket.next().await {
                    if let Message::Text(text) = frame {
                        if text.as_str().starts_with(r#"{"type":"message""#) {
                            return true;
                        }
                    }
                }
                false
            })
            .await
            .unwrap_or(false)
        })
        .buffer_unordered(usize::MAX)
        .filter(|got| std::future::ready(*got))
        .count()
        .await;
    let connections = members.len();
    Ok(ConnectionsReport {
        connections,
        connect_seconds,
        connections_per_sec: connections as f64 / connect_seconds,
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        rss_per_connection_bytes: rss_after.saturating_sub(rss_before) as f64 / connections as f64,
        received,
        lost: connections - received,
    })
}
