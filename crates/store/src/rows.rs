//! Plain rows as stored. Columns holding personal data are ciphertext (`Vec<u8>`).

/// The tenant a query is confined to. Every tenant-data method takes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantScope(String);

impl TenantScope {
    pub fn new(tenant_id: impl Into<String>) -> Self {
        Self(tenant_id.into())
    }
    pub fn id(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub status: String,
    /// JSON document of the tenant's processing instructions (no personal data).
    pub instructions: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TenantKeyRow {
    pub tenant_id: String,
    pub version: i64,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
}

/// A staff account as a list of people shows it: no credentials. No `Debug`: it holds a name.
#[derive(Clone, sqlx::FromRow)]
pub struct StaffRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    /// Comma-separated role names.
    pub roles: String,
    pub status: String,
}

/// No derived `Debug`: the password hash is credential material, and the username and display
/// name are a person's.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    /// Comma-separated role names.
    pub roles: String,
    pub tenant_id: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub confidentiality_version: Option<String>,
    pub confidentiality_at: Option<i64>,
    pub failed_logins: i64,
    pub last_failed_login_at: Option<i64>,
    pub locked_until: Option<i64>,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set by reactivation, which restarts the inactivity clock.
    #[sqlx(default)]
    pub reactivated_at: Option<i64>,
    /// Bumped each time the user's exports are ended because their access changed.
    #[sqlx(default)]
    pub access_epoch: i64,
}

impl UserRow {
    /// The latest of creation, last successful login and reactivation.
    pub fn last_activity_at(&self) -> i64 {
        self.created_at
            .max(self.last_login_at.unwrap_or(i64::MIN))
            .max(self.reactivated_at.unwrap_or(i64::MIN))
    }
}

/// A case assigned to someone, by its place only (no content).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AssignmentRow {
    pub tenant_id: String,
    pub case_id: String,
}

