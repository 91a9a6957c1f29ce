//! API keys: `srk_` + 32 random bytes (base64url). Only their SHA-256 is stored; a key is looked up by
//! that hash and cached in memory after first use, like a session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use strongroom_store::ApiKeyRow;
use zeroize::Zeroizing;

use crate::auth::session::TOUCH_EVERY_MS;
use crate::cache::Cache;
use crate::error::{ServiceError, ServiceResult};

/// Recognisable by secret scanners, and distinct from session tokens (`sr_`).
pub const API_KEY_PREFIX: &str = "srk_";
/// Prefix + base64url of 32 bytes.
pub const API_KEY_LEN: usize = 4 + 43;
const MAX_CACHED: usize = 100_000;

/// A new key, zeroized when dropped.
pub fn generate() -> ServiceResult<Zeroizing<String>> {
    let bytes = Zeroizing::new(
        strongroom_crypto::random_bytes::<32>()
            .map_err(|_| ServiceError::internal("key generation"))?,
    );
    let mut key = Zeroizing::new(String::with_capacity(API_KEY_LEN));
    key.push_str(API_KEY_PREFIX);
    URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut key);
    Ok(key)
}

/// Cheap shape check, to refuse garbage before a database lookup.
pub fn well_formed(presented: &str) -> bool {
    presented.len() == API_KEY_LEN
        && presented.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[derive(Debug)]
pub struct CachedKey {
    pub id: String,
    pub user_id: String,
    /// Who made the key: it goes when they leave or their roles change.
    pub created_by: String,
    pub expires_at: i64,
    persisted_used: AtomicI64,
    revoked: AtomicBool,
}

impl CachedKey {
    pub fn from_row(row: &ApiKeyRow) -> Self {
        Self {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            created_by: row.created_by.clone(),
            expires_at: row.expires_at,
            persisted_used: AtomicI64::new(row.last_used_at.unwrap_or(0)),
            revoked: AtomicBool::new(row.revoked_at.is_some()),
        }
    }
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }
    fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
    }
    /// Marks the key used at `now`; true when the store's `last_used_at` should be refreshed.
    pub fn touch(&self, now: i64) -> bool {
        let persisted = self.persisted_used.load(Ordering::Relaxed);
        now.saturating_sub(persisted) >= TOUCH_EVERY_MS
            && self
                .persisted_used
                .compare_exchange(persisted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Keys by hash. Every revocation bumps the cache's generation, so a lookup that raced with it is
/// not cached.
pub struct ApiKeyCache {
    by_hash: Cache<[u8; 32], Arc<CachedKey>>,
}

impl ApiKeyCache {
    pub fn new(max_age: Option<std::time::Duration>) -> Self {
        Self {
            by_hash: Cache::new(MAX_CACHED, max_age),
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<Arc<CachedKey>> {
        self.by_hash.get(hash)
    }
    pub fn generation(&self) -> u64 {
        self.by_hash.generation()
    }
    pub fn insert_loaded(&self, hash: [u8; 32], key: Arc<CachedKey>, generation: u64) {
        self.by_hash.insert_loaded(hash, key, generation);
    }
    /// Revokes the cached key `id` (the store is updated by the caller).
    pub fn revoke_id(&self, id: &str) {
        self.revoke_where(|k| k.id == id);
    }
    /// Revokes every cached key `user_id` holds or made.
    pub fn revoke_user(&self, user_id: &str) {
        self.revoke_where(|k| k.user_id == user_id || k.created_by == user_id);
    }
    fn revoke_where(&self, stale: impl Fn(&CachedKey) -> bool) {
        self.by_hash.invalidate_where(|k| {
            let hit = stale(k);
            if hit {
                k.revoke();
            }
            hit
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_well_formed_and_distinct() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(*a, *b);
        assert!(!well_formed("sr_abc"));
        assert!(!well_formed(&a.replace("srk_", "srx_")));
    }
}
