//! A per-client limit on the routes anyone can call without a token: `/callback` and
//! `/authorize` store something for every request (an event, a pending authorization), and
//! `/api-key/{api_key}` is where a key would be guessed. Past the limit: 429 with `Retry-After`.
//!
//! The client is the socket's peer address, or, when that peer is one of `TRUSTED_PROXIES`, the
//! address its `X-Forwarded-For` names (the right-most one that is not itself a trusted proxy:
//! entries to its left were written by the client and prove nothing). IPv6 clients are counted
//! by their /64, the block one subscriber gets, so that one host cannot take a fresh bucket
//! for each of its addresses.

use super::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

/// The limit and whom to believe about the client's address.
pub struct RateLimits {
    /// None: unlimited (`PUBLIC_RATE_LIMIT=0`).
    limiter: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("limited", &self.limiter.is_some())
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl RateLimits {
    /// `per_minute` requests a minute on average per client, `burst` at once; 0 per minute turns
    /// the limit off.
    pub fn new(per_minute: u32, burst: u32, trusted_proxies: Vec<IpNet>) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute).allow_burst(burst))
        });
        Self {
            limiter,
            trusted_proxies,
        }
    }

    /// Counts one request from `client`; `Err` holds how long it should wait.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&bucket(client))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets clients whose bucket is full again: the limiter keeps one entry per client
    /// address, so without this a stream of new addresses would grow it without end.
    pub fn forget_idle_clients(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The client's address, as the module documentation says.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_ip(peer, headers, &self.trusted_proxies)
    }
}

/// See the module documentation. Pure.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    // Every X-Forwarded-For header, in order, as one list; read from the right.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // Garbage in the chain: the last address vouched for is the best there is.
            Err(_) => return client,
        }
    }
    client
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Extracting it counts the request against its client's limit (429 past it).
pub struct PublicCaller;

impl FromRequestParts<AppState> for PublicCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Set by `server::serve` for every connection; absent only when a test drives the
        // router without a socket, where there is no client to limit.
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(PublicCaller);
        };
        let client = state.rate_limits.client_ip(peer.ip(), &parts.headers);
        state.rate_limits.check(client).map_err(|wait| {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::too_many_requests(
                "rate_limited",
                format!(
                    "Too many requests from this address; try again in {seconds} seconds. \
                     (Behind a reverse proxy, set TRUSTED_PROXIES so that clients are told apart.)"
                ),
                seconds.max(1),
            )
        })?;
        Ok(PublicCaller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let headers = forwarded(&["203.0.113.9"]);
        // An untrusted peer cannot name another client.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &headers, &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("198.51.100.7"), &headers, &[]),
            ip("198.51.100.7")
        );
        // A trusted one can.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers, &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(ip("::1"), &headers, &proxies), ip("203.0.113.9"));
        // The right-most untrusted hop: what the client wrote itself on the left is ignored.
        let chain = forwarded(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &chain, &proxies),
            ip("203.0.113.9")
        );
        // Only proxies in the chain, or garbage: the last address vouched for.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forwarded(&["10.0.0.2"]), &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forwarded(&["nonsense"]), &proxies),
            ip("10.1.2.3")
        );
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &proxies),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        assert_eq!(
            bucket(ip("2001:db8:1:2:aaaa::1")),
            bucket(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(bucket(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn the_burst_passes_then_the_client_waits() {
        let limits = RateLimits::new(60, 3, Vec::new());
        let client = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(limits.check(client), Ok(()));
        }
        let wait = limits.check(client).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another client has its own bucket.
        assert_eq!(limits.check(ip("192.0.2.2")), Ok(()));
        // Off.
        let off = RateLimits::new(0, 0, Vec::new());
        assert!((0..1000).all(|_| off.check(client).is_ok()));
    }
}
