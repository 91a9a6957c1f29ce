//! Persistence for Strongroom: one [`Store`] trait, implemented for SQLite (embedded, the default)
//! and PostgreSQL (several instances, row-level security). Both compile the same SQL (`sql/`);
//! each backend adds its connections, transactions, migrations and the little SQL that differs.
//!
//! The store holds ciphertext and metadata only; it never sees a key or a plaintext field. Every read of
//! tenant data takes a [`TenantScope`], and every write goes through [`Store::commit`], which applies a
//! batch of units and the matching audit-log rows in ONE transaction: this is where group commit happens.

mod audit_scan;
mod error;
mod point_reads;
// Each backend compiles the shared SQL modules (`sql/`) against its own driver types, on purpose.
mod mutation;
#[allow(clippy::duplicate_mod)]
mod postgres;
mod rows;
#[allow(clippy::duplicate_mod)]
mod sqlite;

use async_trait::async_trait;

pub use audit_scan::{AuditEntryRef, AuditScan, EntryDigest, LevelNodes, ScannedEntry};
pub use error::{LAST_PLATFORM_ADMIN, StoreError};
pub use mutation::Mutation;
pub use postgres::{PgOptions, PgStore};
pub use rows::*;
pub use sqlite::{SqliteStore, table_counts};

/// Result of one unit of a committed batch: a unit that failed was rolled back alone.
pub type UnitResult = Result<(), StoreError>;

/// Plans a batch's audit rows again for a log that is `size` entries long, given the hashes of
/// that tree's frontier (the perfect subtrees' roots, largest first). The store calls it with the
/// audit head locked, when another writer sharing the database appended since the batch was
/// planned, so the batch goes in next instead of racing again.
pub type Replan<'a> =
    &'a (dyn Fn(u64, &[[u8; 32]]) -> Result<AuditAppend, StoreError> + Send + Sync);

