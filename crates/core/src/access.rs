//! Who is asking, and the one place where the service asks the policy and records its answer.

use std::sync::Arc;

use strongroom_policy::{
    AccessRequest, Action, Decision, Denial, FieldClass, PrincipalFacts, Purpose, ResourceFacts,
    Role, TenantFacts,
};
use strongroom_store::{Mutation, TenantScope, UserRow};

use crate::audit::{Actor, AuditDecision, AuditRecord, CommitError, ResourceRef};
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::TenantInstructions;
use crate::{TenantState, Vault};

/// An authenticated caller. `Debug` leaves out the session's token hash: it is the key the
/// session cache and the store look the session up by.
#[derive(Clone)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub roles: Vec<Role>,
    pub tenant_id: Option<String>,
    pub confidentiality_version: Option<String>,
    pub active: bool,
    /// The session may only enrol a second factor (see `authenticate_for_enrolment`).
    pub enrolment_only: bool,
    pub(crate) token_hash: [u8; 32],
    /// Set when the caller authenticated with an API key (its id).
    pub(crate) api_key_id: Option<String>,
    /// When the session's login happened (its password checked); `None` for an API key.
    pub(crate) logged_in_at: Option<i64>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .field("active", &self.active)
            .field("enrolment_only", &self.enrolment_only)
            .field("api_key_id", &self.api_key_id)
            .finish_non_exhaustive()
    }
}

impl Principal {
    pub fn is_staff(&self) -> bool {
        self.roles.iter().any(Role::is_staff)
    }
    pub fn via_api_key(&self) -> bool {
        self.api_key_id.is_some()
    }
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.as_str().to_owned()).collect()
    }
}

/// What the front end read from the request besides the body.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub purpose: Option<Purpose>,
    /// A reference such as a case or ticket number ([`is_reference`]); recorded in the audit log.
    pub justification: Option<String>,
}

pub(crate) fn parse_roles(text: &str) -> Vec<Role> {
    text.split(',').filter_map(|r| r.parse().ok()).collect()
}

impl Vault {
    pub(crate) fn principal_facts(&self, p: &Principal) -> PrincipalFacts {
        PrincipalFacts {
            id: p.user_id.clone(),
            roles: p.roles.clone(),
            tenant_id: p.tenant_id.clone(),
            active: p.active,
            confidentiality_acknowledged: p.confidentiality_version.as_deref()
                == Some(self.settings.confidentiality_version.as_str()),
        }
    }

    pub(crate) fn decide(
        &self,
        p: &Principal,
        action: Action,
        resource: &ResourceFacts,
        tenant: Option<&TenantFacts>,
        purpose: Option<Purpose>,
    ) -> Decision {
        // Backstop: an enrolment-only session never reaches a policy decision as allowed.
        if p.enrolment_only {
            return Decision {
                allowed: false,
                denial: Some(Denial::Forbidden),
                fields: strongroom_policy::FieldMask::none(),
                policy_ids: Vec::new(),
            };
        }
        let principal = self.principal_facts(p);
        self.policy.decide(&AccessRequest {
            principal: &principal,
            action,
            resource,
            tenant,
            purpose,
        })
    }

    /// The policies that keep `class` from the caller in clear, for the entry of a refusal on
    /// that field: the decision's own ids name the permits that allowed the record.
    pub(crate) fn field_refusal_ids(
        &self,
        p: &Principal,
        action: Action,
        resource: &ResourceFacts,
        tenant: Option<&TenantFacts>,
        purpose: Option<Purpose>,
        class: FieldClass,
    ) -> Vec<String> {
        let principal = self.principal_facts(p);
        self.policy.field_refusal_ids(
            &AccessRequest {
                principal: &principal,
                action,
                resource,
                tenant,
                purpose,
            },
            class,
        )
    }

