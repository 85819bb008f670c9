use std::net::IpAddr;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue};
use palaver_server::client_addr::{client_ip, ProxyNet};

/// Socket peers: trusted or not, IPv4, IPv6, and IPv4 as a dual-stack
/// socket reports it.
const PEERS: [&str; 8] = [
    "10.1.2.3",
    "::ffff:10.0.0.5",
    "192.0.2.1",
    "2001:db8::7",
    "198.51.100.7",
    "::ffff:198.51.100.8",
    "2001:db9::1",
    "127.0.0.1",
];

/// Trusted-proxy settings: none, addresses and IPv4 networks, the same with
/// an IPv6 network, every IPv4 address.
const TRUSTED: [&[&str]; 4] = [
    &[],
    &["10.0.0.0/8", "192.0.2.1"],
    &["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"],
    &["0.0.0.0/0"],
];

/// A request's `X-Forwarded-For` headers, resolved to the client's address.
/// The first byte picks the socket peer and the trusted proxies; the rest,
/// split at newlines, is one header value each (values a header cannot hold
/// are dropped, as the HTTP parser would refuse them).
pub fn forwarded_for(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    static NETS: OnceLock<Vec<Vec<ProxyNet>>> = OnceLock::new();
    let nets = NETS.get_or_init(|| {
        TRUSTED
            .iter()
            .map(|set| set.iter().map(|net| net.parse().unwrap()).collect())
            .collect()
    });
    let peer: IpAddr = PEERS[usize::from(mode) % PEERS.len()].parse().unwrap();
    let trusted = &nets[usize::from(mode) / PEERS.len() % nets.len()];
    let mut headers = HeaderMap::new();
    for value in rest.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append("x-forwarded-for", value);
        }
    }

    let client = client_ip(peer, &headers, trusted);

    let peer = canonical(peer);
    if !trusted.iter().any(|net| net.contains(peer)) {
        assert_eq!(client, peer, "an untrusted peer's header was believed");
        return;
    }
    // Believed or not, the answer is an address someone actually named: the
    // peer, or a hop that only trusted proxies follow (never one an untrusted
    // party could have written after them).
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|hop| hop.trim().parse().ok().map(canonical))
        .collect();
    let trusted_from = |at: usize| {
        hops[at..]
            .iter()
            .all(|hop| hop.is_some_and(|ip| trusted.iter().any(|net| net.contains(ip))))
    };
    assert!(
        client == peer
            || (0..hops.len()).any(|at| hops[at] == Some(client) && trusted_from(at + 1)),
        "{client} is neither the peer {peer} nor a hop only trusted proxies follow in {hops:?}"
    );
}

/// IPv4-mapped IPv6 addresses as IPv4, as the server compares them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
