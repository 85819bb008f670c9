//! Idle connections: server memory per authenticated connection, how fast
//! connections are set up, and that every one of them still receives a message.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::link::{Incoming, Link, Transport};
use crate::members::Member;
use crate::server::ServerProcess;

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    pub connections: usize,
    pub connect_seconds: f64,
    pub connections_per_sec: f64,
    /// Server CPU (user and system) spent setting them up, per connection:
    /// what the rate would be bounded by with the load generator out of the way.
    pub server_cpu_us_per_connection: f64,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub rss_per_connection_bytes: f64,
    pub received: usize,
    pub lost: usize,
}

/// Opens one connection per member over `transport` (members may repeat:
/// several connections of one user), from 127.0.0.1–127.0.0.16 where the
/// transport allows, `concurrency` handshakes at a time. Server RSS is read
/// `settle` after the setup before, and `settle` after the last connection.
pub async fn run(
    server: &ServerProcess,
    members: &[Member],
    transport: Transport,
    concurrency: usize,
    settle: Duration,
) -> anyhow::Result<ConnectionsReport> {
    let sources: Vec<Ipv4Addr> = (1..=16).map(|n| Ipv4Addr::new(127, 0, 0, n)).collect();
    tokio::time::sleep(settle / 2).await;
    let rss_before = server.rss_bytes();
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let links: Vec<Link> = futures::stream::iter(members.iter().enumerate())
        .map(|(n, member)| Link::connect(member, transport, Some(sources[n % sources.len()])))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let connect_seconds = started.elapsed().as_secs_f64();
    let connect_cpu = server.cpu_seconds() - cpu_before;
    // Let allocations settle (first writes, buffers) before reading RSS.
    tokio::time::sleep(settle).await;
    let rss_after = server.rss_bytes();

    // One message into the (single) room: every connection must get it.
    let mut halves: Vec<_> = links.into_iter().map(Link::split).collect();
    let room = members[0].room;
    let first = &mut halves[0].0;
    first.feed(room, "hello all".into(), "c1".into()).await?;
    first.flush().await?;
    let received = futures::stream::iter(halves)
        .map(|(mut sink, mut stream)| async move {
            tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match stream.next(false).await {
                        Some(Incoming::Message(_)) => return true,
                        Some(Incoming::Ping) => {
                            if sink.pong().await.is_err() {
                                return false;
                            }
                        }
                        Some(_) => continue,
                        None => return false,
                    }
                }
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
        server_cpu_us_per_connection: connect_cpu * 1e6 / connections as f64,
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        rss_per_connection_bytes: rss_after.saturating_sub(rss_before) as f64 / connections as f64,
        received,
        lost: connections - received,
    })
}
