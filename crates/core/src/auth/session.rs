//! Sessions: opaque tokens whose SHA-256 is the only thing stored, cached in memory after first use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::cache::Cache;

use strongroom_store::SessionRow;

/// How stale the stored `last_seen_at` may get before a request writes it back.
pub const TOUCH_EVERY_MS: i64 = 60_000;
const MAX_CACHED: usize = 200_000;

#[derive(Debug)]
pub struct CachedSession {
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    last_seen: AtomicI64,
    persisted_seen: AtomicI64,
    revoked: AtomicBool,
    enrolment_only: AtomicBool,
}

impl CachedSession {
    pub fn from_row(row: &SessionRow) -> Self {
        Self {
            user_id: row.user_id.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_seen: AtomicI64::new(row.last_seen_at),
            persisted_seen: AtomicI64::new(row.last_seen_at),
            revoked: AtomicBool::new(row.revoked_at.is_some()),
            enrolment_only: AtomicBool::new(row.enrolment_only),
        }
    }
    pub fn last_seen(&self) -> i64 {
        self.last_seen.load(Ordering::Relaxed)
    }
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }
    pub fn is_enrolment_only(&self) -> bool {
        self.enrolment_only.load(Ordering::Relaxed)
    }
    /// The user confirmed a second factor in this session: it becomes a full one.
    pub fn complete_enrolment(&self) {
        self.enrolment_only.store(false, Ordering::Relaxed);
    }
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
    }
    /// Marks the session used at `now`; true when the store's copy is more than `every_ms` old
    /// and should be refreshed.
    pub fn touch(&self, now: i64, every_ms: i64) -> bool {
        self.last_seen.fetch_max(now, Ordering::Relaxed);
        let persisted = self.persisted_seen.load(Ordering::Relaxed);
        now.saturating_sub(persisted) >= every_ms
            && self
                .persisted_seen
                .compare_exchange(persisted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Sessions by token hash.
pub struct SessionCache {
    by_hash: Cache<[u8; 32], Arc<CachedSession>>,
}

impl SessionCache {
    pub fn new(max_age: Option<std::time::Duration>) -> Self {
        Self {
            by_hash: Cache::new(MAX_CACHED, max_age),
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<Arc<CachedSession>> {
        self.by_hash.get(hash)
    }

    pub fn generation(&self) -> u64 {
        self.by_hash.generation()
    }

    /// A session read from the store under `generation`.
    pub fn insert_loaded(&self, hash: [u8; 32], session: Arc<CachedSession>, generation: u64) {
        self.by_hash.insert_loaded(hash, session, generation);
    }

    /// A session just created.
    pub fn insert_fresh(&self, hash: [u8; 32], session: Arc<CachedSession>) {
        self.by_hash.insert_fresh(hash, session);
    }

    pub fn remove(&self, hash: &[u8; 32]) {
        if let Some(s) = self.by_hash.invalidate(hash) {
            s.revoke();
        }
    }

    /// Revokes every cached session of `user_id` (the store is updated by the caller).
    pub fn revoke_user(&self, user_id: &str) {
        self.by_hash.invalidate_where(|s| {
            let stale = s.user_id == user_id;
            if stale {
                s.revoke();
            }
            stale
        });
    }

    /// Revokes every cached session of `user_id` but the one of `keep`.
    pub fn revoke_user_except(&self, user_id: &str, keep: &[u8; 32]) {
        let kept = self.by_hash.get(keep);
        self.by_hash.invalidate_where(|s| {
            let stale = s.user_id == user_id && !kept.as_ref().is_some_and(|k| Arc::ptr_eq(k, s));
            if stale {
                s.revoke();
            }
            stale
        });
    }
}
