//! Grants: the active, approved operator-access grants a staff caller holds, as policy facts, and
//! their end when the holder leaves or changes role. Expiry is derived from the stored times.

use std::collections::HashMap;

use strongroom_policy::{FieldClass, GrantFacts, Purpose};
use strongroom_store::{AccessRequestRow, ActiveGrantRow, Mutation, TenantScope};

use super::lockbox::request_ref;
use super::notify::NotificationKind;
use crate::Vault;
use crate::access::Principal;
use crate::audit::AuditRecord;
use crate::error::ServiceResult;

/// The state at `now`: expiry is derived from the times, so it takes effect on the next request.
pub(crate) fn effective_state(row: &AccessRequestRow, now: i64) -> &str {
    match row.state.as_str() {
        "pending" if row.request_expires_at <= now => "expired",
        "approved" if row.ends_at.is_none_or(|end| end <= now) => "expired",
        other => other,
    }
}

fn parse_classes(text: &str) -> Vec<FieldClass> {
    text.split(',').filter_map(|c| c.parse().ok()).collect()
}

/// The caller's active grants in one tenant for the purpose stated, by case and by contact.
#[derive(Default)]
pub(crate) struct Grants {
    by_case: HashMap<String, GrantFacts>,
    by_contact: HashMap<String, GrantFacts>,
    /// When each grant ends, by grant id.
    ends_at: HashMap<String, i64>,
}

impl Grants {
    fn from_rows(rows: Vec<ActiveGrantRow>, purpose: Purpose) -> Self {
        let mut out = Grants::default();
        // Newest first: the newest grant on a record is the one that counts.
        for row in rows {
            if row.purpose != purpose.as_str() {
                continue;
            }
            out.ends_at.insert(row.id.clone(), row.ends_at);
            let facts = GrantFacts {
                id: row.id,
                field_classes: parse_classes(&row.field_classes),
            };
            if let Some(contact) = row.contact_id {
                out.by_contact
                    .entry(contact)
                    .or_insert_with(|| facts.clone());
            }
            out.by_case.entry(row.case_id).or_insert(facts);
        }
        out
    }

    pub(crate) fn for_case(&self, case_id: &str) -> Option<&GrantFacts> {
        self.by_case.get(case_id)
    }

    /// The cases these grants open, in no particular order.
    pub(crate) fn case_ids(&self) -> Vec<String> {
        self.by_case.keys().cloned().collect()
    }

    pub(crate) fn for_contact(&self, contact_id: &str) -> Option<&GrantFacts> {
        self.by_contact.get(contact_id)
    }

    /// When the grant `grant_id` ends (ms), if it is one of these.
    pub(crate) fn ends_at(&self, grant_id: &str) -> Option<i64> {
        self.ends_at.get(grant_id).copied()
    }

    /// The contacts these grants open.
    pub(crate) fn contact_ids(&self) -> impl Iterator<Item = &String> {
        self.by_contact.keys()
    }
}

impl Vault {
    /// The staff caller's active grants in `tenant_id` for `purpose` (none for customers).
    pub(crate) async fn grants_for(
        &self,
        p: &Principal,
        tenant_id: &str,
        purpose: Option<Purpose>,
    ) -> ServiceResult<Grants> {
        let Some(purpose) = purpose.filter(|_| p.is_staff()) else {
            return Ok(Grants::default());
        };
        let rows = self
            .store
            .active_grants(&TenantScope::new(tenant_id), &p.user_id, self.now())
            .await?;
        Ok(Grants::from_rows(rows, purpose))
    }

