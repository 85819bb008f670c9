//! Which address a request comes from: the socket's, or, when the socket's
//! peer is a trusted proxy, the `X-Forwarded-For` hop just before the first
//! trusted proxy. Never the leftmost hop: the client writes that one itself.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// A trusted proxy: one address, or a network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(pub IpNet);

impl ProxyNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(ProxyNet)
            .map_err(|_| format!("{text:?} is neither an address nor a CIDR network"))
    }
}

impl<'de> serde::Deserialize<'de> for ProxyNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ProxyNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's IPv4 peers) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub fn is_trusted(ip: IpAddr, trusted: &[ProxyNet]) -> bool {
    trusted.iter().any(|net| net.contains(ip))
}

/// The client's address, for a request from socket peer `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ProxyNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // Every X-Forwarded-For header, in order, is one list.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>().map(canonical) {
            Ok(ip) if is_trusted(ip, trusted) => nearest = ip,
            Ok(ip) => return ip,
            // Not an address: written by someone untrusted, so the last
            // trusted hop is the best that is known.
            Err(_) => return nearest,
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(nets: &[&str]) -> Vec<ProxyNet> {
        nets.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_socket_address_is_the_client() {
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &forged, &[]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_hop_before_it_is_the_client_never_the_leftmost() {
        let proxies = trusted(&["10.0.0.0/8", "192.0.2.1"]);
        // The client wrote 1.1.1.1 itself; the proxy appended the real address.
        let forged = headers(&["1.1.1.1, 203.0.113.9"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forged, &proxies),
            ip("203.0.113.9")
        );
        // Two trusted proxies in a row, the list split over two headers.
        let chained = headers(&["1.1.1.1, 203.0.113.9", "192.0.2.1"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &chained, &proxies),
            ip("203.0.113.9")
        );
        // A peer that is not trusted is the client, whatever it claims.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &forged, &proxies),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn garbage_or_missing_hops_leave_the_nearest_trusted_address() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.5"), &headers(&[]), &proxies),
            ip("10.0.0.5")
        );
        let garbage = headers(&["not-an-ip, 10.0.0.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.5"), &garbage, &proxies),
            ip("10.0.0.7")
        );
        let mapped = headers(&["::ffff:203.0.113.9"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.5"), &mapped, &proxies),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn proxies_parse_as_addresses_or_networks() {
        assert!("10.0.0.0/8".parse::<ProxyNet>().is_ok());
        assert!("192.0.2.1"
            .parse::<ProxyNet>()
            .unwrap()
            .contains(ip("192.0.2.1")));
        assert!("2001:db8::/32".parse::<ProxyNet>().is_ok());
        assert!("proxy.example".parse::<ProxyNet>().is_err());
    }
}
