//! Login throttling, keyed by username whether or not the account exists, so that an unknown user is
//! answered exactly like a known one. Growing delays after the third consecutive failure, then a lockout.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

const BACKOFF_FREE_FAILURES: u32 = 3;
const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// Entries idle longer than this are forgotten (bounded memory).
const FORGET_AFTER_MS: i64 = 24 * 60 * 60 * 1000;
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Copy, Debug, Default)]
struct Attempts {
    failures: u32,
    last_failure_ms: i64,
    locked_until_ms: i64,
}

/// A known account's attempts as the store keeps them (`users.failed_logins`, …).
#[derive(Clone, Copy, Debug, Default)]
pub struct StoredAttempts {
    pub failures: i64,
    pub last_failure_ms: Option<i64>,
    pub locked_until_ms: Option<i64>,
}

impl StoredAttempts {
    /// What `user`'s row holds: failures counted by other instances, or before a restart.
    pub fn of(user: &strongroom_store::UserRow) -> Self {
        Self {
            failures: user.failed_logins,
            last_failure_ms: user.last_failed_login_at,
            locked_until_ms: user.locked_until,
        }
    }
}

#[derive(Debug)]
pub struct LoginThrottle {
    threshold: u32,
    lockout_ms: i64,
    backoff_base_ms: u64,
    by_user: Mutex<HashMap<[u8; 32], Attempts>>,
}

/// Usernames are hashed so the table holds no identifiers.
fn key(username: &str) -> [u8; 32] {
    Sha256::digest(username.trim().to_lowercase().as_bytes()).into()
}

/// The key under which throttled attempts on `username` are recorded once a window
/// (`RecentRefusals`): hashed like the throttle's own, so that memory holds no identifiers.
pub fn refusal_key(username: &str) -> String {
    format!("login:{}", hex::encode(key(username)))
}