    /// An audit record carrying the caller, purpose and request id.
    pub(crate) fn record(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        action: &'static str,
        tenant_id: Option<&str>,
        resource: Option<ResourceRef>,
    ) -> AuditRecord {
        let mut r = AuditRecord::new(action, &ctx.request_id);
        r.actor = Some(Actor {
            user_id: p.user_id.clone(),
            roles: p.role_names(),
        });
        r.tenant_id = tenant_id.filter(|id| is_id(id)).map(str::to_owned);
        r.resource = resource.map(|mut resource| {
            resource.id = resource.id.filter(|id| is_id(id));
            resource
        });
        r.purpose = ctx.purpose.map(|p| p.as_str());
        // The front end refuses anything else; a caller that did not check records nothing.
        r.justification = ctx.justification.clone().filter(|j| is_reference(j));
        r
    }

    /// The caller's `access_epoch` read from the store, if their account is active with the
    /// roles the principal shows: the principal may come from a cache that a role change or a
    /// suspension has not reached yet. A change that needs the caller's access unchanged carries
    /// the epoch into its commit, which refuses it if the access moved meanwhile.
    pub(crate) async fn current_access_epoch(&self, p: &Principal) -> ServiceResult<Option<i64>> {
        let account = self.store.user(&p.user_id).await?;
        Ok(account
            .filter(|u| {
                let roles = parse_roles(&u.roles);
                u.status == "active"
                    && roles.len() == p.roles.len()
                    && roles.iter().all(|r| p.roles.contains(r))
            })
            .map(|u| u.access_epoch))
    }

    /// The guard of a change or disclosure built on the caller's access, from the epoch read
    /// (by [`Self::current_access_epoch`]) before that access was judged: the commit is refused
    /// if it moved since, or if the grant the record names has reached its end by the time the
    /// commit is assembled. No epoch (the account changed before the read): refused now,
    /// recorded.
    pub(crate) async fn access_guard(
        &self,
        p: &Principal,
        epoch: Option<i64>,
        record: &AuditRecord,
    ) -> ServiceResult<AccessGuard> {
        // A grant is always a tenant's: one without would go unchecked, so it is refused.
        let grant = match (&record.grant_id, record.tenant_id.as_deref()) {
            (Some(grant), Some(tenant)) => Some((grant.clone(), TenantScope::new(tenant))),
            (Some(_), None) => return Err(ServiceError::internal("a grant without its tenant")),
            (None, _) => None,
        };
        match epoch {
            Some(access_epoch) => Ok(AccessGuard {
                user_id: p.user_id.clone(),
                access_epoch,
                grant,
            }),
            None => Err(self
                .refuse_because(
                    record.clone(),
                    "access_changed",
                    ServiceError::unauthenticated(),
                )
                .await),
        }
    }

    /// Commits `records` with `mutations`. When the store refuses the change because the state
    /// moved since the request read it (decided by someone else first, reassigned meanwhile, a
    /// record it links to deleted), the entries are in the log all the same; a second one, the
    /// first record as `not_applied` with `reason` and the same `request_id`, says that nothing
    /// the request recorded was applied. The refusal is still the caller's answer.
    pub(crate) async fn commit_attempt(
        &self,
        records: Vec<AuditRecord>,
        mutations: Vec<Mutation>,
        (not_applied, reason): (&'static str, &'static str),
    ) -> ServiceResult<u64> {
        let attempt = records.first().cloned();
        match self.audit.try_commit(records, mutations).await {
            Ok(index) => Ok(index),
            Err(CommitError::Refused(refusal)) => {
                if let Some(mut kept) = attempt {
                    kept.action = not_applied;
                    kept.decision = AuditDecision::Deny;
                    // The guard checked again in the commit refused, whatever else could have.
                    kept.reason = Some(
                        if refusal.message == strongroom_store::LAST_PLATFORM_ADMIN {
                            "last_platform_admin"
                        } else if refusal.is_root_key_rotated() {
                            "root_key_rotated"
                        } else {
                            reason
                        },
                    );
                    // Nothing the attempt would have answered leaves.
                    kept.fields_disclosed.clear();
                    kept.fields_masked.clear();
                    self.audit.append(kept).await?;
                }
                Err(refusal)
            }
            Err(unavailable) => Err(unavailable.into_service_error()),
        }
    }

