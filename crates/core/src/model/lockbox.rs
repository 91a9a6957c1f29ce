//! Wire types of the customer lockbox: operator access requests, grants, notifications.

use serde::{Deserialize, Serialize};

/// `POST /v1/tenants/{tenant_id}/access-requests`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccessRequest {
    pub case_id: String,
    pub purpose: String,
    pub justification: String,
    pub field_classes: Vec<String>,
    /// Default: the tenant's maximum, at most 8 hours; break-glass: at most 60.
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// Emergency access by a security officer (purpose `security-investigation`): active at once,
    /// without approval, at most one hour, flagged until a second security officer reviews it.
    #[serde(default)]
    pub break_glass: bool,
}

/// Body of `approve` and `deny`: the customer's comment, stored encrypted.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessDecision {
    #[serde(default)]
    pub comment: Option<String>,
}

/// Who asked, as the tenant sees it.
#[derive(Clone, Debug, Serialize)]
pub struct Requester {
    pub id: String,
    pub username: Option<String>,
    pub roles: Vec<String>,
}

/// An access request, and once approved the grant it is. `Debug` leaves out the justification and
/// the customer's comment, which are opened from ciphertext and may hold personal data.
#[derive(Clone, Serialize)]
pub struct AccessRequestView {
    pub id: String,
    pub tenant_id: String,
    pub case_id: String,
    pub requester: Requester,
    pub purpose: String,
    pub justification: Option<String>,
    pub field_classes: Vec<String>,
    pub duration_minutes: i64,
    pub break_glass: bool,
    /// `pending`, `approved` (an active grant), `denied`, `expired` or `revoked`.
    pub state: String,
    pub created_at: String,
    /// When a still pending request expires.
    pub request_expires_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// The customer's comment; shown to the tenant's admins and the requester only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<String>,
    /// A break-glass grant without its post-incident review yet.
    pub review_required: bool,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
}

/// Delivery state of one notification.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// `pending`, `delivered`, `failed` (gave up) or `no_endpoint`.
    pub state: String,
    pub attempts: i64,
    pub last_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
}

/// A notification to the tenant, exactly as the webhook carries it (`payload`), with its delivery.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub access_request_id: Option<String>,
    pub created_at: String,
    pub payload: serde_json::Value,
    pub delivery: Delivery,
}

/// The webhook signing secret, shown when created or rotated and to the tenant's admins on request.
#[derive(Clone, Serialize)]
pub struct WebhookSecret {
    pub secret: String,
    pub created_at: String,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("secret", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl Drop for WebhookSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl std::fmt::Debug for AccessRequestView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessRequestView")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("case_id", &self.case_id)
            .field("purpose", &self.purpose)
            .field("state", &self.state)
            .field("break_glass", &self.break_glass)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewAccessRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccessRequest")
            .field("case_id", &self.case_id)
            .field("purpose", &self.purpose)
            .field("justification", &"[redacted]")
            .field("field_classes", &self.field_classes)
            .field("duration_minutes", &self.duration_minutes)
            .field("break_glass", &self.break_glass)
            .finish()
    }
}

impl std::fmt::Debug for AccessDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessDecision")
            .field("comment", &self.comment.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A case the caller reaches, in any tenant: assigned to them, under an active grant of theirs, or
/// under a request of theirs still pending. Ids and times only.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReach {
    pub tenant_id: String,
    pub case_id: String,
    /// `assignment`, `grant` or `pending_request`.
    pub reach: &'static str,
    /// The access request, for `grant` and `pending_request`.
    pub request_id: Option<String>,
    /// When the grant ends, or the pending request lapses.
    pub until: Option<String>,
}
