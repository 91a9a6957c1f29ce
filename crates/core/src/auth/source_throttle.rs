//! Login throttling by the client's address. The per-username throttle cannot see a password spray
//! (a few passwords tried over many usernames), nor a flood of made-up usernames that keeps the
//! password checks busy for everyone. A source's failed logins are counted in a fixed window; past
//! the limit its logins are refused until the window ends, before any password is checked.
//!
//! IPv6 clients count by their /64, the block one subscriber is usually given. Addresses are kept
//! only as hashes keyed with a secret of this process, so memory holds no address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Bounded memory: past this, windows that ended are dropped, then those under the limit (and
/// if every one refuses, all are).
const MAX_SOURCES: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Window {
    opened_ms: i64,
    failures: u32,
}

pub struct SourceThrottle {
    max_failures: u32,
    window_ms: i64,
    key: Zeroizing<[u8; 32]>,
    by_source: Mutex<HashMap<[u8; 32], Window>>,
}

impl std::fmt::Debug for SourceThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceThrottle")
            .field("max_failures", &self.max_failures)
            .field("window_ms", &self.window_ms)
            .finish_non_exhaustive()
    }
}

impl SourceThrottle {
    /// `max_failures` 0 turns the count off (every client behind one address the server cannot
    /// see past, where one source's failures would refuse everyone's logins).
    pub fn new(max_failures: u32, window_secs: u64, key: [u8; 32]) -> Self {
        Self {
            max_failures,
            window_ms: i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            key: Zeroizing::new(key),
            by_source: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds)` when an attempt from `source` now must be refused.
    pub fn retry_after(&self, source: IpAddr, now_ms: i64) -> Option<u64> {
        if self.max_failures == 0 {
            return None;
        }
        self.refusal(self.windows().get(&self.key_of(source))?, now_ms)
    }

    /// Checks and counts an attempt from `source` in one step, as failed until
    /// [`Self::take_back`], so that parallel attempts cannot all pass before any is counted.
    /// `Err(seconds)` when the attempt must be refused.
    pub fn begin_attempt(&self, source: IpAddr, now_ms: i64) -> Result<(), u64> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let mut map = self.windows();
        let key = self.key_of(source);
        if let Some(secs) = map
            .get(&key)
            .and_then(|window| self.refusal(window, now_ms))
        {
            return Err(secs);
        }
        if map.len() >= MAX_SOURCES && !map.contains_key(&key) {
            // Ended windows go first, then those under the limit: a flood of new sources must
            // not free the ones it refuses. Still full (all refused): start over.
            map.retain(|_, window| self.is_open(window, now_ms));
            if map.len() >= MAX_SOURCES {
                map.retain(|_, window| window.failures >= self.max_failures);
            }
            if map.len() >= MAX_SOURCES {
                map.clear();
            }
        }
        let window = map.entry(key).or_insert(Window {
            opened_ms: now_ms,
            failures: 0,
        });
        if !self.is_open(window, now_ms) {
            *window = Window {
                opened_ms: now_ms,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        Ok(())
    }

    /// Takes back the failure [`Self::begin_attempt`] counted, for an attempt that succeeded, or
    /// that was never judged (refused by the username's throttle, or the server could not check
    /// it). A success does not clear the source's other failures: one valid account must not
    /// reset a spray.
    pub fn take_back(&self, source: IpAddr) {
        if let Some(window) = self.windows().get_mut(&self.key_of(source)) {
            window.failures = window.failures.saturating_sub(1);
        }
    }

    /// The table, also after a panic elsewhere left its lock poisoned: it holds counts only, each
    /// update a single step, so it is never half-written.
    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Window>> {
        self.by_source
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key under which refusals of `source` are recorded once a window (`RecentRefusals`).
    pub fn refusal_key(&self, source: IpAddr) -> String {
        format!("source:{}", hex::encode(self.key_of(source)))
    }

    /// Seconds until `window` ends, if it refuses attempts now.
    fn refusal(&self, window: &Window, now_ms: i64) -> Option<u64> {
        (self.is_open(window, now_ms) && window.failures >= self.max_failures).then(|| {
            let ends = window.opened_ms.saturating_add(self.window_ms);
            secs_ceil(ends.saturating_sub(now_ms))
        })
    }

    fn is_open(&self, window: &Window, now_ms: i64) -> bool {
        now_ms.saturating_sub(window.opened_ms) < self.window_ms
    }

    fn key_of(&self, source: IpAddr) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.key.as_slice());
        match source.to_canonical() {
            IpAddr::V4(v4) => {
                hash.update([4]);
                hash.update(v4.octets());
            }
            IpAddr::V6(v6) => {
                hash.update([6]);
                hash.update(&v6.octets()[..8]);
            }
        }
        hash.finalize().into()
    }
}

fn secs_ceil(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_source_past_its_failures_is_refused_until_the_window_ends() {
        let throttle = SourceThrottle::new(3, 60, [7; 32]);
        let now = 1_000_000;
        for _ in 0..3 {
            assert_eq!(throttle.begin_attempt(ip("203.0.113.9"), now), Ok(()));
        }
        assert_eq!(
            throttle.begin_attempt(ip("203.0.113.9"), now + 1_000),
            Err(59)
        );
        assert_eq!(
            throttle.retry_after(ip("203.0.113.9"), now + 1_000),
            Some(59)
        );
        assert_eq!(throttle.retry_after(ip("203.0.113.10"), now + 1_000), None);
        // Another source, and the same one once the window has ended, are not refused.
        assert_eq!(throttle.begin_attempt(ip("203.0.113.10"), now), Ok(()));
        assert_eq!(
            throttle.begin_attempt(ip("203.0.113.9"), now + 60_000),
            Ok(())
        );
    }

    #[test]
    fn a_success_takes_back_only_its_own_attempt() {
        let throttle = SourceThrottle::new(2, 60, [7; 32]);
        let source = ip("198.51.100.4");
        let now = 5_000_000;
        assert_eq!(throttle.begin_attempt(source, now), Ok(()));
        throttle.take_back(source);
        assert_eq!(throttle.begin_attempt(source, now), Ok(()));
        assert_eq!(throttle.begin_attempt(source, now), Ok(()));
        throttle.take_back(source);
        // One failure and one attempt in flight: the limit of two is reached.
        assert_eq!(throttle.begin_attempt(source, now), Ok(()));
        assert!(throttle.begin_attempt(source, now).is_err());
    }

    #[test]
    fn zero_failures_turns_the_count_off() {
        let throttle = SourceThrottle::new(0, 60, [7; 32]);
        for _ in 0..100 {
            assert_eq!(throttle.begin_attempt(ip("192.0.2.5"), 1_000), Ok(()));
        }
        assert_eq!(throttle.retry_after(ip("192.0.2.5"), 1_000), None);
    }

    #[test]
    fn a_flood_of_new_sources_does_not_free_a_refused_one() {
        let throttle = SourceThrottle::new(2, 60, [7; 32]);
        let now = 7_000_000;
        let refused = ip("203.0.113.66");
        for _ in 0..2 {
            assert_eq!(throttle.begin_attempt(refused, now), Ok(()));
        }
        for n in 0..=u32::try_from(MAX_SOURCES).unwrap() {
            let _ = throttle.begin_attempt(IpAddr::from(n.to_be_bytes()), now);
        }
        assert!(throttle.retry_after(refused, now).is_some());
    }

    #[test]
    fn ipv6_counts_by_its_64_block_and_mapped_ipv4_as_ipv4() {
        let throttle = SourceThrottle::new(1, 60, [7; 32]);
        let now = 9_000_000;
        assert_eq!(throttle.begin_attempt(ip("2001:db8:1:2::1"), now), Ok(()));
        assert!(
            throttle
                .begin_attempt(ip("2001:db8:1:2::ffff"), now)
                .is_err()
        );
        assert_eq!(throttle.begin_attempt(ip("2001:db8:1:3::1"), now), Ok(()));
        assert_eq!(throttle.begin_attempt(ip("192.0.2.1"), now), Ok(()));
        assert!(throttle.begin_attempt(ip("::ffff:192.0.2.1"), now).is_err());
    }

    #[test]
    fn keys_hold_no_address_and_differ_by_process_key() {
        let one = SourceThrottle::new(1, 60, [1; 32]);
        let two = SourceThrottle::new(1, 60, [2; 32]);
        let source = ip("192.0.2.77");
        assert!(!one.refusal_key(source).contains("192.0.2.77"));
        assert_ne!(one.refusal_key(source), two.refusal_key(source));
        assert!(!format!("{one:?}").contains("key"));
    }
}