    /// Records a policy's refusal and turns it into the error the caller sees (the log's error
    /// instead if the log cannot take it: nothing leaves either way).
    pub(crate) async fn refuse(
        &self,
        mut record: AuditRecord,
        denial: Denial,
        policy_ids: Vec<String>,
    ) -> ServiceError {
        record.policy_ids = policy_ids;
        self.refuse_because(record, denial.code(), denial_error(denial))
            .await
    }

    /// Records a refusal that is not a policy's (a state conflict, a quota, the last admin) with
    /// its own `reason`, and answers with `err`; with the log's error instead if the log cannot
    /// take the refusal: nothing leaves either way.
    pub(crate) async fn refuse_because(
        &self,
        mut record: AuditRecord,
        reason: &'static str,
        err: ServiceError,
    ) -> ServiceError {
        record.decision = AuditDecision::Deny;
        record.reason = Some(reason);
        // A refusal discloses nothing, whatever was gathered before it.
        record.fields_disclosed.clear();
        record.fields_masked.clear();
        match self.audit.append(record).await {
            Ok(_) => err,
            Err(unavailable) => unavailable,
        }
    }

    /// Refuses unless allowed; on success the record carries the deciding policies.
    pub(crate) async fn enforce(
        &self,
        record: &mut AuditRecord,
        decision: &Decision,
    ) -> ServiceResult<()> {
        if decision.allowed {
            record.policy_ids = decision.policy_ids.clone();
            return Ok(());
        }
        let denial = decision.denial.unwrap_or(Denial::Forbidden);
        Err(self
            .refuse(record.clone(), denial, decision.policy_ids.clone())
            .await)
    }

    /// Requests on tenant content must state a purpose.
    pub(crate) async fn require_purpose(
        &self,
        record: &AuditRecord,
        ctx: &RequestContext,
    ) -> ServiceResult<Purpose> {
        match ctx.purpose {
            Some(p) => Ok(p),
            None => Err(self
                .refuse(record.clone(), Denial::PurposeRequired, Vec::new())
                .await),
        }
    }

    /// The start of every operation on tenant content: the audit record, the stated purpose (required)
    /// and the tenant (which must exist). Refusals are recorded.
    pub(crate) async fn open_content(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        action: &'static str,
        tenant_id: &str,
        resource: Option<ResourceRef>,
    ) -> ServiceResult<(AuditRecord, Purpose, Arc<TenantState>)> {
        let record = self.record(p, ctx, action, Some(tenant_id), resource);
        let purpose = self.require_purpose(&record, ctx).await?;
        let tenant = self.tenant_for(&record, tenant_id).await?;
        Ok((record, purpose, tenant))
    }

    /// The tenant, from memory or the store; `not_found` (recorded) when it does not exist.
    pub(crate) async fn tenant_for(
        &self,
        record: &AuditRecord,
        tenant_id: &str,
    ) -> ServiceResult<Arc<TenantState>> {
        match self.tenant_state(tenant_id).await? {
            Some(t) => Ok(t),
            None => Err(self
                .refuse(record.clone(), Denial::NotFound, Vec::new())
                .await),
        }
    }

    pub(crate) async fn tenant_state(
        &self,
        tenant_id: &str,
    ) -> ServiceResult<Option<Arc<TenantState>>> {
        let key = tenant_id.to_owned();
        if let Some(t) = self.tenants.get(&key) {
            return Ok(Some(t));
        }
        let generation = self.tenants.generation();
        let Some(row) = self.store.tenant(tenant_id).await? else {
            return Ok(None);
        };
        let state = Arc::new(tenant_state_from(row)?);
        self.tenants
            .insert_loaded(key, Arc::clone(&state), generation);
        Ok(Some(state))
    }

