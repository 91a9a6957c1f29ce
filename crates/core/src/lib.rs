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
pub mod settings;

mod access;
mod keys;
mod service;

/// Types returned by service operations that have no better home.
pub mod service_types {
    pub use crate::service::{
        ACCESS_REQUEST_STATES, CERTIFICATE_HEADER, DeletionCertificate, LoggedEntry,
        WebhookDelivery, valid_request_reference,
    };
}
mod shape;

use std::sync::Arc;

use strongroom_crypto::RootKey;
use strongroom_ledger::NoteSigner;
use strongroom_policy::PolicyEngine;
use strongroom_store::{Store, TenantRow, UserRow};

pub use access::{Principal, RequestContext};
pub use error::{ErrorCode, ServiceError, ServiceResult};
pub use settings::Settings;

use audit::AuditLog;
use auth::api_key::ApiKeyCache;
use auth::session::SessionCache;
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
    settings: Settings,
    clock: Arc<dyn Clock>,
    /// Serialises quota-counted export creation from the quota check to the commit, so concurrent
    /// exports cannot together exceed a quota (one server process owns the data dir).
    export_quota_lock: tokio::sync::Mutex<()>,
    /// Wakes the re-encryption job after a rotation.
    reencrypt_wakeup: tokio::sync::Notify,
}

/// Everything the vault is built from; the binary assembles it.
pub struct VaultParts {
    pub store: Arc<dyn Store>,
    pub policy: PolicyEngine,
    pub root_key: RootKey,
    pub log_signer: NoteSigner,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
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
        } = parts;
        let origin = if settings.audit_origin.is_empty() {
            let vkey = log_signer.verifier().to_vkey();
            let key_id = vkey.split('+').nth(1).unwrap_or("0").to_owned();
            format!("strongroom.local/audit/{key_id}")
        } else {
            settings.audit_origin.clone()
        };
        let signer = NoteSigner::from_bytes(&origin, &log_signer.secret_bytes())
            .map_err(|_| ServiceError::internal("log signing key"))?;
        let audit = AuditLog::open(
            Arc::clone(&store),
            signer,
            origin,
            Arc::clone(&clock),
            settings.audit_max_batch,
        )
        .await?;
        Ok(Arc::new(Self {
            throttle: LoginThrottle::new(
                settings.login_lockout_threshold,
                settings.login_lockout_secs,
                settings.login_backoff_base_ms,
            ),
            store,
            policy: Arc::new(policy),
            keys: KeyCache::new(root_key)?,
            audit,
            sessions: SessionCache::default(),
            api_keys: ApiKeyCache::default(),
            users: Cache::new(100_000),
            tenants: Cache::new(100_000),
            settings,
            clock,
            export_quota_lock: tokio::sync::Mutex::new(()),
            reencrypt_wakeup: tokio::sync::Notify::new(),
        }))
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Readiness: the store answers.
    pub async fn ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }
}

/// A fresh opaque identifier (UUID v7: time-ordered, so ids make good cursors).
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
