//! Tenant keyrings: unwrapped on first use under the root key, kept in memory (zeroized on drop).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use strongroom_crypto::{
    PlatformKey, RootKey, TenantKeyring, TenantKeys, unwrap_tenant_keys, wrap_tenant_keys,
};
use strongroom_store::{Mutation, Store, TenantKeyRow, TenantScope};

use crate::error::{ServiceError, ServiceResult};

/// Whether `root` opens what the store keeps under a root key: the first tenant key or, with no
/// tenant, the first sealed user secret. `None` when the store keeps nothing under one (then any
/// key will do). A wrong root key found here is refused at start, not met by every request.
pub async fn root_key_opens_store(
    root: &RootKey,
    store: &dyn Store,
) -> Result<Option<bool>, strongroom_store::StoreError> {
    if let Some(row) = store.all_tenant_keys().await?.first() {
        let opens = u32::try_from(row.version)
            .ok()
            .is_some_and(|v| unwrap_tenant_keys(root, &row.tenant_id, v, &row.wrapped).is_ok());
        return Ok(Some(opens));
    }
    if let Some(row) = store.all_totp().await?.first() {
        let opens = PlatformKey::derive(root).is_ok_and(|platform| {
            platform
                .open(&row.user_id, crate::auth::totp::SEAL_PURPOSE, &row.secret)
                .is_ok()
        });
        return Ok(Some(opens));
    }
    Ok(None)
}

/// What the start makes of its root key ([`adopt_root_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKeyAdoption {
    /// It opens what is sealed (or nothing is), and the database records it now.
    Adopted,
    /// It does not open the keys the database holds.
    DoesNotOpen,
    /// Nothing sealed shows it, and the database records another (another instance's, or one a
    /// rotation replaced).
    NotTheRecordedKey,
    /// A rotation committed while this check ran: the record moved under it.
    ChangedMeanwhile,
}

/// Checks `root` against the store at start and records its fingerprint, which the commits that
/// seal under the root key check from then on. The record is read before the check and written
/// by compare-and-set, so a rotation committed meanwhile is not written over; a key shown to open
/// what is sealed replaces an older record (a restored database).
pub async fn adopt_root_key(
    root: &RootKey,
    store: &dyn Store,
) -> Result<RootKeyAdoption, strongroom_store::StoreError> {
    let recorded = store.root_key_fingerprint().await?;
    let opens = root_key_opens_store(root, store).await?;
    if opens == Some(false) {
        return Ok(RootKeyAdoption::DoesNotOpen);
    }
    let ours = root.fingerprint();
    let replacing = match recorded.as_deref() {
        Some(fingerprint) if fingerprint == ours => None,
        Some(fingerprint) if opens == Some(true) => Some(fingerprint),
        Some(_) => return Ok(RootKeyAdoption::NotTheRecordedKey),
        None => None,
    };
    Ok(if store.record_root_key(&ours, replacing).await? {
        RootKeyAdoption::Adopted
    } else {
        RootKeyAdoption::ChangedMeanwhile
    })
}

pub struct KeyCache {
    root: RootKey,
    /// Seals platform secrets such as TOTP seeds (derived from the root key).
    platform: PlatformKey,
    rings: RwLock<HashMap<String, (Arc<TenantKeyring>, Instant)>>,
    /// With a shared store, another instance may rotate or shred: reload after this long.
    max_age: Option<Duration>,
    /// Shredded tenants (ids are never reused): a load that raced the deletion must not cache
    /// their keys again.
    shredded: RwLock<HashSet<String>>,
    /// Bumped by every `forget`: a keyring loaded before a rotation is used but not cached.
    generation: AtomicU64,
    /// The root key's public fingerprint, which every commit sealing under it checks.
    root_fingerprint: String,
}

impl KeyCache {
    pub fn new(root: RootKey, max_age: Option<Duration>) -> ServiceResult<Self> {
        let platform =
            PlatformKey::derive(&root).map_err(|_| ServiceError::internal("platform key"))?;
        let root_fingerprint = root.fingerprint();
        Ok(Self {
            root,
            platform,
            rings: RwLock::new(HashMap::new()),
            shredded: RwLock::new(HashSet::new()),
            generation: AtomicU64::new(0),
            max_age,
            root_fingerprint,
        })
    }