    pub(crate) fn forget_tenant(&self, tenant_id: &str) {
        self.tenants.invalidate(&tenant_id.to_owned());
    }

    pub(crate) async fn user_row(&self, user_id: &str) -> ServiceResult<Option<Arc<UserRow>>> {
        let key = user_id.to_owned();
        if let Some(u) = self.users.get(&key) {
            return Ok(Some(u));
        }
        let generation = self.users.generation();
        let Some(row) = self.store.user(user_id).await? else {
            return Ok(None);
        };
        let row = Arc::new(row);
        self.users.insert_loaded(key, Arc::clone(&row), generation);
        Ok(Some(row))
    }

    pub(crate) fn forget_user(&self, user_id: &str) {
        self.users.invalidate(&user_id.to_owned());
    }
}

pub(crate) fn tenant_state_from(row: strongroom_store::TenantRow) -> ServiceResult<TenantState> {
    let instructions: TenantInstructions = serde_json::from_str(&row.instructions)
        .map_err(|_| ServiceError::internal("tenant instructions unreadable"))?;
    let facts = TenantFacts {
        id: row.id.clone(),
        active: row.status == "active",
        allowed_purposes: instructions
            .allowed_purposes
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect(),
        operator_access_requires_approval: instructions.operator_access_requires_approval,
    };
    Ok(TenantState {
        row,
        instructions,
        facts,
    })
}

pub(crate) fn denial_error(denial: Denial) -> ServiceError {
    let (code, message) = match denial {
        Denial::NotFound => (ErrorCode::NotFound, "no such resource"),
        Denial::Forbidden => (ErrorCode::Forbidden, "the policy denies this action"),
        Denial::PurposeRequired => (
            ErrorCode::PurposeRequired,
            "requests for customer data must carry an Access-Purpose header",
        ),
        Denial::PurposeNotPermitted => (
            ErrorCode::PurposeNotPermitted,
            "the purpose is not permitted for this role or by the tenant's instructions",
        ),
        Denial::AccessGrantRequired => (
            ErrorCode::AccessGrantRequired,
            "staff access to this tenant's content needs an assignment or an approved grant",
        ),
        Denial::ConfidentialityAcknowledgementRequired => (
            ErrorCode::ConfidentialityAcknowledgementRequired,
            "acknowledge the current confidentiality agreement first",
        ),
        Denial::AccountSuspended => (ErrorCode::AccountSuspended, "the account is suspended"),
    };
    ServiceError::new(code, message)
}

/// Whether `id` has the shape of the ids this vault issues (`new_id`). An id taken from a path
/// or a body goes into the audit log only in that shape: whatever else a caller sends (an email
/// address in place of a contact id) would stay in the log forever. Such a request is answered
/// as before (not found); its entry names no id.
pub(crate) fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `text` is a reference (a case, ticket or letter number) rather than free text: 3 to 64
/// ASCII letters, digits and `-._:/`, starting with a letter or digit, with a digit among them (a
/// number, which `jane.doe` is not). Justifications and deletion request references take this
/// shape because they are written to the audit log, which every verifier reads and no shredding
/// erases: a sentence could carry a name or an address there. Numbers longer than a ticket's are
/// refused too ([`looks_like_a_personal_number`]).
pub fn is_reference(text: &str) -> bool {
    (3..=64).contains(&text.len())
        && text.bytes().any(|b| b.is_ascii_digit())
        && !looks_like_a_personal_number(text)
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '/'))
}

/// A phone, card, bank account or national id number rather than a ticket's: digits and
/// separators alone holding more than 8 digits (`07700-900123`, `078-05-1120`), or more than 12
/// digits anywhere in one number, separators included (`card:4111-1111-1111-1111`, an IBAN
/// written in groups). `INC0012345`, `DPA-2026-0042` and `CASE-20261207-001` stay references. A
/// heuristic against the clear cases, not a proof: the shape rule is what keeps prose out.
fn looks_like_a_personal_number(text: &str) -> bool {
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let letters = text.bytes().any(|b| b.is_ascii_alphabetic());
    let (mut longest, mut number) = (0, 0);
    for b in text.bytes() {
        if b.is_ascii_digit() {
            number += 1;
            longest = longest.max(number);
        } else if b.is_ascii_alphabetic() {
            number = 0;
        }
    }
    (!letters && digits > 8) || longest > 12
}