/// A [`Replan`] for writers that must not move: refuses with [`StoreError::AuditHeadMoved`].
pub fn no_replan(size: u64, _frontier: &[[u8; 32]]) -> Result<AuditAppend, StoreError> {
    Err(StoreError::AuditHeadMoved(size))
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Tenants and their keys.
    async fn tenant(&self, id: &str) -> Result<Option<TenantRow>, StoreError>;
    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<TenantRow>, StoreError>;
    async fn tenant_keys(&self, scope: &TenantScope) -> Result<Vec<TenantKeyRow>, StoreError>;

    // Key rotation and retention.
    /// Ciphertexts per key version across every tenant-key column of the tenant.
    async fn key_usage(&self, scope: &TenantScope) -> Result<Vec<KeyUsageRow>, StoreError>;
    async fn retired_tenant_keys(
        &self,
        scope: &TenantScope,
    ) -> Result<Vec<RetiredKeyRow>, StoreError>;
    /// Key versions lost to a restore (`Mutation::RecordKeyLoss`), ascending.
    async fn lost_tenant_keys(&self, scope: &TenantScope) -> Result<Vec<i64>, StoreError>;
    /// Every wrapped tenant key of every tenant (root-key rotation).
    async fn all_tenant_keys(&self) -> Result<Vec<TenantKeyRow>, StoreError>;
    /// Every TOTP factor (root-key rotation re-seals them).
    async fn all_totp(&self) -> Result<Vec<TotpRow>, StoreError>;
    /// The fingerprint of the root key everything sealed under a root key is sealed under,
    /// once recorded (`Mutation::RequireRootKey`, `Mutation::ReplaceRootKey`).
    async fn root_key_fingerprint(&self) -> Result<Option<String>, StoreError>;
    /// Records `fingerprint` as the root key's at start, once the root key is shown to open what
    /// the database keeps sealed: where none is recorded, or over `replacing` (after a restore,
    /// the record may be older than the keys) if that is still the one recorded. Returns whether
    /// `fingerprint` is the one recorded now.
    async fn record_root_key(
        &self,
        fingerprint: &str,
        replacing: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Rows of `table` holding a ciphertext under a version other than `current`, by key.
    async fn stale_ciphertexts(
        &self,
        scope: &TenantScope,
        table: CipherTable,
        current: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CipherRow>, StoreError>;
    /// Closed or resolved cases last changed before `cutoff`, oldest first.
    async fn expired_cases(
        &self,
        scope: &TenantScope,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<CaseRow>, StoreError>;

    // Users and sessions.
    async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError>;
    async fn user_count(&self) -> Result<u64, StoreError>;
    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError>;
    /// The user's TOTP factor, confirmed or pending.
    async fn user_totp(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError>;

    // Access governance, platform-wide: identifiers and metadata only, never tenant content.
    /// Every account, by id.
    async fn users(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserRow>, StoreError>;
    /// Active staff accounts (no tenant), by id.
    async fn active_staff(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StaffRow>, StoreError>;
    async fn assignments_of(&self, user_id: &str) -> Result<Vec<AssignmentRow>, StoreError>;
    /// Assignments (cases of any status) per user id.
    async fn assignment_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Open and pending cases assigned to each of `user_ids` (those with none are not listed).
    async fn open_case_counts(&self, user_ids: &[String])
    -> Result<Vec<(String, i64)>, StoreError>;
    async fn inactivity_warnings(&self) -> Result<Vec<InactivityWarningRow>, StoreError>;
    /// Active operator-access grants per holder, across tenants, at `now`.
    async fn active_grant_counts(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// Per service principal: its live (unrevoked, unexpired at `now`) API keys and their last use.
    async fn api_key_activity(&self, now: i64) -> Result<Vec<ApiKeyActivityRow>, StoreError>;
    /// Ids of the users with a confirmed second factor.
    async fn mfa_enrolled_users(&self) -> Result<Vec<String>, StoreError>;
    async fn access_reviews(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessReviewRow>, StoreError>;
    async fn access_review(&self, id: &str) -> Result<Option<AccessReviewRow>, StoreError>;
    async fn access_review_lines(
        &self,
        review_id: &str,
    ) -> Result<Vec<AccessReviewLineRow>, StoreError>;
    // The breach watch.
    /// Newest first; with `scope`, that tenant's only.
    async fn incidents(
        &self,
        scope: Option<&TenantScope>,
        state: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError>;
    async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError>;
    async fn open_incidents(&self) -> Result<Vec<IncidentRow>, StoreError>;
    /// Where the watch `name` reads on from; None before its first pass.
    async fn watch_progress(&self, name: &str) -> Result<Option<u64>, StoreError>;
    /// The entries from `start` on, with their stored leaf hashes.
    async fn watched_entries(
        &self,
        start: u64,
        limit: u32,
    ) -> Result<Vec<WatchedEntryRow>, StoreError>;
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
    /// Up to `limit` contacts whose e-mail blind index is `index`, by id, after `after`.
    async fn contacts_by_email_index(
        &self,
        scope: &TenantScope,
        index: &[u8],
        after: Option<&str>,
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
    /// A case's files, without their content.
    async fn attachments(
        &self,
        scope: &TenantScope,
        case_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AttachmentRow>, StoreError>;
    async fn attachment(
        &self,
        scope: &TenantScope,
        case_id: &str,
        id: &str,
    ) -> Result<Option<AttachmentRow>, StoreError>;
    /// The sealed content of one file.
    async fn attachment_content(
        &self,
        scope: &TenantScope,
        case_id: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    // Customer lockbox: access requests, grants, notifications. Tenant-scoped except the jobs'.
    async fn access_request(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<AccessRequestRow>, StoreError>;
    /// Newest first.
    async fn access_requests(
        &self,
        scope: &TenantScope,
        filter: &AccessRequestFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessRequestRow>, StoreError>;
    /// The user's grants active at `now` in the tenant, newest first, with their case's contact.
    async fn active_grants(
        &self,
        scope: &TenantScope,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<ActiveGrantRow>, StoreError>;
    /// Who holds a pending request or a grant active at `now` on the case, each once (a grant
    /// opens its case's contact, so re-pointing the case concerns them).
    async fn case_open_requesters(
        &self,
        scope: &TenantScope,
        case_id: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// The user's pending requests and active grants at `now`, in every tenant.
    async fn open_requests_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<AccessRequestRow>, StoreError>;
    /// Active grants ending in `(now, until]` whose holders' tenants were not warned yet.
    async fn grants_ending(
        &self,
        now: i64,
        until: i64,
    ) -> Result<Vec<AccessRequestRow>, StoreError>;
    /// Newest first.
    async fn notifications(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError>;
    /// Notifications waiting for a delivery attempt due at `now`.
    async fn due_notifications(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError>;
    async fn webhook_secret(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<WebhookSecretRow>, StoreError>;

    // Exports: age ciphertext and a manifest without personal data.
    async fn export(&self, scope: &TenantScope, id: &str) -> Result<Option<ExportRow>, StoreError>;
    /// Newest first, without their ciphertext; only `requester_id`'s when given.
    async fn exports(
        &self,
        scope: &TenantScope,
        requester_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError>;
    /// Records in the limited exports `requester_id` created since `since` (any state), for quotas.
    async fn exported_records_since(
        &self,
        requester_id: &str,
        since: i64,
    ) -> Result<i64, StoreError>;
    /// Records in the limited exports `requester_id` created since `since` that left without a
    /// second person's approval, for the approval threshold.
    async fn records_exported_without_approval_since(
        &self,
        requester_id: &str,
        since: i64,
    ) -> Result<i64, StoreError>;
    /// `(tenant_id, id)` of exports past `expires_at` at `now` that still hold ciphertext.
    async fn expired_exports(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;

    // The audit ledger.
    async fn audit_size(&self) -> Result<u64, StoreError>;
    async fn audit_nodes(&self, ids: &[NodeKey]) -> Result<Vec<Option<[u8; 32]>>, StoreError>;
    async fn audit_entries(&self, start: u64, limit: u32)
    -> Result<Vec<AuditEntryRow>, StoreError>;
    /// The entries with indexes in `[start, start + limit)`, each passed to `digest` as it is read,
    /// and the tree nodes stored in their rows, for verifying the whole log (millions of rows, so
    /// each backend reads them its fastest way). Parts may come from different snapshots: ask
    /// only for what a size read earlier covers.
    async fn audit_scan(
        &self,
        start: u64,
        limit: u32,
        digest: EntryDigest,
    ) -> Result<AuditScan, StoreError>;
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
    /// The audit entries must start at the log's current size: if another writer sharing the
    /// database appended first, `replan` supplies the rows for the log as it is now (under the
    /// lock); if it fails, nothing is written and its error is returned.
    ///
    /// Each unit runs under its own savepoint: a unit that violates a constraint is rolled back alone and
    /// reported in the returned vector; the audit rows are always written. If the transaction itself fails
    /// (I/O, lock), nothing at all is written and the error is returned.
    async fn commit(
        &self,
        units: &[Vec<Mutation>],
        audit: &AuditAppend,
        replan: Replan<'_>,
    ) -> Result<Vec<UnitResult>, StoreError>;

    // Crypto-shredding.
    /// The tombstone of a deleted tenant.
    async fn tenant_shred(&self, tenant_id: &str) -> Result<Option<TenantShredRow>, StoreError>;
    async fn tenant_shreds(&self) -> Result<Vec<TenantShredRow>, StoreError>;
    /// Moves the write-ahead journal into the database and truncates it, so pages that held
    /// deleted rows survive nowhere on disk. `false` when readers kept it from completing.
    async fn purge_journal(&self) -> Result<bool, StoreError>;

    // Coordination between instances sharing one database.
    /// Takes, renews or keeps the lease `name` for `holder` until `until`, if it is free, already
    /// held by `holder`, or expired at `now`. True when `holder` holds it afterwards.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError>;

    /// True when other instances may write the same database (then in-memory caches must expire).
    fn shared(&self) -> bool {
        false
    }

    /// Liveness probe used by `/healthz`.
    async fn ping(&self) -> Result<(), StoreError>;
}
