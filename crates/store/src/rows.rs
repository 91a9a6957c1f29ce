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

#[derive(Clone, Debug, sqlx::FromRow)]
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
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// An API key of a service principal; `key_hash` is the SHA-256 of the key, never the key.
#[derive(Clone, Debug, sqlx::FromRow)]
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
#[derive(Clone, Debug, sqlx::FromRow)]
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

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommentRow {
    pub tenant_id: String,
    pub id: String,
    pub case_id: String,
    pub author_id: String,
    pub body: Vec<u8>,
    pub created_at: i64,
}

/// Which cases a list returns.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    pub assignee_id: Option<String>,
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

/// One change to the store. Tenant data changes carry their tenant in the row or the scope.
#[derive(Clone, Debug)]
pub enum Mutation {
    InsertTenant(TenantRow),
    UpdateTenant(TenantRow),
    InsertTenantKey(TenantKeyRow),
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
    InsertSession(SessionRow),
    TouchSession {
        token_hash: Vec<u8>,
        at: i64,
    },
    RevokeSession {
        token_hash: Vec<u8>,
        at: i64,
    },
    RevokeUserSessions {
        user_id: String,
        at: i64,
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
    RevokeUserApiKeys {
        user_id: String,
        at: i64,
    },
    InsertContact(ContactRow),
    UpdateContact(ContactRow),
    DeleteContact {
        scope: TenantScope,
        id: String,
    },
    InsertCase(CaseRow),
    UpdateCase(CaseRow),
    InsertComment(CommentRow),
}