    /// Effects of a role change or suspension on the user's lockbox: every pending request and
    /// active grant ends, recorded and notified in its tenant.
    pub(crate) async fn revoke_user_grants_effects(
        &self,
        actor: Option<&crate::audit::Actor>,
        request_id: &str,
        user_id: &str,
        reason: &'static str,
        at: i64,
    ) -> ServiceResult<(Vec<AuditRecord>, Vec<Mutation>)> {
        let mut records = Vec::new();
        let mut mutations = vec![
            Mutation::RevokeUserGrants {
                user_id: user_id.to_owned(),
                at,
            },
            Mutation::ExpireUserExports {
                user_id: user_id.to_owned(),
                scope: None,
            },
        ];
        for row in self.store.open_requests_of_user(user_id, at).await? {
            let mut record = AuditRecord::new("access.revoke", request_id);
            record.actor = actor.cloned();
            record.tenant_id = Some(row.tenant_id.clone());
            record.resource = request_ref(&row.id);
            record.grant_id = Some(row.id.clone());
            record.reason = Some(reason);
            records.push(record);
            if let Some(tenant) = self.tenant_state(&row.tenant_id).await? {
                mutations.push(self.notification(&tenant, NotificationKind::Revoked, &row, at)?);
            }
        }
        Ok((records, mutations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, request_expires_at: i64, ends_at: Option<i64>) -> AccessRequestRow {
        AccessRequestRow {
            id: "r".into(),
            tenant_id: "t".into(),
            case_id: "c".into(),
            requester_id: "u".into(),
            requester_roles: "support_engineer".into(),
            purpose: "case-resolution".into(),
            justification: Vec::new(),
            field_classes: "case_content".into(),
            duration_minutes: 1,
            break_glass: false,
            state: state.into(),
            created_at: 0,
            request_expires_at,
            decided_by: None,
            decided_at: None,
            decision_comment: None,
            starts_at: ends_at.map(|_| 0),
            ends_at,
            revoked_by: None,
            revoked_at: None,
            reviewed_by: None,
            reviewed_at: None,
            expiry_notified_at: None,
        }
    }

    #[test]
    fn pending_requests_expire_at_their_deadline() {
        assert_eq!(effective_state(&row("pending", 100, None), 99), "pending");
        assert_eq!(effective_state(&row("pending", 100, None), 100), "expired");
    }

    #[test]
    fn grants_expire_at_their_end() {
        assert_eq!(
            effective_state(&row("approved", 0, Some(60_000)), 59_999),
            "approved"
        );
        assert_eq!(
            effective_state(&row("approved", 0, Some(60_000)), 60_000),
            "expired"
        );
        // An approval without an end is no grant.
        assert_eq!(effective_state(&row("approved", 0, None), 1), "expired");
    }

    #[test]
    fn final_states_stay() {
        for s in ["denied", "revoked"] {
            assert_eq!(effective_state(&row(s, 0, Some(0)), i64::MAX), s);
        }
    }

    #[test]
    fn grants_follow_purpose_and_newest_wins() {
        let g = |id: &str, case: &str, contact: Option<&str>, purpose: &str, classes: &str| {
            ActiveGrantRow {
                id: id.into(),
                case_id: case.into(),
                contact_id: contact.map(str::to_owned),
                purpose: purpose.into(),
                field_classes: classes.into(),
                ends_at: 1_000,
            }
        };
        let grants = Grants::from_rows(
            vec![
                g("new", "c1", Some("k1"), "case-resolution", "case_content"),
                g(
                    "old",
                    "c1",
                    Some("k1"),
                    "case-resolution",
                    "contact_identity",
                ),
                g(
                    "other",
                    "c2",
                    None,
                    "security-investigation",
                    "case_content",
                ),
            ],
            Purpose::CaseResolution,
        );
        let c1 = grants.for_case("c1").map(|g| g.id.as_str());
        assert_eq!(c1, Some("new"));
        assert_eq!(grants.for_contact("k1").map(|g| g.id.as_str()), Some("new"));
        assert!(grants.for_case("c2").is_none());
        assert_eq!(grants.ends_at("new"), Some(1_000));
        assert_eq!(
            grants.ends_at("other"),
            None,
            "another purpose's grant counts for nothing"
        );
    }
}
