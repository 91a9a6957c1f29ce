//! Persistence for Strongroom: one [`Store`] trait, implemented for SQLite (embedded, the default).
//!
//! The store holds ciphertext and metadata only; it never sees a key or a plaintext field. Every read of
//! tenant data takes a [`TenantScope`], and every write goes through [`Store::commit`], which applies a
//! batch of units and the matching audit-log rows in ONE transaction: this is where group commit happens.

mod error;
mod rows;
mod sqlite;

use async_trait::async_trait;

pub use error::StoreError;
pub use rows::*;
pub use sqlite::SqliteStore;

/// Result of one unit of a committed batch: a unit that failed was rolled back alone.
pub type UnitResult = Result<(), StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Tenants and their keys.
    async fn tenant(&self, id: &str) -> Result<Option<TenantRow>, StoreError>;
    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<TenantRow>, StoreError>;
    async fn tenant_keys(&self, scope: &TenantScope) -> Result<Vec<TenantKeyRow>, StoreError>;

    // Users and sessions.
    async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError>;
    async fn user_count(&self) -> Result<u64, StoreError>;
    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError>;
    /// The user's sessions that are not revoked and not past `now`'s absolute expiry.
    async fn user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionRow>, StoreError>;

    // API keys.
    async fn api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRow>, StoreError>;
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    /// Keys by id; only those of `tenant_id`'s principals when given.
    async fn api_keys(
        &self,
        tenant_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ApiKeyEntry>, StoreError>;

    // Customer data, always tenant-scoped.
    async fn contact(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<ContactRow>, StoreError>;
    /// A contact and, in the same statement, whether a case referencing it is assigned to `assignee_id`.
    async fn contact_with_reach(
        &self,
        scope: &TenantScope,
        id: &str,
        assignee_id: &str,
    ) -> Result<Option<(ContactRow, bool)>, StoreError>;
    async fn contacts_by_email_index(
        &self,
        scope: &TenantScope,
        index: &[u8],
        limit: u32,
    ) -> Result<Vec<ContactRow>, StoreError>;
    async fn contacts(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ContactRow>, StoreError>;
    async fn case(&self, scope: &TenantScope, id: &str) -> Result<Option<CaseRow>, StoreError>;
    async fn cases(
        &self,
        scope: &TenantScope,
        filter: &CaseFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CaseRow>, StoreError>;
    async fn comments(
        &self,
        scope: &TenantScope,
        case_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CommentRow>, StoreError>;

    // The audit ledger.
    async fn audit_size(&self) -> Result<u64, StoreError>;
    async fn audit_nodes(&self, ids: &[NodeKey]) -> Result<Vec<Option<[u8; 32]>>, StoreError>;
    async fn audit_entries(&self, start: u64, limit: u32)
    -> Result<Vec<AuditEntryRow>, StoreError>;
    async fn audit_entries_for_tenant(
        &self,
        scope: &TenantScope,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntryRow>, StoreError>;
    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError>;
    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError>;
    async fn save_checkpoint(&self, checkpoint: &CheckpointRow) -> Result<(), StoreError>;

    /// Applies `units` and appends `audit` in one durable transaction.
    ///
    /// Each unit runs under its own savepoint: a unit that violates a constraint is rolled back alone and
    /// reported in the returned vector; the audit rows are always written. If the transaction itself fails
    /// (I/O, lock), nothing at all is written and the error is returned.
    async fn commit(
        &self,
        units: &[Vec<Mutation>],
        audit: &AuditAppend,
    ) -> Result<Vec<UnitResult>, StoreError>;

    /// Liveness probe used by `/healthz`.
    async fn ping(&self) -> Result<(), StoreError>;
}
