//! Refusals of known credentials are recorded once a window per credential: a revoked token
//! replayed in a loop is answered every time, but grows the append-only log once a minute, not
//! once a request.

use std::collections::HashMap;
use std::sync::Mutex;

const WINDOW_MS: i64 = 60_000;
/// Bounded memory: past this, entries older than the window are dropped (and if all are recent,
/// all are, which only means recording again).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct RecentRefusals {
    last_recorded: Mutex<HashMap<String, i64>>,
}

impl RecentRefusals {
    /// Whether a refusal of `credential` at `now_ms` is to be recorded: the first in its window.
    /// A poisoned table answers yes: recording too often is the safe side.
    pub fn first_in_window(&self, credential: &str, now_ms: i64) -> bool {
        let Ok(mut seen) = self.last_recorded.lock() else {
            return true;
        };
        if let Some(at) = seen.get(credential)
            && now_ms.saturating_sub(*at) < WINDOW_MS
        {
            return false;
        }
        if seen.len() >= MAX_ENTRIES {
            seen.retain(|_, at| now_ms.saturating_sub(*at) < WINDOW_MS);
            if seen.len() >= MAX_ENTRIES {
                seen.clear();
            }
        }
        seen.insert(credential.to_owned(), now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_a_window_per_credential() {
        let r = RecentRefusals::default();
        assert!(r.first_in_window("session:a", 0));
        assert!(!r.first_in_window("session:a", WINDOW_MS - 1));
        assert!(r.first_in_window("session:b", 1));
        assert!(r.first_in_window("session:a", WINDOW_MS));
    }
}
