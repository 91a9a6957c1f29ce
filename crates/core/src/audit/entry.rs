//! Audit entries and their canonical bytes.
//!
//! Encoding, version 1: compact JSON (RFC 8259) of one object whose members appear in exactly the order
//! below, with no insignificant white space, integers only (no floats), and strings escaped as
//! `serde_json` does (only `"`, `\` and control characters are escaped). Absent values are `null`,
//! lists keep their given order. The leaf hashed into the tree is exactly these bytes.
//!
//! `{"v":1,"index":…,"time":"…","actor":…,"action":"…","tenant_id":…,"resource":…,"records":[…],
//!   "fields_requested":[…],"fields_disclosed":[…],"fields_masked":[…],"purpose":…,"justification":…,
//!   "grant_id":…,"decision":"allow"|"deny","reason":…,"policy_ids":[…],"request_id":"…"}`
//!
//! An entry never holds a personal-data value: only identifiers, field names, purposes, codes and
//! references (`justification` has the shape of `crate::is_reference`).

use serde::Serialize;

pub const ENTRY_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub roles: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ResourceRef {
    pub kind: &'static str,
    pub id: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditDecision {
    Allow,
    Deny,
}

/// What happened, before the log gives it an index and a time.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub actor: Option<Actor>,
    pub action: &'static str,
    pub tenant_id: Option<String>,
    pub resource: Option<ResourceRef>,
    /// Ids of the records a list or search returned.
    pub records: Vec<String>,
    pub fields_requested: Vec<&'static str>,
    pub fields_disclosed: Vec<&'static str>,
    pub fields_masked: Vec<&'static str>,
    pub purpose: Option<&'static str>,
    pub justification: Option<String>,
    pub grant_id: Option<String>,
    pub decision: AuditDecision,
    /// An API.md error code for denials, or a short event code.
    pub reason: Option<&'static str>,
    pub policy_ids: Vec<String>,
    pub request_id: String,
}

impl AuditRecord {
    /// A record of `action` with everything else empty; callers fill in what applies.
    pub fn new(action: &'static str, request_id: &str) -> Self {
        Self {
            actor: None,
            action,
            tenant_id: None,
            resource: None,
            records: Vec::new(),
            fields_requested: Vec::new(),
            fields_disclosed: Vec::new(),
            fields_masked: Vec::new(),
            purpose: None,
            justification: None,
            grant_id: None,
            decision: AuditDecision::Allow,
            reason: None,
            policy_ids: Vec::new(),
            request_id: request_id.to_owned(),
        }
    }
}

#[derive(Serialize)]
struct Canonical<'a> {
    v: u32,
    index: u64,
    time: &'a str,
    actor: &'a Option<Actor>,
    action: &'a str,
    tenant_id: &'a Option<String>,
    resource: &'a Option<ResourceRef>,
    records: &'a [String],
    fields_requested: &'a [&'static str],
    fields_disclosed: &'a [&'static str],
    fields_masked: &'a [&'static str],
    purpose: &'a Option<&'static str>,
    justification: &'a Option<String>,
    grant_id: &'a Option<String>,
    decision: AuditDecision,
    reason: &'a Option<&'static str>,
    policy_ids: &'a [String],
    request_id: &'a str,
}

/// The canonical bytes of `record` at `index`, logged at `time` (RFC 3339).
pub fn encode(record: &AuditRecord, index: u64, time: &str) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Canonical {
        v: ENTRY_VERSION,
        index,
        time,
        actor: &record.actor,
        action: record.action,
        tenant_id: &record.tenant_id,
        resource: &record.resource,
        records: &record.records,
        fields_requested: &record.fields_requested,
        fields_disclosed: &record.fields_disclosed,
        fields_masked: &record.fields_masked,
        purpose: &record.purpose,
        justification: &record.justification,
        grant_id: &record.grant_id,
        decision: record.decision,
        reason: &record.reason,
        policy_ids: &record.policy_ids,
        request_id: &record.request_id,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_stable_and_ordered() {
        let mut r = AuditRecord::new("contact.read", "req-1");
        r.actor = Some(Actor {
            user_id: "u1".into(),
            roles: vec!["tenant_admin".into()],
        });
        r.fields_requested = vec!["name", "email"];
        let bytes = encode(&r, 7, "2026-01-01T00:00:00.000Z").unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(
            r#"{"v":1,"index":7,"time":"2026-01-01T00:00:00.000Z","actor":{"user_id":"u1""#
        ));
        assert!(text.ends_with(r#""policy_ids":[],"request_id":"req-1"}"#));
        assert_eq!(bytes, encode(&r, 7, "2026-01-01T00:00:00.000Z").unwrap());
    }
}
