//! A bounded decision cache. Cedar is deterministic for a fixed policy set,
//! and the key holds every fact that reaches Cedar, so a hit is exactly the
//! decision a fresh evaluation would give.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::facts::Facts;
use crate::model::Decision;

/// Two generations: lookups promote from the old one; when the current one is
/// full it becomes the old one (the previous old one is dropped). Memory stays
/// under `2 × capacity` entries and recently used entries survive.
pub(crate) struct DecisionCache {
    capacity: usize,
    inner: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<Facts, Decision>,
    old: HashMap<Facts, Decision>,
}

impl DecisionCache {
    pub fn new(capacity: usize) -> Self {
        DecisionCache {
            capacity,
            inner: Mutex::new(Generations::default()),
        }
    }

    pub fn get(&self, key: &Facts) -> Option<Decision> {
        if self.capacity == 0 {
            return None;
        }
        // A poisoned lock only means another thread panicked mid-insert; the
        // maps stay valid, but start afresh to be safe.
        let mut g = self.inner.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            g.current.clear();
            g.old.clear();
            g
        });
        if let Some(d) = g.current.get(key) {
            return Some(d.clone());
        }
        let (key, d) = g.old.remove_entry(key)?;
        let out = d.clone();
        Self::insert_locked(&mut g, self.capacity, key, d);
        Some(out)
    }

    pub fn insert(&self, key: Facts, decision: Decision) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut g) = self.inner.lock() {
            Self::insert_locked(&mut g, self.capacity, key, decision);
        }
    }

    fn insert_locked(g: &mut Generations, capacity: usize, key: Facts, decision: Decision) {
        if g.current.len() >= capacity {
            g.old = std::mem::take(&mut g.current);
        }
        g.current.insert(key, decision);
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|g| g.current.len() + g.old.len())
            .unwrap_or(0)
    }

    pub fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.current.clear();
            g.old.clear();
        }
    }
}