/// A service principal's API keys at a glance, for governance.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKeyActivityRow {
    pub user_id: String,
    pub live_keys: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InactivityWarningRow {
    pub user_id: String,
    pub last_activity_at: i64,
    pub warned_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccessReviewRow {
    pub id: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// No `Debug`: it holds a username.
#[derive(Clone, sqlx::FromRow)]
pub struct AccessReviewLineRow {
    pub review_id: String,
    pub user_id: String,
    pub username: String,
    pub roles: String,
    pub tenant_id: Option<String>,
    pub status: String,
    pub last_activity_at: i64,
    pub mfa_enrolled: bool,
    pub assignments: i64,
    pub active_grants: i64,
    pub api_keys: i64,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// No `Debug`: its token hash finds the session.
#[derive(Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Opened by a user who must enrol a second factor: only enrolment is allowed.
    pub enrolment_only: bool,
}

/// A user's TOTP factor. `secret` is ciphertext; `confirmed_at` is None while enrolment is pending.
#[derive(Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub user_id: String,
    pub secret: Vec<u8>,
    pub confirmed_at: Option<i64>,
    /// The last accepted time step; codes of this step or earlier are refused.
    pub last_step: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TotpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRow")
            .field("user_id", &self.user_id)
            .field("secret", &"[sealed]")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// An API key of a service principal; `key_hash` is the SHA-256 of the key, never the key (and
/// no `Debug` prints it).
#[derive(Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub key_hash: Vec<u8>,
    pub user_id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// An API key with its principal's roles and tenant, for lists.
#[derive(Clone, sqlx::FromRow)]
pub struct ApiKeyEntry {
    #[sqlx(flatten)]
    pub key: ApiKeyRow,
    pub roles: String,
    pub tenant_id: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ContactRow {
    pub tenant_id: String,
    pub id: String,
    pub name: Vec<u8>,
    pub email: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
    pub notes: Option<Vec<u8>>,
    pub email_index: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A contact row with its reachability for one staff member.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct ContactReachRow {
    #[sqlx(flatten)]
    pub contact: ContactRow,
    pub reachable: bool,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CaseRow {
    pub tenant_id: String,
    pub id: String,
    pub title: Vec<u8>,
    pub description: Option<Vec<u8>>,
    pub severity: String,
    pub status: String,
    pub product: Option<String>,
    pub contact_id: Option<String>,
    pub assignee_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an update of a case requires to be unchanged since the request read the case: the
/// version stamp, and the two columns that give staff their reach.
#[derive(Clone, Debug)]
pub struct CaseVersion {
    pub updated_at: i64,
    pub assignee_id: Option<String>,
    pub contact_id: Option<String>,
}

impl CaseVersion {
    pub fn of(row: &CaseRow) -> Self {
        Self {
            updated_at: row.updated_at,
            assignee_id: row.assignee_id.clone(),
            contact_id: row.contact_id.clone(),
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommentRow {
    pub tenant_id: String,
    pub id: String,
    pub case_id: String,
    pub author_id: String,
    pub body: Vec<u8>,
    pub created_at: i64,
}

/// A file attached to a case, without its content (lists never load it).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttachmentRow {
    pub tenant_id: String,
    pub id: String,
    pub case_id: String,
    pub uploaded_by: String,
    /// Field ciphertext of the file's name.
    pub name: Vec<u8>,
    pub media_type: String,
    /// Bytes of the content in clear.
    pub size: i64,
    /// The scanner that passed the content, and when.
    pub scanner: String,
    pub scanned_at: i64,
    pub created_at: i64,
}

/// Which cases a list returns.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    /// Only the cases assigned to this user, and those of `also_ids`.
    pub assignee_id: Option<String>,
    /// Cases listed with the assignee's whoever holds them (those an active grant opens to the
    /// caller); ignored without `assignee_id`, where every case is listed.
    pub also_ids: Vec<String>,
}

/// A perfect-subtree node of the audit tree: level and index at that level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeKey {
    pub level: u8,
    pub index: u64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditEntryRow {
    pub idx: i64,
    pub tenant_id: Option<String>,
    pub entry: Vec<u8>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CheckpointRow {
    pub size: i64,
    pub note: String,
    pub created_at: i64,
}

/// Audit rows appended by one commit: the entries (consecutive indexes) and the tree nodes they complete.
#[derive(Clone, Debug, Default)]
pub struct AuditAppend {
    pub entries: Vec<AuditEntryRow>,
    pub nodes: Vec<(NodeKey, [u8; 32])>,
}

/// An export (limited or a tenant archive). `ciphertext` is an age file; `None` once expired.
/// A requester's daily export quota: at most `limit` records in exports created since `since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportQuota {
    pub since: i64,
    pub limit: i64,
}

#[derive(Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub id: String,
    pub tenant_id: String,
    pub requester_id: String,
    /// `records` or `tenant_archive`.
    pub kind: String,
    /// `pending_approval`, `ready` or `expired`.
    pub state: String,
    /// JSON, no personal data.
    pub manifest: String,
    pub record_count: i64,
    pub ciphertext: Option<Vec<u8>>,
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
}

impl std::fmt::Debug for ExportRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("record_count", &self.record_count)
            .field("ciphertext_bytes", &self.ciphertext.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// What a crypto-shredding destroyed (identifiers and counts only).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TenantShredRow {
    pub tenant_id: String,
    pub deleted_at: i64,
    pub request_ref: String,
    /// Comma-separated key versions.
    pub key_versions: String,
    /// `kind=count` pairs, comma-separated.
    pub row_counts: String,
}

/// A table holding ciphertext under tenant keys, with its ciphertext columns. The re-encryption
/// job walks all of them; a new table of tenant ciphertext must be added here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherTable {
    Contacts,
    Cases,
    Comments,
    Attachments,
    AccessRequests,
    WebhookSecrets,
}

impl CipherTable {
    pub const ALL: [CipherTable; 6] = [
        CipherTable::Contacts,
        CipherTable::Cases,
        CipherTable::Comments,
        CipherTable::Attachments,
        CipherTable::AccessRequests,
        CipherTable::WebhookSecrets,
    ];

    pub fn table(self) -> &'static str {
        match self {
            CipherTable::Contacts => "contacts",
            CipherTable::Cases => "cases",
            CipherTable::Comments => "comments",
            CipherTable::Attachments => "attachments",
            CipherTable::AccessRequests => "access_requests",
            CipherTable::WebhookSecrets => "webhook_secrets",
        }
    }

    /// The column naming a row within its tenant.
    pub fn key_column(self) -> &'static str {
        match self {
            CipherTable::WebhookSecrets => "tenant_id",
            _ => "id",
        }
    }

    /// The ciphertext columns, which are also the field names bound into the ciphertexts.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            CipherTable::Contacts => &["name", "email", "phone", "address", "notes"],
            CipherTable::Cases => &["title", "description"],
            CipherTable::Comments => &["body"],
            CipherTable::Attachments => &["name", "content"],
            CipherTable::AccessRequests => &["justification", "decision_comment"],
            CipherTable::WebhookSecrets => &["secret"],
        }
    }

    /// Rows a re-encryption batch may hold: a file's content can be megabytes.
    pub fn max_batch(self) -> u32 {
        match self {
            CipherTable::Attachments => 4,
            _ => u32::MAX,
        }
    }

    /// SQL for the key version (4 bytes, big-endian) of `column`'s ciphertext: its header, or
    /// for a file's content the copy kept beside it, since reading the header of a large value
    /// reads all of it.
    pub fn version_sql(self, column: &str) -> String {
        if self.attachment_sealed(column) {
            format!("{column}_version")
        } else {
            format!("substr({column}, 2, 4)")
        }
    }

    /// Whether `column` is sealed under the attachment key rather than the data key.
    pub fn attachment_sealed(self, column: &str) -> bool {
        self == CipherTable::Attachments && column == "content"
    }
}

/// One row's ciphertext cells, in [`CipherTable::columns`] order.
#[derive(Clone, Debug)]
pub struct CipherRow {
    pub id: String,
    pub cells: Vec<Option<Vec<u8>>>,
}

/// How many ciphertexts name one key version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsageRow {
    pub version: i64,
    pub ciphertexts: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RetiredKeyRow {
    pub tenant_id: String,
    pub version: i64,
    pub created_at: i64,
    pub retired_at: i64,
}

/// An operator access request (customer lockbox); once approved, a grant until `ends_at`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccessRequestRow {
    pub id: String,
    pub tenant_id: String,
    pub case_id: String,
    pub requester_id: String,
    pub requester_roles: String,
    pub purpose: String,
    /// Ciphertext (tenant keys).
    pub justification: Vec<u8>,
    /// Comma-separated field class names.
    pub field_classes: String,
    pub duration_minutes: i64,
    pub break_glass: bool,
    /// `pending`, `approved`, `denied` or `revoked`; expiry is derived from the times.
    pub state: String,
    pub created_at: i64,
    pub request_expires_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    /// Ciphertext (tenant keys).
    pub decision_comment: Option<Vec<u8>>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<i64>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub expiry_notified_at: Option<i64>,
}