    /// The guard of a commit that seals under the root key: refused if another instance has
    /// rotated the root key since this one started, as what it seals would never open again.
    pub fn root_guard(&self) -> Mutation {
        Mutation::RequireRootKey {
            fingerprint: self.root_fingerprint.clone(),
        }
    }

    /// Moves the database's record of the root key to `new_root`, in the rotation's commit.
    pub fn root_replacement(&self, new_root: &RootKey) -> Mutation {
        Mutation::ReplaceRootKey {
            was: self.root_fingerprint.clone(),
            now: new_root.fingerprint(),
        }
    }

    /// Seals a user's secret (`purpose` names what it is, e.g. a TOTP seed) for storage.
    pub fn seal_user_secret(
        &self,
        user_id: &str,
        purpose: &str,
        plaintext: &[u8],
    ) -> ServiceResult<Vec<u8>> {
        self.platform
            .seal(user_id, purpose, plaintext)
            .map_err(|_| ServiceError::internal("sealing a user secret"))
    }

    /// Opens a sealed user secret; fails closed when it does not belong to this user and purpose.
    pub fn open_user_secret(
        &self,
        user_id: &str,
        purpose: &str,
        sealed: &[u8],
    ) -> ServiceResult<strongroom_crypto::Zeroizing<Vec<u8>>> {
        self.platform
            .open(user_id, purpose, sealed)
            .map_err(|_| ServiceError::internal("a user secret does not open"))
    }

    /// Fresh keys for a new tenant, wrapped for storage.
    pub fn new_tenant_keys(&self, tenant_id: &str, now: i64) -> ServiceResult<TenantKeyRow> {
        self.new_key_version(tenant_id, 1, now)
    }

    /// Fresh keys of `version` for a tenant (rotation), wrapped for storage.
    pub fn new_key_version(
        &self,
        tenant_id: &str,
        version: u32,
        now: i64,
    ) -> ServiceResult<TenantKeyRow> {
        let keys =
            TenantKeys::generate(version).map_err(|_| ServiceError::internal("key generation"))?;
        let wrapped = wrap_tenant_keys(&self.root, tenant_id, &keys)
            .map_err(|_| ServiceError::internal("key wrapping"))?;
        Ok(TenantKeyRow {
            tenant_id: tenant_id.to_owned(),
            version: i64::from(version),
            wrapped,
            created_at: now,
        })
    }

