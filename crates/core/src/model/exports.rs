//! Exports: what a caller asks for and what the API shows of one (never its content).

use serde::{Deserialize, Serialize};

/// The record kinds a limited export may hold.
pub const EXPORT_RECORD_KINDS: [&str; 4] = ["contacts", "cases", "comments", "attachments"];

/// `POST /v1/tenants/{tenant_id}/exports`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExport {
    pub scope: ExportScope,
    /// An age X25519 recipient (`age1…`): the only key that can open the export.
    pub recipient: String,
}

/// What to export. `kind` is `records` (a limited export) or `tenant_archive` (everything of the
/// tenant, for its admin: return of data).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExportScope {
    pub kind: String,
    /// `records` only: any of `contacts`, `cases`, `comments`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_kinds: Vec<String>,
    /// `records` only: keep cases (and their comments) with one of these statuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_status: Option<Vec<String>>,
    /// `records` only: keep contacts and cases with one of these ids (comments follow their case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
}

/// An export as the API shows it: its state and manifest, never its content.
#[derive(Clone, Debug, Serialize)]
pub struct ExportView {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    /// `pending_approval`, `ready` or `expired`.
    pub state: String,
    pub record_count: i64,
    pub created_at: String,
    /// Download (or approval) is possible until then.
    pub expires_at: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    /// Who, when, purpose, scope, counts, SHA-256 of the content: no personal data.
    pub manifest: serde_json::Value,
}
