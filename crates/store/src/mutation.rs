//! The write path's vocabulary: every change the store can make, applied inside a batch
//! transaction with the audit entries that describe it.

use crate::rows::*;

/// One change to the store. Tenant data changes carry their tenant in the row or the scope.
/// No `Debug`: variants carry password hashes, token hashes, sealed seeds and wrapped keys.
#[derive(Clone)]
pub enum Mutation {
    InsertTenant(TenantRow),
    /// Rewrites a tenant (its instructions), only if it is still the version the request read:
    /// a stale copy (another admin's change, another instance's cache) must not put back a
    /// setting that was changed.
    UpdateTenant {
        row: TenantRow,
        read_updated_at: i64,
    },
    InsertTenantKey(TenantKeyRow),
    /// Records that the tenant's key version `version` is lost (a restore accepted its records);
    /// recording it again changes nothing.
    RecordKeyLoss {
        scope: TenantScope,
        version: i64,
        at: i64,
    },
    InsertUser(UserRow),
    /// Each user change touches only its own columns, so concurrent changes never undo each other.
    SetUserRoles {
        user_id: String,
        roles: String,
        at: i64,
    },
    SetUserStatus {
        user_id: String,
        status: String,
        reason: Option<String>,
        at: i64,
    },
    AcknowledgeConfidentiality {
        user_id: String,
        version: String,
        at: i64,
    },
    RecordLoginFailure {
        user_id: String,
        at: i64,
        locked_until: Option<i64>,
    },
    RecordLoginSuccess {
        user_id: String,
        at: i64,
    },
    /// Inserts a session only if its user is still active with the password hash and the roles
    /// the login verified: a password change, suspension or role change committed during the
    /// login refuses it (a conflict) instead of leaving a session the change meant to end (or
    /// one judged, say for its second factor, under the roles before it).
    InsertSession {
        row: SessionRow,
        verified_password_hash: String,
        verified_roles: String,
    },
    TouchSession {
        token_hash: Vec<u8>,
        at: i64,
    },
    RevokeSession {
        token_hash: Vec<u8>,
        at: i64,
    },
    /// Ends every session of `user_id` and moves their `access_epoch`, so that a change or
    /// disclosure already judged on one of them commits nothing.
    RevokeUserSessions {
        user_id: String,
        at: i64,
    },
    /// Revokes every live session of `user_id` but `keep`, including any created after the
    /// caller listed them.
    RevokeOtherSessions {
        user_id: String,
        keep: Vec<u8>,
        at: i64,
    },
    SetPasswordHash {
        user_id: String,
        password_hash: String,
        at: i64,
    },
    /// Starts (or restarts) a TOTP enrolment; fails with `Conflict` when a confirmed factor exists.
    BeginTotp {
        user_id: String,
        secret: Vec<u8>,
        at: i64,
    },
    /// Confirms the pending factor at `step`, replaces the recovery codes and, when given, turns
    /// the confirming enrolment-only session into a full one. `Conflict` unless a pending factor exists.
    ConfirmTotp {
        user_id: String,
        step: i64,
        recovery_code_hashes: Vec<Vec<u8>>,
        session_token_hash: Option<Vec<u8>>,
        at: i64,
    },
    /// Accepts `step` for the user's confirmed factor; `Conflict` when that step (or a later one) was
    /// already used: the replay check happens inside the transaction.
    UseTotpStep {
        user_id: String,
        step: i64,
    },
    /// Marks an unused recovery code used; `Conflict` when it is unknown or already used.
    UseRecoveryCode {
        user_id: String,
        code_hash: Vec<u8>,
        at: i64,
    },
    /// Removes the user's second factor, confirmed or pending, and its recovery codes;
    /// `Conflict` when there is none.
    ResetTotp {
        user_id: String,
    },
    InsertApiKey(ApiKeyRow),
    TouchApiKey {
        id: String,
        at: i64,
    },
    RevokeApiKey {
        id: String,
        at: i64,
    },
    /// Revokes every session and API key still open, and every operator access grant or request
    /// still open (a restore: credentials and grants revoked after the backup was taken must not
    /// work again).
    RevokeAllCredentials {
        at: i64,
    },
    /// Revokes the API keys `user_id` holds and those they made: a key minted with someone's
    /// authority does not outlive their leaving or their role change.
    RevokeUserApiKeys {
        user_id: String,
        at: i64,
    },
    InsertContact(ContactRow),
    /// Rewrites a contact whole, only if it is still the version the request read (its
    /// `updated_at`): a concurrent update is not silently undone.
    UpdateContact {
        row: ContactRow,
        read_updated_at: i64,
    },
    DeleteContact {
        scope: TenantScope,
        id: String,
    },
    InsertCase(CaseRow),
    /// Rewrites a case whole, only if it is still the version `read`: a request that read it
    /// before a reassignment (or a relink) must not write the old assignee (or contact) back.
    UpdateCase {
        row: CaseRow,
        read: CaseVersion,
    },
    InsertComment(CommentRow),
    /// A scanned file and its sealed content, onto a case that still exists.
    InsertAttachment {
        row: AttachmentRow,
        content: Vec<u8>,
    },
    /// Removes one file of a case; a conflict when it is already gone.
    DeleteAttachment {
        scope: TenantScope,
        case_id: String,
        id: String,
    },
    /// Changes nothing; fails with a conflict unless the user is active and holds one of
    /// `any_of` (role names): an assignment checked against a user read before the batch.
    RequireActiveWithRole {
        user_id: String,
        any_of: Vec<String>,
    },
    /// Changes nothing; fails with a conflict when the user is active: a decision taken on an
    /// account read as not active (nothing to suspend) must not land on one reactivated since.
    RequireInactive {
        user_id: String,
    },
    /// Changes nothing; fails with a conflict when a case is still assigned to the user: after
    /// the releases read before the batch, one assigned meanwhile would keep its reach.
    RequireNoAssignments {
        user_id: String,
    },
    /// Unassigns a case, only if it is still assigned to `assignee_id`.
    ReleaseAssignment {
        scope: TenantScope,
        case_id: String,
        assignee_id: String,
        at: i64,
    },
    /// Suspends for inactivity, only if the account is still active, still inactive since before
    /// `cutoff`, and not the last active platform administrator; otherwise fails with a conflict.
    SuspendInactiveUser {
        user_id: String,
        cutoff: i64,
        at: i64,
    },
    /// Changes nothing; fails with a conflict unless an active platform administrator other than
    /// `user_id` remains: the check before suspending or demoting one, made again inside the batch.
    KeepAnotherPlatformAdmin {
        user_id: String,
    },
    RecordInactivityWarning(InactivityWarningRow),
    InsertAccessReview {
        review: AccessReviewRow,
        lines: Vec<AccessReviewLineRow>,
    },
    /// Records a decision on a line that has none yet; otherwise fails with a conflict.
    DecideAccessReviewLine {
        review_id: String,
        user_id: String,
        decision: String,
        decided_by: String,
        at: i64,
    },
    // ---- breach watch ----
    OpenIncident(IncidentRow),
    /// Adds events to an open incident; a conflict once it is closed.
    ExtendIncident {
        id: String,
        last_index: i64,
        events: i64,
        at: i64,
    },
    /// Closes an open incident; a conflict when it is closed already.
    CloseIncident {
        id: String,
        closed_by: String,
        resolution: String,
        at: i64,
    },
    /// Moves the watch `name` on from `from` (None: it never ran) to `to`; a conflict when it
    /// is no longer at `from`.
    AdvanceWatch {
        name: String,
        from: Option<i64>,
        to: i64,
    },
    // ---- customer lockbox ----
    /// Inserts a request for a case that still exists, only if its requester is active and
    /// their `access_epoch` is still the one read before it was built: a role change or
    /// suspension committed meanwhile revoked the requester's grants, and must not miss this one.
    InsertAccessRequest {
        row: AccessRequestRow,
        access_epoch: i64,
    },
    /// Changes nothing; fails with a conflict when the case has a pending request or a grant
    /// active at `at`: a check made before the batch, made again inside it.
    RequireNoOpenRequest {
        scope: TenantScope,
        case_id: String,
        at: i64,
    },
    /// Approves or denies a request still pending and unexpired at `at`; otherwise a conflict.
    /// An approval's `ends_at` sets the grant's duration too (a tenant's limit may shorten it).
    DecideAccessRequest {
        scope: TenantScope,
        id: String,
        approve: bool,
        by: String,
        at: i64,
        comment: Option<Vec<u8>>,
        ends_at: Option<i64>,
    },
    /// Ends a request that is pending or an active grant at `at`; otherwise a conflict.
    RevokeAccessRequest {
        scope: TenantScope,
        id: String,
        by: String,
        at: i64,
    },
    /// Records the post-incident review of a break-glass grant, once, by someone other than its
    /// requester; otherwise a conflict.
    ReviewBreakGlass {
        scope: TenantScope,
        id: String,
        by: String,
        at: i64,
    },
    /// Ends every pending request and active grant of a user (role change, suspension).
    RevokeUserGrants {
        user_id: String,
        at: i64,
    },
    MarkExpiryNotified {
        id: String,
        at: i64,
    },
    InsertNotification(NotificationRow),
    /// The outcome of one delivery attempt: delivered, retry at `next_attempt_at`, or given up
    /// (`next_attempt_at` None and not delivered).
    /// Puts a pending notification off until `until` without counting an attempt: what stopped
    /// it is this instance's (its keys), not the tenant's endpoint.
    PostponeDelivery {
        id: String,
        until: i64,
    },
    RecordDeliveryAttempt {
        id: String,
        delivered: bool,
        status: Option<i64>,
        at: i64,
        next_attempt_at: Option<i64>,
    },
    /// Sets a tenant's webhook secret where it has none (`replaces: None`), or replaces the one
    /// whose sealed bytes are `replaces`; otherwise a conflict: of two requests that read the same
    /// state, only one secret takes effect, and only its caller is told it did.
    SetWebhookSecret {
        row: WebhookSecretRow,
        replaces: Option<Vec<u8>>,
    },
    // ---- exports ----
    /// Inserts an export only if its requester's `access_epoch` is still the one read before its
    /// records were gathered, its tenant's instructions are still the version read then
    /// (`tenant_version`, the tenant's `updated_at`), within `quota` when given, and, for an
    /// export ready without approval, within `without_approval` (the records its requester
    /// exported without a second person's approval); otherwise a conflict.
    InsertExport {
        row: ExportRow,
        /// The ids of the records a limited export holds; None for an archive (all of them).
        record_ids: Option<Vec<String>>,
        access_epoch: i64,
        tenant_version: i64,
        quota: Option<ExportQuota>,
        without_approval: Option<ExportQuota>,
    },
    /// Approves an export still pending approval and unexpired at `at`, by someone other than its
    /// requester; otherwise a conflict.
    ApproveExport {
        scope: TenantScope,
        id: String,
        by: String,
        at: i64,
        expires_at: i64,
    },
    /// Drops an export's ciphertext and marks it expired (idempotent).
    ExpireExport {
        scope: TenantScope,
        id: String,
    },
    /// Expires every open export of a tenant (ciphertext dropped): its instructions no longer
    /// allow what they were made under.
    ExpireTenantExports {
        scope: TenantScope,
    },
    /// Removes every export of a tenant, rows and ciphertext (seam for tenant deletion: an export is
    /// encrypted to its recipient, not to the tenant's keys, so shredding the keys does not reach it).
    DeleteTenantExports {
        scope: TenantScope,
    },
    /// Refuses the batch (`Conflict`) unless `user_id` is active with `access_epoch`, the one read
    /// before the access the change is built on was judged: a grant revoked, a case reassigned, a
    /// role change or a suspension committed meanwhile moves it. For writes and disclosures that
    /// take a while (a file scanned for malware) between their check and their commit.
    RequireAccessUnchanged {
        user_id: String,
        access_epoch: i64,
    },
    /// Refuses the batch (`Conflict`) unless approved grant `grant_id` is open at `at`: the
    /// service's clock as it assembles the commit, after the slow step a write or disclosure on
    /// the grant took, so that the grant's natural end meanwhile refuses it like a revocation.
    RequireGrantOpen {
        scope: TenantScope,
        grant_id: String,
        at: i64,
    },
    /// Expires every open export of a requester (in one tenant, or everywhere): what they could
    /// read when they built it is no longer theirs once a grant, role or account ends. Bumps the
    /// requester's `access_epoch`, so an export being built meanwhile is not inserted.
    ExpireUserExports {
        user_id: String,
        scope: Option<TenantScope>,
    },
    /// Crypto-shreds a tenant: destroys its wrapped keys, removes every row holding its id (and its
    /// users' sessions, keys and factors), and records a [`TenantShredRow`] with the counts taken
    /// inside the same transaction. `Conflict` when the tenant is already shredded.
    ShredTenant {
        scope: TenantScope,
        request_ref: String,
        at: i64,
    },
    // ---- key rotation and retention ----
    /// Replaces a row's ciphertexts with re-encrypted ones, only where every cell still holds
    /// `old` (a concurrent user write wins; the row is simply left for the next pass).
    ReencryptRow {
        table: CipherTable,
        scope: TenantScope,
        id: String,
        old: Vec<Option<Vec<u8>>>,
        new: Vec<Option<Vec<u8>>>,
        /// Contacts: the e-mail blind index under the new version.
        email_index: Option<Vec<u8>>,
    },
    /// Deletes a key version's wrapped key once no ciphertext uses it and a newer version exists
    /// (both checked inside the transaction); otherwise a conflict.
    RetireTenantKey {
        scope: TenantScope,
        version: i64,
        at: i64,
    },
    /// Root-key rotation: the same tenant key, wrapped under the new root key, if it is still
    /// wrapped as `was` (read before the commit); otherwise a conflict.
    RewrapTenantKey {
        tenant_id: String,
        version: i64,
        was: Vec<u8>,
        wrapped: Vec<u8>,
    },
    /// Root-key rotation: a TOTP seed sealed under the platform key of the new root key, if it is
    /// still sealed as `was`; otherwise a conflict.
    ResealTotp {
        user_id: String,
        was: Vec<u8>,
        secret: Vec<u8>,
    },
    /// Root-key rotation: the store still holds exactly this many wrapped tenant keys and TOTP
    /// seeds, so none was added after the rotation read them (it would stay under the old root).
    RequireRootSealedCounts {
        tenant_keys: i64,
        user_secrets: i64,
    },
    /// Guards a commit that seals under the root key (a tenant key, a second factor): the
    /// database's root key is still the one with `fingerprint`, recorded here if none was yet;
    /// otherwise `RootKeyRotated`.
    RequireRootKey {
        fingerprint: String,
    },
    /// Root-key rotation: the database's root key becomes `now`, if it was `was` or none was
    /// recorded; otherwise `RootKeyRotated`.
    ReplaceRootKey {
        was: String,
        now: String,
    },
    /// Deletes a case, its comments, its files and the operator access requests made for it (their free
    /// text can quote the case) if it is still closed or resolved and unchanged since before
    /// `cutoff`, and no request for it is pending or open at `at` or a break-glass grant on it
    /// awaits its review; otherwise a conflict.
    PurgeCase {
        scope: TenantScope,
        case_id: String,
        cutoff: i64,
        at: i64,
    },
}