    /// Drops the cached keyring, so the next use reads the tenant's key versions again.
    pub fn forget(&self, tenant_id: &str) {
        if let Ok(mut map) = self.rings.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            map.remove(tenant_id);
        }
    }

    /// Drops a shredded tenant's unwrapped keys from memory (they zeroize when the last user
    /// lets go) and never caches them again, even after a racing load.
    pub fn shred(&self, tenant_id: &str) {
        if let Ok(mut set) = self.shredded.write() {
            set.insert(tenant_id.to_owned());
        }
        self.forget(tenant_id);
    }

    /// Unwraps a stored tenant key under this root key and wraps it under `new_root`.
    pub fn rewrap(&self, row: &TenantKeyRow, new_root: &RootKey) -> ServiceResult<Vec<u8>> {
        let version =
            u32::try_from(row.version).map_err(|_| ServiceError::internal("tenant key version"))?;
        let keys = unwrap_tenant_keys(&self.root, &row.tenant_id, version, &row.wrapped)
            .map_err(|_| ServiceError::internal("tenant keys do not unwrap"))?;
        wrap_tenant_keys(new_root, &row.tenant_id, &keys)
            .map_err(|_| ServiceError::internal("key wrapping"))
    }

    /// Opens a user secret under this root key and seals it under `new_root`'s platform key.
    pub fn reseal_user_secret(
        &self,
        user_id: &str,
        purpose: &str,
        sealed: &[u8],
        new_root: &RootKey,
    ) -> ServiceResult<Vec<u8>> {
        let plain = self.open_user_secret(user_id, purpose, sealed)?;
        PlatformKey::derive(new_root)
            .and_then(|k| k.seal(user_id, purpose, &plain))
            .map_err(|_| ServiceError::internal("sealing a user secret"))
    }

    /// Runs `open` over the tenant's keyring. With a shared store, the cached keyring may predate
    /// another instance's rotation and so lack the version a record was just sealed under: when
    /// `open` meets such a ciphertext, the keyring is read again and `open` runs once more. It
    /// must change nothing before it has opened everything it needs.
    pub async fn with_keyring_async<T, Opened>(
        &self,
        store: &dyn Store,
        tenant_id: &str,
        mut open: impl FnMut(Arc<TenantKeyring>) -> Opened,
    ) -> ServiceResult<T>
    where
        Opened: Future<Output = ServiceResult<T>>,
    {
        let ring = self.keyring(store, tenant_id).await?;
        match open(ring).await {
            Err(err) if err.is_keyring_behind() => {
                // From the store, not the cache: a load racing this one may have cached the old.
                let ring = self.load(store, tenant_id).await?;
                open(ring).await.map_err(|err| {
                    if err.is_keyring_behind() {
                        ServiceError::internal("ciphertext names a key version not held")
                    } else {
                        err
                    }
                })
            }
            result => result,
        }
    }

    /// [`Self::with_keyring_async`] for work that waits on nothing.
    pub async fn with_keyring<T>(
        &self,
        store: &dyn Store,
        tenant_id: &str,
        mut open: impl FnMut(&TenantKeyring) -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        self.with_keyring_async(store, tenant_id, |ring| std::future::ready(open(&ring)))
            .await
    }

    /// The tenant's keyring, for work that no ciphertext can warn it is behind (computing the
    /// blind indexes to search by, choosing what to re-encrypt): with a shared store, a cached
    /// keyring is first compared with the newest version stored, at the cost of one query.
    pub async fn current_keyring(
        &self,
        store: &dyn Store,
        tenant_id: &str,
    ) -> ServiceResult<Arc<TenantKeyring>> {
        let Some(ring) = self.cached(tenant_id) else {
            return self.load(store, tenant_id).await;
        };
        // Without a shared store every rotation is this instance's own and forgets the keyring.
        if self.max_age.is_none() {
            return Ok(ring);
        }
        let newest = store
            .tenant_keys(&TenantScope::new(tenant_id))
            .await?
            .iter()
            .map(|k| k.version)
            .max();
        if newest.is_some_and(|v| v > i64::from(ring.current_version())) {
            return self.load(store, tenant_id).await;
        }
        Ok(ring)
    }

    /// The tenant's keyring; a tenant without keys (or whose keys do not unwrap) has no usable data,
    /// and the request fails closed.
    pub async fn keyring(
        &self,
        store: &dyn Store,
        tenant_id: &str,
    ) -> ServiceResult<Arc<TenantKeyring>> {
        match self.cached(tenant_id) {
            Some(ring) => Ok(ring),
            None => {
                // An expired ring goes now, whether or not the keys load again: another instance
                // may have shredded the tenant, and its keys must not stay in this one's memory.
                if let Ok(mut map) = self.rings.write() {
                    map.remove(tenant_id);
                }
                self.load(store, tenant_id).await
            }
        }
    }

    /// Drops every cached keyring older than `max_age` (the unwrapped keys zeroize once no
    /// request holds them): a tenant shredded on another instance, and no longer asked for here,
    /// leaves no keys in this one's memory. Returns how many went.
    pub fn evict_expired(&self) -> usize {
        let Some(max) = self.max_age else {
            return 0;
        };
        let Ok(mut map) = self.rings.write() else {
            return 0;
        };
        let before = map.len();
        map.retain(|_, (_, loaded)| loaded.elapsed() <= max);
        before - map.len()
    }

    /// How long a cached keyring is trusted (`None`: until a local rotation or shred).
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The cached keyring, unless it has outlived `max_age`.
    fn cached(&self, tenant_id: &str) -> Option<Arc<TenantKeyring>> {
        self.rings
            .read()
            .ok()
            .and_then(|m| m.get(tenant_id).cloned())
            .and_then(|(ring, loaded)| match self.max_age {
                Some(max) if loaded.elapsed() > max => None,
                _ => Some(ring),
            })
    }

    /// Reads and unwraps the tenant's keys, and caches them unless a local rotation or shred
    /// raced the read.
    async fn load(&self, store: &dyn Store, tenant_id: &str) -> ServiceResult<Arc<TenantKeyring>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let rows = store.tenant_keys(&TenantScope::new(tenant_id)).await?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in rows {
            let version = u32::try_from(row.version)
                .map_err(|_| ServiceError::internal("tenant key version"))?;
            versions.push(
                unwrap_tenant_keys(&self.root, tenant_id, version, &row.wrapped)
                    .map_err(|_| ServiceError::internal("tenant keys do not unwrap"))?,
            );
        }
        let ring = TenantKeyring::new(tenant_id, versions)
            .map_err(|_| ServiceError::internal("tenant has no keys"))?;
        // Versions a restore accepted records under without their keys: those records read as
        // unreadable; a ciphertext naming any other version not held is an integrity failure.
        let lost = store
            .lost_tenant_keys(&TenantScope::new(tenant_id))
            .await?
            .into_iter()
            .filter_map(|v| u32::try_from(v).ok());
        let ring = Arc::new(ring.with_lost_versions(lost));
        // Checked under the map's lock, after `forget` has marked the tenant: fail closed.
        let mut map = self
            .rings
            .write()
            .map_err(|_| ServiceError::internal("key cache"))?;
        if self.shredded.read().map_or(true, |s| s.contains(tenant_id)) {
            return Err(ServiceError::internal("tenant keys destroyed"));
        }
        // A rotation committed while we read: this ring may lack the new version, so the next use
        // reads again.
        if self.generation.load(Ordering::SeqCst) == generation {
            map.insert(tenant_id.to_owned(), (Arc::clone(&ring), Instant::now()));
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use strongroom_store::{AuditAppend, SqliteStore, TenantRow, no_replan};

    use super::*;

    const TENANT: &str = "t1";

    fn cached_rings(cache: &KeyCache) -> usize {
        cache.rings.read().map(|m| m.len()).unwrap()
    }

    /// A keyring past its age leaves memory: by the sweep, and on its next use even when the keys
    /// no longer load (a peer shredded the tenant).
    #[tokio::test]
    async fn expired_keyrings_leave_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
            .await
            .unwrap();
        let cache = KeyCache::new(
            RootKey::generate().unwrap(),
            Some(Duration::from_millis(20)),
        )
        .unwrap();
        let tenant = Mutation::InsertTenant(TenantRow {
            id: TENANT.into(),
            name: "t".into(),
            status: "active".into(),
            instructions: "{}".into(),
            created_at: 0,
            updated_at: 0,
        });
        let keys = Mutation::InsertTenantKey(cache.new_tenant_keys(TENANT, 0).unwrap());
        let results = store
            .commit(&[vec![tenant, keys]], &AuditAppend::default(), &no_replan)
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));

        cache.keyring(&store, TENANT).await.unwrap();
        assert_eq!(cached_rings(&cache), 1);
        assert_eq!(cache.evict_expired(), 0, "a fresh ring was dropped");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.evict_expired(), 1);
        assert_eq!(cached_rings(&cache), 0);

        cache.keyring(&store, TENANT).await.unwrap();
        let shred = Mutation::ShredTenant {
            scope: TenantScope::new(TENANT),
            request_ref: "DSR-1".into(),
            at: 1,
        };
        let results = store
            .commit(&[vec![shred]], &AuditAppend::default(), &no_replan)
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(cache.keyring(&store, TENANT).await.is_err());
        assert_eq!(cached_rings(&cache), 0, "a shredded tenant's keys stayed");
    }
}