/// What a change or disclosure built on the caller's access requires of its commit (see
/// [`Vault::access_guard`]).
#[derive(Debug)]
pub(crate) struct AccessGuard {
    user_id: String,
    access_epoch: i64,
    /// The grant named in the access's record: a grant on the case, newest first, which may be
    /// what allowed it. Required open even where something else would allow the access too
    /// (an assignment, a role): a request across the grant's end is refused, and its retry
    /// judged afresh.
    grant: Option<(String, TenantScope)>,
}

impl AccessGuard {
    /// The guard's mutations for a commit assembled at `now`: after any slow step (a scan), so
    /// that a grant's natural end during it is seen, not only a revocation.
    pub(crate) fn at(self, now: i64) -> Vec<Mutation> {
        let mut guard = vec![Mutation::RequireAccessUnchanged {
            user_id: self.user_id,
            access_epoch: self.access_epoch,
        }];
        if let Some((grant_id, scope)) = self.grant {
            guard.push(Mutation::RequireGrantOpen {
                scope,
                grant_id,
                at: now,
            });
        }
        guard
    }
}

#[cfg(test)]
mod tests {
    use strongroom_policy::Role;

    use super::{Principal, is_id, is_reference};

    #[test]
    fn references_are_references_not_text() {
        for reference in [
            "DPA-2026-0042",
            "ticket:4711/a.b_c",
            "CASE-12",
            "INC0012345",
            "CASE-20261207-001",
            "12345",
        ] {
            assert!(is_reference(reference), "{reference:?}");
        }
        for text in [
            "ab",
            "Jane Doe asked by letter",
            "jane@example.com",
            "+44 20 7946 0958",
            "-leading",
            "ticket\u{a0}12",
            "caf\u{e9}-12",
            &"a".repeat(65),
            "jane.doe",
            "Jane_Doe",
            "ticket",
            "07700-900123",
            "078-05-1120",
            "4111-1111-1111-1111",
            "DE89370400440532013000",
            "4111111111111111",
            "card:4111-1111-1111-1111",
            "DE89-3704-0044-0532-0130-00",
        ] {
            assert!(!is_reference(text), "{text:?}");
        }
    }

    #[test]
    fn only_issued_ids_are_recorded() {
        for _ in 0..100 {
            assert!(is_id(&crate::new_id()));
        }
        for other in [
            "",
            "jane.doe@example.com",
            "0190f5a0c1d27b3e8f0a1b2c3d4e5f6",
            "0190f5a0c1d27b3e8f0a1b2c3d4e5f60a",
            "0190F5A0C1D27B3E8F0A1B2C3D4E5F60",
            "0190f5a0-c1d2-7b3e-8f0a-1b2c3d4e",
            "0190f5a0c1d27b3e8f0a1b2c3d4e5f6\u{e9}",
        ] {
            assert!(!is_id(other), "{other:?}");
        }
    }

    #[test]
    fn a_principal_prints_no_token_hash_and_no_username() {
        let principal = Principal {
            user_id: "u-1".into(),
            username: "canary.person".into(),
            roles: vec![Role::Auditor],
            tenant_id: None,
            confidentiality_version: None,
            active: true,
            enrolment_only: false,
            token_hash: [0xEE; 32],
            api_key_id: None,
            logged_in_at: Some(0),
        };
        let printed = format!("{principal:?}");
        assert!(printed.contains("u-1"), "{printed}");
        assert!(!printed.contains("canary"), "{printed}");
        assert!(!printed.contains("238"), "{printed}");
    }
}
