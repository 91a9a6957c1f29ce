//! The client's address, which the login throttle counts failures by: the TCP peer, or, when the
//! peer is a reverse proxy the operator trusts, the address it forwarded in `X-Forwarded-For`.
//! Hops are read from the right, skipping trusted ones, so that a client cannot name itself by
//! sending the header: only what a trusted proxy appended is believed.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One trusted proxy: an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyRange(IpNet);

impl FromStr for ProxyRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(|net| Self(net.trunc()))
            .map_err(|_| format!("{text:?} is neither an IP address nor a network"))
    }
}

impl TryFrom<String> for ProxyRange {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ProxyRange> for String {
    fn from(range: ProxyRange) -> Self {
        range.to_string()
    }
}

impl fmt::Display for ProxyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<ProxyRange>);

impl TrustedProxies {
    pub fn new(ranges: Vec<ProxyRange>) -> Self {
        Self(ranges)
    }

    pub(crate) fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|range| range.0.contains(&address))
    }

    /// The client of a request that reached us from `peer`. A forwarded hop that does not parse
    /// ends the walk at the trusted address before it: the proxy answers for what it forwarded.
    /// Hops are split as bytes, so that what a client put to the left of its proxy's hop (any
    /// bytes at all) is never read.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(address) = parse_hop(hop) else {
                return client;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// A forwarded hop: an address, or one with a port (`192.0.2.1:443`, `[2001:db8::1]:443`).
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// The client's address, where the connection's peer is known (always, when served by
/// [`crate::serve`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self(None));
        };
        let client = match parts.extensions.get::<Arc<TrustedProxies>>() {
            Some(proxies) => proxies.client(peer.ip(), &parts.headers),
            None => peer.ip().to_canonical(),
        };
        Ok(Self(Some(client)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = proxies(&[]);
        let headers = forwarded(&["198.51.100.7"]);
        assert_eq!(none.client(ip("203.0.113.1"), &headers), ip("203.0.113.1"));
        let other = proxies(&["10.0.0.0/8"]);
        assert_eq!(other.client(ip("203.0.113.1"), &headers), ip("203.0.113.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.10"]);
        // The client claimed 1.2.3.4 itself; the outer proxy appended what it saw.
        let headers = forwarded(&["1.2.3.4, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(
            trusted.client(ip("192.0.2.10"), &headers),
            ip("198.51.100.7")
        );
        // With a port, and IPv6 in brackets.
        let headers = forwarded(&["[2001:db8::5]:4711"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &headers), ip("2001:db8::5"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // A hop that does not parse: the last trusted address answers for it.
        let headers = forwarded(&["not-an-address, 10.2.2.2"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &headers), ip("10.2.2.2"));
        // Bytes that are not text, sent by the client left of its proxy's hop, are never read.
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\x80\xff, 198.51.100.23").unwrap(),
        );
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &headers),
            ip("198.51.100.23")
        );
    }

    #[test]
    fn ranges_take_addresses_and_networks_and_refuse_the_rest() {
        assert_eq!(
            "10.0.0.5".parse::<ProxyRange>().unwrap().to_string(),
            "10.0.0.5/32"
        );
        assert_eq!(
            "10.1.2.3/8".parse::<ProxyRange>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<ProxyRange>().unwrap().to_string(), "::1/128");
        assert!("proxy.internal".parse::<ProxyRange>().is_err());
        // An IPv4-mapped peer is judged as IPv4.
        let trusted = proxies(&["127.0.0.1"]);
        let headers = forwarded(&["198.51.100.9"]);
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), &headers),
            ip("198.51.100.9")
        );
    }
}
