//! The Strongroom service layer: the one way in to customer data.
//!
//! HTTP handlers, CLI commands and the console call [`Vault`]; nothing else touches the store, the keys or
//! the audit log. Every access follows the same steps: load the facts (tenant-scoped), ask the policy,
//! append the audit entry (durable, group-committed), then read or write ciphertext and decrypt only what
//! the decision reveals.

pub mod audit;
pub mod auth;
mod cache;
pub mod clock;
pub mod error;
pub mod mask;
pub mod model;
pub mod scan;
pub mod settings;
pub mod watch;

mod access;
mod keys;
mod service;

/// Types returned by service operations that have no better home.
pub mod service_types {
    pub use crate::service::{
        ACCESS_REQUEST_STATES, CERTIFICATE_HEADER, DeletionCertificate, Incident, LoggedEntry,
        WatchReport, WebhookDelivery,
    };
}
mod shape;

use std::sync::Arc;

use strongroom_crypto::RootKey;
use strongroom_ledger::NoteSigner;
use strongroom_policy::PolicyEngine;
use strongroom_store::{Store, TenantRow, UserRow};

pub use access::{Principal, RequestContext, is_reference};
pub use error::{ErrorCode, ServiceError, ServiceResult};
pub use keys::{RootKeyAdoption, adopt_root_key, root_key_opens_store};
pub use settings::Settings;

use audit::AuditLog;
use auth::api_key::ApiKeyCache;
use auth::session::SessionCache;
use auth::source_throttle::SourceThrottle;
use auth::throttle::LoginThrottle;
use cache::Cache;
use clock::Clock;
use keys::KeyCache;
use model::TenantInstructions;
use strongroom_policy::TenantFacts;

/// A tenant as the service keeps it in memory: its row, parsed instructions and policy facts.
pub(crate) struct TenantState {
    pub row: TenantRow,
    pub instructions: TenantInstructions,
    pub facts: TenantFacts,
}

pub struct Vault {
    store: Arc<dyn Store>,
    policy: Arc<PolicyEngine>,
    keys: KeyCache,
    audit: Arc<AuditLog>,
    sessions: SessionCache,
    api_keys: ApiKeyCache,
    users: Cache<String, Arc<UserRow>>,
    tenants: Cache<String, Arc<TenantState>>,
    throttle: LoginThrottle,
    source_throttle: SourceThrottle,
    refusals: auth::refusals::RecentRefusals,
    settings: Settings,
    clock: Arc<dyn Clock>,
    /// This process's identity in leases shared with other instances.
    instance: String,
    /// Wakes the re-encryption job after a rotation.
    reencrypt_wakeup: tokio::sync::Notify,
    /// The breach watch's windows, kept between passes by the instance that runs them.
    watch: tokio::sync::Mutex<Option<service::WatchState>>,
}

/// Everything the vault is built from; the binary assembles it.
pub struct VaultParts {
    pub store: Arc<dyn Store>,
    pub policy: PolicyEngine,
    pub root_key: RootKey,
    pub log_signer: NoteSigner,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    /// Keeps the last checkpoint published from here outside the store (the data dir's file).
    pub witness: Option<Arc<dyn audit::CheckpointWitness>>,
}

impl Vault {
    pub async fn open(parts: VaultParts) -> ServiceResult<Arc<Self>> {
        let VaultParts {
            store,
            policy,
            root_key,
            log_signer,
            settings,
            clock,
            witness,
        } = parts;
        if settings.attachment_scanner == scan::Scanner::Builtin {
            tracing::warn!(
                "attachment scanning is the built-in check, which knows only the EICAR test \
                 file: set attachment_scanner to a clamd address in production"
            );
        }
        // Leases (the log's signer, periodic jobs) are held by instance. On a store of its own
        // (the data dir's lock keeps any other out) the name is fixed, so that a restart takes
        // back at once what the process before it held, instead of waiting out its lease.
        let instance = if store.shared() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            "sole-instance".to_owned()
        };
        let audit = AuditLog::open_configured(
            Arc::clone(&store),
            &log_signer,
            &settings,
            Arc::clone(&clock),
            instance.clone(),
            witness,
        )
        .await?;
        // Other instances' revocations, rotations and shreds reach our caches by expiry only.
        let max_age = store
            .shared()
            .then(|| std::time::Duration::from_millis(settings.shared_cache_max_age_ms));
        Ok(Arc::new(Self {
            throttle: LoginThrottle::new(
                settings.login_lockout_threshold,
                settings.login_lockout_secs,
                settings.login_backoff_base_ms,
            ),
            source_throttle: SourceThrottle::new(
                settings.login_source_max_failures,
                settings.login_source_window_secs,
                strongroom_crypto::random_bytes::<32>()
                    .map_err(|_| ServiceError::internal("source throttle key"))?,
            ),
            refusals: auth::refusals::RecentRefusals::default(),
            store,
            policy: Arc::new(policy),
            keys: KeyCache::new(root_key, max_age)?,
            audit,
            sessions: SessionCache::new(max_age),
            api_keys: ApiKeyCache::new(max_age),
            users: Cache::new(100_000, max_age),
            tenants: Cache::new(100_000, max_age),
            instance,
            settings,
            clock,
            reencrypt_wakeup: tokio::sync::Notify::new(),
            watch: tokio::sync::Mutex::new(None),
        }))
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How long a cached tenant keyring is trusted: on a shared store, until another instance
    /// may have rotated or shredded; `None` on one instance, where both evict it at once.
    pub fn keyring_max_age(&self) -> Option<std::time::Duration> {
        self.keys.max_age()
    }

    /// Drops the cached tenant keyrings past `keyring_max_age`; returns how many went.
    pub fn evict_expired_keyrings(&self) -> usize {
        self.keys.evict_expired()
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Whether this instance should run the periodic job `name` now: the instance that claims it
    /// keeps it for `hold` (and renews it on its next run); the others skip until it lapses. A
    /// store error means no.
    pub async fn claim_job(&self, name: &str, hold: std::time::Duration) -> bool {
        let now = self.now();
        let hold = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
        match self
            .store
            .try_lease(
                &format!("job:{name}"),
                &self.instance,
                now,
                now.saturating_add(hold),
            )
            .await
        {
            Ok(held) => held,
            Err(err) => {
                tracing::error!(job = name, error = %err, "job lease unavailable; skipping this run");
                false
            }
        }
    }

    /// Readiness: the store answers, and entries get their signed checkpoint (one follows any
    /// append within a second; a signer that cannot sign, the store rewritten below its last
    /// checkpoint or the checkpoint not saved, makes the instance unready after a few seconds).
    pub async fn ready(&self) -> Result<(), NotReady> {
        if self.store.ping().await.is_err() {
            return Err(NotReady::StoreUnavailable);
        }
        let unsigned = self.audit.unsigned_for_ms(self.now());
        metrics::gauge!("strongroom_audit_unsigned_seconds")
            .set(unsigned.map_or(0.0, |ms| ms as f64 / 1000.0));
        if unsigned.is_some_and(|ms| ms > UNSIGNED_READY_MS) {
            return Err(NotReady::CheckpointsStalled);
        }
        Ok(())
    }
}

/// How long entries may wait for a signed checkpoint before the instance reports itself unready:
/// the signer's interval and a lease handover (up to five seconds) with room to spare.
const UNSIGNED_READY_MS: i64 = 8_000;

/// Why [`Vault::ready`] says no.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("store unavailable")]
    StoreUnavailable,
    #[error("audit checkpoints stalled")]
    CheckpointsStalled,
}

/// A fresh opaque identifier (UUID v7: time-ordered, so ids make good cursors).
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
