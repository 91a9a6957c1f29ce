//! In-memory caches of rows the store owns, safe against the load/invalidate race: a value loaded
//! before an invalidation is never cached after it (each invalidation bumps a generation, and a load
//! may only insert under the generation it started with).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

pub(crate) struct Cache<K, V> {
    inner: RwLock<Inner<K, V>>,
    capacity: usize,
}

struct Inner<K, V> {
    map: HashMap<K, V>,
    generation: u64,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: RwLock::new(Inner {
                map: HashMap::new(),
                generation: 0,
            }),
            capacity,
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.inner.read().ok()?.map.get(key).cloned()
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
            inner.map.insert(key, value);
        }
    }

    /// Caches a value the caller just wrote (it is the newest there is).
    pub fn insert_fresh(&self, key: K, value: V) {
        if let Ok(mut inner) = self.inner.write() {
            if inner.map.len() >= self.capacity {
                inner.map.clear();
            }
            inner.map.insert(key, value);
        }
    }

    /// Forgets `key` and every load in flight.
    pub fn invalidate(&self, key: &K) -> Option<V> {
        let mut inner = self.inner.write().ok()?;
        inner.generation = inner.generation.wrapping_add(1);
        inner.map.remove(key)
    }

    /// Forgets every entry for which `stale` holds, and every load in flight.
    pub fn invalidate_where(&self, mut stale: impl FnMut(&V) -> bool) {
        if let Ok(mut inner) = self.inner.write() {
            inner.generation = inner.generation.wrapping_add(1);
            inner.map.retain(|_, v| !stale(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_older_than_an_invalidation_is_not_cached() {
        let cache: Cache<&str, u32> = Cache::new(10);
        let generation = cache.generation();
        cache.invalidate(&"user");
        cache.insert_loaded("user", 1, generation);
        assert_eq!(cache.get(&"user"), None);
        let generation = cache.generation();
        cache.insert_loaded("user", 2, generation);
        assert_eq!(cache.get(&"user"), Some(2));
    }
}
