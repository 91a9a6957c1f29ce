//! Tenant keyrings: unwrapped on first use under the root key, kept in memory (zeroized on drop).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use strongroom_crypto::{
    PlatformKey, RootKey, TenantKeyring, TenantKeys, unwrap_tenant_keys, wrap_tenant_keys,
};
use strongroom_store::{Store, TenantKeyRow, TenantScope};

use crate::error::{ServiceError, ServiceResult};

pub struct KeyCache {
    root: RootKey,
    /// Seals platform secrets such as TOTP seeds (derived from the root key).
    platform: PlatformKey,
    rings: RwLock<HashMap<String, Arc<TenantKeyring>>>,
    /// Shredded tenants (ids are never reused): a load that raced the deletion must not cache
    /// their keys again.
    shredded: RwLock<HashSet<String>>,
}

impl KeyCache {
    pub fn new(root: RootKey) -> ServiceResult<Self> {
        let platform =
            PlatformKey::derive(&root).map_err(|_| ServiceError::internal("platform key"))?;
        Ok(Self {
            root,
            platform,
            rings: RwLock::new(HashMap::new()),
            shredded: RwLock::new(HashSet::new()),
        })
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
        let keys = TenantKeys::generate(1).map_err(|_| ServiceError::internal("key generation"))?;
        let wrapped = wrap_tenant_keys(&self.root, tenant_id, &keys)
            .map_err(|_| ServiceError::internal("key wrapping"))?;
        Ok(TenantKeyRow {
            tenant_id: tenant_id.to_owned(),
            version: 1,
            wrapped,
            created_at: now,
        })
    }

    /// Drops the tenant's unwrapped keys from memory (they zeroize when the last user lets go).
    pub fn forget(&self, tenant_id: &str) {
        if let Ok(mut set) = self.shredded.write() {
            set.insert(tenant_id.to_owned());
        }
        if let Ok(mut map) = self.rings.write() {
            map.remove(tenant_id);
        }
    }

    /// The tenant's keyring; a tenant without keys (or whose keys do not unwrap) has no usable data,
    /// and the request fails closed.
    pub async fn keyring(
        &self,
        store: &dyn Store,
        tenant_id: &str,
    ) -> ServiceResult<Arc<TenantKeyring>> {
        if let Some(ring) = self
            .rings
            .read()
            .ok()
            .and_then(|m| m.get(tenant_id).cloned())
        {
            return Ok(ring);
        }
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
        let ring = Arc::new(
            TenantKeyring::new(tenant_id, versions)
                .map_err(|_| ServiceError::internal("tenant has no keys"))?,
        );
        // Checked under the map's lock, after `forget` has marked the tenant: fail closed.
        let mut map = self
            .rings
            .write()
            .map_err(|_| ServiceError::internal("key cache"))?;
        if self.shredded.read().map_or(true, |s| s.contains(tenant_id)) {
            return Err(ServiceError::internal("tenant keys destroyed"));
        }
        map.insert(tenant_id.to_owned(), Arc::clone(&ring));
        Ok(ring)
    }
}
