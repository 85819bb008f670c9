//! A small network for the cluster scenario: each node in a network
//! namespace of its own, joined to the host by a veth pair on one bridge,
//! and relays on the bridge that carry the nodes' traffic to the services
//! they share (broker, database) with a delay each way. The clients' links
//! stay undelayed, so the delay lands only on the round trips a real cluster
//! pays between machines. Needs root (`ip netns`); everything is removed
//! when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Names start with this; a run first removes what a killed run left behind.
const PREFIX: &str = "pvb";
const SUBNET: [u8; 3] = [10, 77, 0];

pub struct Lan {
    /// The host's address on the bridge: where shared services listen.
    pub host: Ipv4Addr,
    namespaces: Vec<String>,
}

impl Lan {
    /// The bridge and `namespaces` namespaces on it; delays come from the
    /// [`relay`]s the caller puts on `host`.
    pub fn create(namespaces: usize) -> anyhow::Result<Self> {
        remove_leftovers();
        let bridge = format!("{PREFIX}-br");
        let host = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 1);
        run(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        let mut lan = Self {
            host,
            namespaces: Vec::new(),
        };
        run(&["ip", "addr", "add", &format!("{host}/24"), "dev", &bridge])?;
        run(&["ip", "link", "set", &bridge, "up"])?;
        for n in 0..namespaces {
            let name = format!("{PREFIX}-n{n}");
            let host_end = format!("{PREFIX}-h{n}");
            run(&["ip", "netns", "add", &name])?;
            lan.namespaces.push(name.clone());
            run(&[
                "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns",
                &name,
            ])?;
            run(&["ip", "link", "set", &host_end, "master", &bridge, "up"])?;
            let address = format!("{}/24", lan.address(n));
            run(&["ip", "-n", &name, "addr", "add", &address, "dev", "eth0"])?;
            run(&["ip", "-n", &name, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }

    /// Node `n`'s address.
    pub fn address(&self, n: usize) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 10 + n as u8)
    }

    /// The command words that run a program in namespace `n`.
    pub fn exec_in(&self, n: usize) -> Vec<String> {
        ["ip", "netns", "exec", &self.namespaces[n]]
            .map(String::from)
            .to_vec()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        remove_leftovers();
    }
}

fn remove_leftovers() {
    let listed = Command::new("ip").args(["netns", "list"]).output();
    if let Ok(listed) = listed {
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&format!("{PREFIX}-n")) {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
    }
    // A namespace goes away asynchronously, and its veth pair with it:
    // the host's ends are deleted here, so a new run can take their names.
    let links = Command::new("ip").args(["-brief", "link"]).output();
    if let Ok(links) = links {
        for line in String::from_utf8_lossy(&links.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            let name = name.split('@').next().unwrap_or_default();
            if name.starts_with(&format!("{PREFIX}-")) {
                let _ = run(&["ip", "link", "del", name]);
            }
        }
    }
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(args[0]).args(&args[1..]).output()?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// Relays TCP connections from `listen` to `target`, holding every chunk
/// `delay` before passing it on, in both directions (zero: as it comes).
/// How namespaced nodes reach services that listen on loopback, and where
/// their links get their delay: this kernel has no `netem`. One thread of
/// its own carries every relay, so the load generator's thread does not.
/// tokio's timer counts whole milliseconds: a chunk waits `delay` rounded up
/// to the next millisecond tick. Returns the port it listens on.
pub fn relay(listen: Ipv4Addr, target: SocketAddr, delay: Duration) -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((listen, 0))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    std::thread::Builder::new()
        .name("bench-relay".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the relay");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                while let Ok((inbound, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let Ok(outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::spawn(delay_line(in_read, out_write, delay));
                        delay_line(out_read, in_write, delay).await;
                    });
                }
            });
        })?;
    Ok(port)
}

/// Chunks wait in order; a full line stops reading (the sender's TCP
/// window then holds the rest), so a relay's memory stays bounded.
async fn delay_line(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (line, mut due) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(256);
    let reader = tokio::spawn(async move {
        loop {
            let mut chunk = vec![0; 64 * 1024];
            match from.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if line.send((Instant::now() + delay, chunk)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some((at, chunk)) = due.recv().await {
        tokio::time::sleep_until(at).await;
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes cross the relay intact and in order, each way held at least
    /// the delay (a lower bound: tokio never wakes a sleep early).
    #[tokio::test]
    async fn a_relay_passes_bytes_in_order_and_holds_them_each_way() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let mut buf = [0; 1024];
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => socket.write_all(&buf[..n]).await.unwrap(),
                }
            }
        });
        let delay = Duration::from_millis(30);
        let port = relay(Ipv4Addr::LOCALHOST, target, delay).unwrap();
        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        let sent: Vec<u8> = (0..200u8).collect();
        let started = Instant::now();
        client.write_all(&sent).await.unwrap();
        let mut echoed = vec![0; sent.len()];
        client.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, sent);
        assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());
    }
}
