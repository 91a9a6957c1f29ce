//! How many connections a listener keeps open: in all, and from any one client. Every connection
//! holds a task, its buffers and TLS state; the idle deadline bounds how long each lives, these
//! how many there are, so that one client cannot take every place.
//!
//! A client is an IPv4 address or an IPv6 /64. Trusted reverse proxies carry many clients each and
//! are held to the total only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client_address::TrustedProxies;

const WARN_EVERY: Duration = Duration::from_secs(60);

/// Connections open per client (see [`client_key`]); a client with none has no entry.
type OpenByClient = Arc<Mutex<HashMap<[u8; 9], usize>>>;

#[derive(Debug)]
pub struct ConnectionLimits {
    total: Arc<Semaphore>,
    per_client: usize,
    exempt: TrustedProxies,
    open_by_client: OpenByClient,
    last_warned: Mutex<Option<Instant>>,
}

impl ConnectionLimits {
    /// `per_client` 0 leaves one client bounded by the total only.
    pub fn new(total: usize, per_client: usize, exempt: TrustedProxies) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total.clamp(1, Semaphore::MAX_PERMITS))),
            per_client,
            exempt,
            open_by_client: Arc::default(),
            last_warned: Mutex::new(None),
        }
    }

    /// A place for a connection from `peer`, held until the admission is dropped; `None` when
    /// the listener, or that client, has none left (counted and warned of).
    pub fn admit(&self, peer: IpAddr) -> Option<Admission> {
        let Ok(permit) = Arc::clone(&self.total).try_acquire_owned() else {
            self.refused("connection limit reached: new connections are closed until some end");
            return None;
        };
        let peer = peer.to_canonical();
        if self.per_client == 0 || self.exempt.trusts(peer) {
            return Some(Admission {
                _permit: permit,
                client: None,
            });
        }
        let client = client_key(peer);
        {
            let mut open = lock(&self.open_by_client);
            let count = open.entry(client).or_default();
            if *count >= self.per_client {
                drop(open);
                self.refused(
                    "a client reached its connection limit: its new connections are closed \
                     until some end",
                );
                return None;
            }
            *count += 1;
        }
        Some(Admission {
            _permit: permit,
            client: Some((Arc::clone(&self.open_by_client), client)),
        })
    }

    /// Counts a refusal, and warns of refusals at most once a minute (never naming the client).
    fn refused(&self, warning: &str) {
        metrics::counter!("strongroom_connections_refused_total").increment(1);
        let mut last = lock(&self.last_warned);
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!("{warning}");
        }
    }
}

/// A connection's place under the limits, given back when it is dropped.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    client: Option<(OpenByClient, [u8; 9])>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some((open_by_client, client)) = &self.client {
            let mut open = lock(open_by_client);
            if let Some(count) = open.get_mut(client) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(client);
                }
            }
        }
    }
}

/// An IPv4 address, or an IPv6 address's /64, tagged apart.
fn client_key(address: IpAddr) -> [u8; 9] {
    let mut key = [0u8; 9];
    match address {
        IpAddr::V4(v4) => {
            key[0] = 4;
            key[1..5].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            key[0] = 6;
            key[1..].copy_from_slice(&v6.octets()[..8]);
        }
    }
    key
}

/// Counts only: each update is one step, so a lock poisoned elsewhere still holds whole counts.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_client_takes_at_most_its_share_and_gets_it_back() {
        let limits = ConnectionLimits::new(10, 2, TrustedProxies::default());
        let first = limits.admit(ip("192.0.2.1")).unwrap();
        let _second = limits.admit(ip("192.0.2.1")).unwrap();
        assert!(limits.admit(ip("192.0.2.1")).is_none());
        // Another client, and the same one as IPv4-mapped IPv6 counted with it.
        assert!(limits.admit(ip("::ffff:192.0.2.1")).is_none());
        let _other = limits.admit(ip("192.0.2.2")).unwrap();
        drop(first);
        assert!(limits.admit(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_trusted_proxies_only_meet_the_total() {
        let proxies = TrustedProxies::new(vec!["10.0.0.1".parse().unwrap()]);
        let limits = ConnectionLimits::new(4, 1, proxies);
        let _one = limits.admit(ip("2001:db8:1:2::1")).unwrap();
        assert!(limits.admit(ip("2001:db8:1:2::2")).is_none());
        let _proxied: Vec<Admission> = (0..3)
            .map(|_| limits.admit(ip("10.0.0.1")).unwrap())
            .collect();
        // The total is reached: even the proxy waits.
        assert!(limits.admit(ip("10.0.0.1")).is_none());
    }

    #[test]
    fn no_share_means_the_total_alone() {
        let limits = ConnectionLimits::new(3, 0, TrustedProxies::default());
        let _all: Vec<Admission> = (0..3)
            .map(|_| limits.admit(ip("192.0.2.9")).unwrap())
            .collect();
        assert!(limits.admit(ip("192.0.2.9")).is_none());
    }
}
