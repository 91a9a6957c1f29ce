//! In-memory caches of rows the store owns, safe against the load/invalidate race: a value loaded
//! before an invalidation is never cached after it (each invalidation bumps a generation, and a load
//! may only insert under the generation it started with).
//!
//! When several instances share the store, another instance's change cannot bump our generation,
//! so entries then also expire after a maximum age: that bounds how long a revocation elsewhere
//! can go unseen here.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub(crate) struct Cache<K, V> {
    inner: RwLock<Inner<K, V>>,
    capacity: usize,
    max_age: Option<Duration>,
}

struct Inner<K, V> {
    map: HashMap<K, (V, Instant)>,
    generation: u64,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// `max_age`: how long an entry may be served (`None`: until invalidated).
    pub fn new(capacity: usize, max_age: Option<Duration>) -> Self {
        Self {
            inner: RwLock::new(Inner {
                map: HashMap::new(),
                generation: 0,
            }),
            capacity,
            max_age,
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.read().ok()?;
        let (value, loaded) = inner.map.get(key)?;
        match self.max_age {
            Some(max) if loaded.elapsed() > max => None,
            _ => Some(value.clone()),
        }
    }

    /// Read before loading from the store; pass to [`Self::insert_loaded`].
    pub fn generation(&self) -> u64 {
        self.inner.read().map(|i| i.generation).unwrap_or(u64::MAX)
    }

    /// Caches a value loaded under `generation`, unless something was invalidated since.
    pub fn insert_loaded(&self, key: K, value: V, generation: u64) {
        if let Ok(mut inner) = self.inner.write()
            && inner.generation == generation
        {
            if inner.map.len() >= self.capacity {
                inner.map.clear();
            }
            inner.map.insert(key, (value, Instant::now()));
        }
    }

    /// Caches a value the caller just wrote (it is the newest there is).
    pub fn insert_fresh(&self, key: K, value: V) {
        if let Ok(mut inner) = self.inner.write() {
            if inner.map.len() >= self.capacity {
                inner.map.clear();
            }
            inner.map.insert(key, (value, Instant::now()));
        }
    }

    /// Forgets `key` and every load in flight.
    pub fn invalidate(&self, key: &K) -> Option<V> {
        let mut inner = self.inner.write().ok()?;
        inner.generation = inner.generation.wrapping_add(1);
        inner.map.remove(key).map(|(value, _)| value)
    }

    /// Forgets every entry for which `stale` holds, and every load in flight.
    pub fn invalidate_where(&self, mut stale: impl FnMut(&V) -> bool) {
        if let Ok(mut inner) = self.inner.write() {
            inner.generation = inner.generation.wrapping_add(1);
            inner.map.retain(|_, (v, _)| !stale(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_older_than_an_invalidation_is_not_cached() {
        let cache: Cache<&str, u32> = Cache::new(10, None);
        let generation = cache.generation();
        cache.invalidate(&"user");
        cache.insert_loaded("user", 1, generation);
        assert_eq!(cache.get(&"user"), None);
        let generation = cache.generation();
        cache.insert_loaded("user", 2, generation);
        assert_eq!(cache.get(&"user"), Some(2));
    }

    #[test]
    fn a_shared_store_entry_expires() {
        let cache: Cache<&str, u32> = Cache::new(10, Some(Duration::from_millis(20)));
        cache.insert_fresh("user", 1);
        assert_eq!(cache.get(&"user"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"user"), None);
    }
}
