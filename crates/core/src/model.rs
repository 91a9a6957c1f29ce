//! Domain and wire types shared by every front end (HTTP, CLI, console).
//!
//! Request types reject unknown fields; response types never carry secrets (password hashes, tokens
//! other than the one just issued).

use serde::{Deserialize, Serialize};
pub use strongroom_policy::{FieldClass, Purpose, Role, Visibility};

pub mod exports;
pub mod governance;
pub mod keys;
pub mod lockbox;

/// A tenant's processing instructions: they bound every access to its data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantInstructions {
    pub allowed_purposes: Vec<String>,
    pub retention_days: u32,
    pub operator_access_requires_approval: bool,
    pub export_allowed: bool,
    pub region: String,
    /// Customer accounts inactive this long are suspended; the lower of this and the platform's
    /// limit applies.
    #[serde(default)]
    pub customer_inactivity_days: Option<u32>,
    /// Customer lockbox: the longest grant an operator may ask for, in hours.
    #[serde(default = "default_max_grant_hours")]
    pub max_grant_hours: u32,
    /// Where lockbox notifications are delivered as signed webhooks (Standard Webhooks); none when
    /// absent. `https://`, or `http://` to a loopback address only.
    #[serde(default)]
    pub webhook_url: Option<String>,
}

fn default_max_grant_hours() -> u32 {
    8
}

impl Default for TenantInstructions {
    fn default() -> Self {
        Self {
            allowed_purposes: Purpose::ALL
                .iter()
                .filter(|p| !matches!(p, Purpose::Marketing | Purpose::Advertising))
                .map(|p| p.as_str().to_owned())
                .collect(),
            retention_days: 365,
            operator_access_requires_approval: false,
            export_allowed: true,
            region: "eu".into(),
            customer_inactivity_days: None,
            max_grant_hours: default_max_grant_hours(),
            webhook_url: None,
        }
    }
}

/// Partial instructions, for creation (missing = default) and PATCH (missing = unchanged).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstructionsPatch {
    pub allowed_purposes: Option<Vec<String>>,
    pub retention_days: Option<u32>,
    pub operator_access_requires_approval: Option<bool>,
    pub export_allowed: Option<bool>,
    pub region: Option<String>,
    pub customer_inactivity_days: Option<u32>,
    pub max_grant_hours: Option<u32>,
    /// `""` removes the endpoint.
    pub webhook_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub name: String,
    #[serde(default)]
    pub instructions: InstructionsPatch,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub status: String,
    pub instructions: TenantInstructions,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub roles: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SuspendReason {
    Left,
    RoleChange,
    Inactivity,
    Other,
}

impl SuspendReason {
    /// The reason named in a request; anything else is a `validation_failed` on `reason`.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Left, Self::RoleChange, Self::Inactivity, Self::Other]
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::RoleChange => "role_change",
            Self::Inactivity => "inactivity",
            Self::Other => "other",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suspension {
    /// Text, not [`SuspendReason`], so that a reason outside the list is a well-formed request
    /// with an invalid value (422 naming `reason`), not a body that fails to parse (400).
    pub reason: String,
}

/// A staff member who can be assigned cases (`GET /v1/assignees`).
#[derive(Clone, Serialize)]
pub struct Assignee {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<String>,
    /// Open and pending cases assigned to it now, across tenants.
    pub open_cases: i64,
}

/// A user as the API shows it.
#[derive(Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub confidentiality_acknowledged_version: Option<String>,
    pub last_login_at: Option<String>,
    pub created_at: String,
    /// Which second factors are confirmed; shown on `/v1/me` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaStatus>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct MfaStatus {
    pub totp: bool,
}

/// The answer to starting TOTP enrolment: the seed, shown once. Wiped on drop; never printed.
#[derive(Serialize)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

impl Drop for TotpEnrolment {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.secret.zeroize();
        self.otpauth_uri.zeroize();
        self.qr_svg.zeroize();
    }
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmation {
    pub code: String,
}

impl std::fmt::Debug for TotpConfirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpConfirmation([redacted])")
    }
}

/// Recovery codes, shown once at confirmation. Wiped on drop; never printed.
#[derive(Serialize)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

impl Drop for RecoveryCodes {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.recovery_codes.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodes([redacted])")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange([redacted])")
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct LoginUser {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
}