impl LoginThrottle {
    pub fn new(threshold: u32, lockout_secs: u64, backoff_base_ms: u64) -> Self {
        Self {
            threshold: threshold.max(1),
            lockout_ms: i64::try_from(lockout_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            backoff_base_ms,
            by_user: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds)` when an attempt now must be refused.
    pub fn retry_after(&self, username: &str, now_ms: i64) -> Option<u64> {
        let map = self.by_user.lock().ok()?;
        self.refusal(map.get(&key(username))?, now_ms)
    }

    fn refusal(&self, a: &Attempts, now_ms: i64) -> Option<u64> {
        if a.locked_until_ms > now_ms {
            return Some(secs_ceil(a.locked_until_ms - now_ms));
        }
        if a.failures >= BACKOFF_FREE_FAILURES && a.locked_until_ms == 0 {
            let ready = a
                .last_failure_ms
                .saturating_add(self.backoff_ms(a.failures));
            if ready > now_ms {
                return Some(secs_ceil(ready - now_ms));
            }
        }
        None
    }

    /// Records a failure; returns the lockout end when this failure locks the account.
    pub fn record_failure(&self, username: &str, now_ms: i64) -> Option<i64> {
        let mut map = self.by_user.lock().ok()?;
        self.count_failure(&mut map, username, now_ms)
    }

    fn count_failure(
        &self,
        map: &mut HashMap<[u8; 32], Attempts>,
        username: &str,
        now_ms: i64,
    ) -> Option<i64> {
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, a| now_ms - a.last_failure_ms < FORGET_AFTER_MS);
            // Still full under a flood of usernames: start over rather than grow or rescan on every
            // failure. Lockouts of real accounts are persisted and restored from the store.
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        let a = map.entry(key(username)).or_default();
        if a.locked_until_ms != 0 && a.locked_until_ms <= now_ms {
            *a = Attempts::default();
        }
        a.failures = a.failures.saturating_add(1);
        a.last_failure_ms = now_ms;
        if a.failures >= self.threshold {
            a.locked_until_ms = now_ms.saturating_add(self.lockout_ms);
            return Some(a.locked_until_ms);
        }
        None
    }

    /// Checks and counts an attempt in one step (as failed until [`Self::record_success`]), so that
    /// concurrent attempts cannot all pass the check before any is counted. `Err(seconds)` when the
    /// attempt must be refused; `Ok(Some(end))` when this attempt, if it fails, locks the account.
    pub fn begin_attempt(&self, username: &str, now_ms: i64) -> Result<Option<i64>, u64> {
        let Ok(mut map) = self.by_user.lock() else {
            return Err(1);
        };
        if let Some(a) = map.get(&key(username))
            && let Some(secs) = self.refusal(a, now_ms)
        {
            return Err(secs);
        }
        Ok(self.count_failure(&mut map, username, now_ms))
    }

    /// Takes in what the store holds of a known account's attempts, counted by every instance
    /// sharing it and kept across restarts: its failures since the last success or lockout, the
    /// latest of them, and a lockout. The larger count wins, so an instance's own failures, which
    /// the store holds too, are not counted twice.
    pub fn restore(&self, username: &str, stored: StoredAttempts, now_ms: i64) {
        let recent = stored
            .last_failure_ms
            .is_some_and(|at| now_ms.saturating_sub(at) < FORGET_AFTER_MS);
        let locked = stored.locked_until_ms.filter(|end| *end > now_ms);
        if !recent && locked.is_none() {
            return;
        }
        if let Ok(mut map) = self.by_user.lock() {
            let a = map.entry(key(username)).or_default();
            if let Some(end) = locked {
                a.locked_until_ms = a.locked_until_ms.max(end);
                a.failures = a.failures.max(self.threshold);
            }
            if recent && a.locked_until_ms == 0 {
                let failures = u32::try_from(stored.failures).unwrap_or(u32::MAX);
                a.failures = a.failures.max(failures);
                a.last_failure_ms = a.last_failure_ms.max(stored.last_failure_ms.unwrap_or(0));
            }
        }
    }

    pub fn record_success(&self, username: &str) {
        if let Ok(mut map) = self.by_user.lock() {
            map.remove(&key(username));
        }
    }

    fn backoff_ms(&self, failures: u32) -> i64 {
        let exp = failures.saturating_sub(BACKOFF_FREE_FAILURES).min(20);
        let ms = self
            .backoff_base_ms
            .saturating_mul(1u64 << exp)
            .min(MAX_BACKOFF_MS);
        i64::try_from(ms).unwrap_or(i64::MAX)
    }
}

fn secs_ceil(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_then_lockout() {
        let t = LoginThrottle::new(10, 1800, 1000);
        let mut now = 1_000_000;
        for _ in 0..2 {
            t.record_failure("Bob", now);
            assert_eq!(t.retry_after("bob", now), None);
        }
        t.record_failure("bob", now);
        assert_eq!(t.retry_after("bob", now), Some(1));
        now += 1000;
        assert_eq!(t.retry_after("bob", now), None);
        for _ in 3..9 {
            t.record_failure("bob", now);
            now += 600_000;
        }
        assert!(t.record_failure("bob", now).is_some());
        assert_eq!(t.retry_after("bob", now), Some(1800));
        assert_eq!(t.retry_after("alice", now), None);
        t.record_success("bob");
        assert_eq!(t.retry_after("bob", now), None);
    }

    #[test]
    fn simultaneous_attempts_are_counted_before_they_are_checked() {
        let t = LoginThrottle::new(10, 1800, 1000);
        let now = 5_000_000;
        // Three attempts in the same instant pass, the fourth is already refused: every attempt
        // counts as a failure until a success clears it.
        for _ in 0..3 {
            assert!(t.begin_attempt("eve", now).is_ok());
        }
        assert_eq!(t.begin_attempt("eve", now), Err(1));
        t.record_success("eve");
        assert!(t.begin_attempt("eve", now).is_ok());
    }

    #[test]
    fn attempts_counted_elsewhere_are_taken_in_once() {
        let t = LoginThrottle::new(10, 1800, 1000);
        let now = 9_000_000;
        // Another instance failed six times, a second ago; this one has seen two of them.
        t.record_failure("carol", now - 2_000);
        t.record_failure("carol", now - 2_000);
        let stored = StoredAttempts {
            failures: 6,
            last_failure_ms: Some(now - 1_000),
            locked_until_ms: None,
        };
        t.restore("carol", stored, now);
        t.restore("carol", stored, now);
        // Six failures: the backoff is already running (not two, which would pass).
        assert!(t.retry_after("carol", now).is_some());
        // Four more anywhere lock the account, not ten more here.
        let mut later = now;
        for _ in 0..3 {
            later += 600_000; // past the longest backoff
            assert_eq!(t.begin_attempt("carol", later), Ok(None));
        }
        assert!(matches!(
            t.begin_attempt("carol", later + 600_000),
            Ok(Some(_))
        ));

        // Failures a day old are forgotten; a stored lockout is honoured until it ends.
        let old = StoredAttempts {
            failures: 9,
            last_failure_ms: Some(now - 25 * 3_600_000),
            locked_until_ms: None,
        };
        t.restore("dave", old, now);
        assert_eq!(t.retry_after("dave", now), None);
        let locked = StoredAttempts {
            failures: 0,
            last_failure_ms: Some(now),
            locked_until_ms: Some(now + 60_000),
        };
        t.restore("erin", locked, now);
        assert_eq!(t.retry_after("erin", now), Some(60));
    }
}