/// Which access requests a list returns: `state` is the effective state at `now`.
#[derive(Clone, Debug, Default)]
pub struct AccessRequestFilter {
    pub state: Option<String>,
    pub now: i64,
    /// Only this requester's requests ...
    pub requester_id: Option<String>,
    /// ... and, with it, every break-glass grant of the tenant too.
    pub or_break_glass: bool,
}

/// A grant active at the time asked, with the contact of its case.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ActiveGrantRow {
    pub id: String,
    pub case_id: String,
    pub contact_id: Option<String>,
    pub purpose: String,
    pub field_classes: String,
    /// When the grant ends (ms since the epoch).
    pub ends_at: i64,
}

/// One tenant notification in the outbox. `body` holds ids and codes only.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub access_request_id: Option<String>,
    pub body: String,
    pub created_at: i64,
    /// `pending`, `delivered`, `failed` (gave up) or `no_endpoint`.
    pub delivery: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub delivered_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookSecretRow {
    pub tenant_id: String,
    /// Ciphertext (tenant keys).
    pub secret: Vec<u8>,
    pub created_at: i64,
}

/// An incident the breach watch raised: ids and codes only, the evidence a range of log entries.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IncidentRow {
    pub id: String,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub subject_id: Option<String>,
    pub first_index: i64,
    pub last_index: i64,
    pub events: i64,
    pub opened_at: i64,
    pub updated_at: i64,
    /// `open` or `closed`.
    pub state: String,
    pub closed_by: Option<String>,
    pub closed_at: Option<i64>,
    pub resolution: Option<String>,
}

/// An audit entry with its stored leaf hash, as the breach watch reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WatchedEntryRow {
    pub idx: i64,
    pub tenant_id: Option<String>,
    pub entry: Vec<u8>,
    pub leaf_hash: Option<Vec<u8>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::UserRow;

    #[test]
    fn a_user_rows_debug_shows_no_credential_and_no_name() {
        let row = UserRow {
            id: "0123".into(),
            username: "jane.doe".into(),
            display_name: "Jane Doe".into(),
            password_hash: "$argon2id$v=19$secret-hash".into(),
            roles: "support_engineer".into(),
            tenant_id: None,
            status: "active".into(),
            status_reason: None,
            confidentiality_version: None,
            confidentiality_at: None,
            failed_logins: 0,
            last_failed_login_at: None,
            locked_until: None,
            last_login_at: None,
            created_at: 0,
            updated_at: 0,
            reactivated_at: None,
            access_epoch: 0,
        };
        let shown = format!("{row:?}");
        for hidden in ["jane.doe", "Jane Doe", "argon2id", "secret-hash"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
        assert!(
            shown.contains("0123") && shown.contains("support_engineer"),
            "{shown}"
        );
    }
}