/// A new session: `token` is a live bearer token. Wiped on drop; never printed.
#[derive(Serialize)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: String,
    pub user: LoginUser,
    /// The account must enrol a second factor: until it confirms one, this session may only call
    /// `/v1/me`, `/v1/me/mfa/*` and `/v1/auth/logout`.
    pub mfa_enrolment_required: bool,
}

impl Drop for LoginResponse {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.token.zeroize();
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    pub version: String,
    pub text: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    pub version: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AcknowledgementReceipt {
    pub version: String,
    pub acknowledged_at: String,
}

/// One of the caller's sessions. `id` is a digest of the token's hash: it names the session but
/// authenticates nothing.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub current: bool,
}

/// How many sessions or keys a revocation ended.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Revoked {
    pub revoked: u64,
}

/// `POST /v1/api-keys`. Everything is optional here so that a missing value is a
/// `validation_failed` naming the field rather than a parse error.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub expires_at: Option<String>,
}

/// An API key as lists show it: never the key or its hash.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The service principal the key authenticates as.
    pub user_id: String,
    /// The user who made it; the key is revoked when they are suspended or their roles change.
    pub created_by: String,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
    pub status: &'static str,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A key just created: the only time `key` is ever shown.
#[derive(Clone, Serialize)]
pub struct CreatedApiKey {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
    pub expires_at: String,
    pub created_at: String,
    pub key: String,
}

impl Drop for CreatedApiKey {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.key.zeroize();
    }
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Contact fields in API order; every one is personal data.
pub const CONTACT_FIELDS: [&str; 5] = ["name", "email", "phone", "address", "notes"];

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub notes: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub product: Option<String>,
    pub contact_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub user_id: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    pub body: String,
}

/// A file for a case. `content` is standard base64 (JSON in and out, API.md "Conventions").
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    pub name: String,
    pub media_type: Option<String>,
    pub content: String,
}

pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
pub const CASE_STATUSES: [&str; 4] = ["open", "pending", "resolved", "closed"];

/// A page of a list: `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A record shaped for its reader: revealed fields in clear, masked ones replaced, withheld ones absent,
/// and `_access` saying which.
pub type RecordView = serde_json::Map<String, serde_json::Value>;

/// Paging parameters, already validated by the front end (1..=500).
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// Whether `cursor` could have come from a list's `next_cursor`: these lists page by record
    /// id, so anything else (an empty string included) is a bad query parameter, not an empty page.
    #[must_use]
    pub fn is_cursor(cursor: &str) -> bool {
        crate::access::is_id(cursor)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: 50,
            cursor: None,
        }
    }
}

/// Personal data never reaches a log or a panic message through `Debug`: only which fields are set.
macro_rules! presence_debug {
    ($ty:ident { $($field:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field.as_ref().map(|_| "[set]")))*
                    .finish()
            }
        }
    };
}
presence_debug!(ContactInput {
    name,
    email,
    phone,
    address,
    notes
});
presence_debug!(CaseInput {
    title,
    description,
    severity,
    status,
    product,
    contact_id
});

impl std::fmt::Debug for CommentInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommentInput")
            .field("body", &"[redacted]")
            .finish()
    }
}

/// Secrets never reach a log through `Debug`.
impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &"[redacted]")
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .field("password", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A username is a person's, and often the password typed into the wrong box.
        f.debug_struct("Credentials")
            .field("username", &"[redacted]")
            .field("password", &"[redacted]")
            .field("totp", &self.totp.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .field("mfa_enrolment_required", &self.mfa_enrolment_required)
            .finish()
    }
}

/// Users' `Debug` leaves out their usernames and display names: a person's, and kept out of logs.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginUser")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assignee")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("open_cases", &self.open_cases)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let c = Credentials {
            username: "jane.doe@customer.example".into(),
            password: "hunter2-secret".into(),
            totp: Some("123456".into()),
        };
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2-secret") && !text.contains("123456"));
        assert!(!text.contains("jane.doe"), "{text}");
        let r = LoginResponse {
            token: "sr_secret_token".into(),
            expires_at: String::new(),
            user: LoginUser {
                id: "i".into(),
                username: "jane.doe@customer.example".into(),
                roles: vec![],
                tenant_id: None,
            },
            mfa_enrolment_required: false,
        };
        assert!(!format!("{r:?}").contains("sr_secret_token"));
        assert!(!format!("{r:?}").contains("jane.doe"));
    }
}
