//! Customer lockbox: operators ask for access to one case, the tenant's admins approve or deny, and
//! an approval is a grant until its end. The grant is a fact handed to the policy (`ResourceFacts.
//! grant`); what it opens is decided in Cedar, never here.

use strongroom_policy::{
    Action, Denial, FieldClass, PURPOSE_NOT_FOR_ROLE, Purpose, ResourceFacts, ResourceKind, Role,
};
use strongroom_store::{AccessRequestFilter, AccessRequestRow, Mutation, TenantScope};

use super::grants::effective_state;
use super::notify::NotificationKind;
use crate::access::{Principal, RequestContext, parse_roles};
use crate::audit::{AuditRecord, ResourceRef};
use crate::clock::rfc3339;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::lockbox::{AccessDecision, AccessRequestView, NewAccessRequest, Requester};
use crate::model::{Page, PageRequest};
use crate::{Vault, new_id, shape};

const KIND: &str = "access_request";
const BREAK_GLASS_MAX_MINUTES: u32 = 60;
const DEFAULT_GRANT_MINUTES: u32 = 8 * 60;
const MAX_JUSTIFICATION_CHARS: usize = 500;
const MAX_COMMENT_CHARS: usize = 2_000;

/// The states a list can be filtered on.
pub const ACCESS_REQUEST_STATES: [&str; 5] =
    ["pending", "approved", "denied", "expired", "revoked"];

pub(super) fn request_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: KIND,
        id: Some(id.to_owned()),
    })
}

impl Vault {
    /// Decides a lockbox action on one tenant; the record carries the request id as `grant_id`.
    async fn lockbox_gate(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        (action, audit_action): (Action, &'static str),
        request: Option<&AccessRequestRow>,
        id: &str,
    ) -> ServiceResult<AuditRecord> {
        let mut record = self.record(p, ctx, audit_action, Some(tenant_id), request_ref(id));
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let mut facts =
            ResourceFacts::new(ResourceKind::AccessRequest, id, Some(tenant_id.to_owned()));
        if let Some(r) = request {
            facts.requested_by_principal = r.requester_id == p.user_id;
            record.grant_id = Some(r.id.clone());
        }
        let decision = self.decide(p, action, &facts, Some(&tenant.facts), ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        Ok(record)
    }

    async fn request_row(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        request_id: &str,
        audit_action: &'static str,
    ) -> ServiceResult<AccessRequestRow> {
        match self
            .store
            .access_request(&TenantScope::new(tenant_id), request_id)
            .await?
        {
            Some(row) => Ok(row),
            None => {
                let record = self.record(
                    p,
                    ctx,
                    audit_action,
                    Some(tenant_id),
                    request_ref(request_id),
                );
                Err(self.refuse(record, Denial::NotFound, Vec::new()).await)
            }
        }
    }

    pub async fn request_access(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        input: NewAccessRequest,
    ) -> ServiceResult<AccessRequestView> {
        let id = new_id();
        let audit_action = if input.break_glass {
            "access.break_glass"
        } else {
            "access.request"
        };
        let mut record = self
            .lockbox_gate(
                p,
                ctx,
                tenant_id,
                (Action::RequestAccess, audit_action),
                None,
                &id,
            )
            .await?;
        let tenant = self.tenant_for(&record, tenant_id).await?;
        // Read before the request is built: a role change or suspension committed meanwhile
        // revokes the requester's grants and refuses this one at its commit.
        let Some(access_epoch) = self.current_access_epoch(p).await? else {
            let err = ServiceError::unauthenticated();
            return Err(self.refuse_because(record, "access_changed", err).await);
        };
        let scope = TenantScope::new(tenant_id);
        if self.store.case(&scope, &input.case_id).await?.is_none() {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        }
        let purpose = input
            .purpose
            .parse::<Purpose>()
            .map_err(|_| ServiceError::validation("unknown purpose", &["purpose"]))?;
        // A purpose the tenant never allows, or one the requester's roles may not read for (the
        // grant could be approved and never used), is a refusal like any other, and recorded.
        let opened = ResourceFacts::reachable(
            ResourceKind::Case,
            &input.case_id,
            Some(tenant_id.to_owned()),
        );
        let as_granted = self.decide(
            p,
            Action::ReadCase,
            &opened,
            Some(&tenant.facts),
            Some(purpose),
        );
        let not_for_role = as_granted
            .policy_ids
            .iter()
            .any(|id| id == PURPOSE_NOT_FOR_ROLE);
        if matches!(purpose, Purpose::Marketing | Purpose::Advertising)
            || !tenant.facts.allowed_purposes.contains(&purpose)
            || not_for_role
        {
            return Err(self
                .refuse(record, Denial::PurposeNotPermitted, Vec::new())
                .await);
        }
        let justification = super::required_text(
            Some(&input.justification),
            "justification",
            MAX_JUSTIFICATION_CHARS,
        )?;
        if justification.chars().any(char::is_control) {
            return Err(ServiceError::validation(
                "the justification has control characters",
                &["justification"],
            ));
        }
        let mut classes = Vec::new();
        for c in &input.field_classes {
            let class = c
                .parse::<FieldClass>()
                .map_err(|_| ServiceError::validation("unknown field class", &["field_classes"]))?;
            if !classes.contains(&class) {
                classes.push(class);
            }
        }
        if classes.is_empty() {
            return Err(ServiceError::validation(
                "name at least one field class",
                &["field_classes"],
            ));
        }
        let max_minutes = if input.break_glass {
            BREAK_GLASS_MAX_MINUTES
        } else {
            tenant.instructions.max_grant_hours.saturating_mul(60)
        };
        let minutes = input
            .duration_minutes
            .unwrap_or_else(|| DEFAULT_GRANT_MINUTES.min(max_minutes));
        if minutes == 0 || minutes > max_minutes {
            return Err(ServiceError::validation(
                "duration_minutes must be at least 1 and at most the tenant's maximum",
                &["duration_minutes"],
            ));
        }
        // Break-glass is the security officer's emergency door, for an investigation only.
        if input.break_glass
            && !(p.roles.contains(&Role::SecurityOfficer)
                && purpose == Purpose::SecurityInvestigation)
        {
            return Err(self.refuse(record, Denial::Forbidden, Vec::new()).await);
        }
        let ring = self.keys.keyring(self.store.as_ref(), tenant_id).await?;
        let now = self.now();
        let ttl_ms = i64::try_from(self.settings.access_request_ttl_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let minutes_ms = i64::from(minutes) * 60_000;
        let row = AccessRequestRow {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            case_id: input.case_id.clone(),
            requester_id: p.user_id.clone(),
            requester_roles: p.role_names().join(","),
            purpose: purpose.as_str().to_owned(),
            justification: shape::seal(&ring, KIND, &id, "justification", &justification)?,
            field_classes: classes
                .iter()
                .map(FieldClass::as_str)
                .collect::<Vec<_>>()
                .join(","),
            duration_minutes: i64::from(minutes),
            break_glass: input.break_glass,
            state: if input.break_glass {
                "approved".into()
            } else {
                "pending".into()
            },
            created_at: now,
            request_expires_at: now.saturating_add(ttl_ms),
            decided_by: None,
            decided_at: None,
            decision_comment: None,
            starts_at: input.break_glass.then_some(now),
            ends_at: input.break_glass.then(|| now.saturating_add(minutes_ms)),
            revoked_by: None,
            revoked_at: None,
            reviewed_by: None,
            reviewed_at: None,
            expiry_notified_at: None,
        };
        record.grant_id = Some(id.clone());
        record.records = vec![input.case_id.clone()];
        record.fields_requested = classes.iter().map(FieldClass::as_str).collect();
        let kind = if input.break_glass {
            NotificationKind::BreakGlass
        } else {
            NotificationKind::RequestCreated
        };
        let notification = self.notification(&tenant, kind, &row, now)?;
        let not_applied = if input.break_glass {
            "access.break_glass_not_applied"
        } else {
            "access.request_not_applied"
        };
        self.commit_attempt(
            vec![record],
            vec![
                Mutation::InsertAccessRequest {
                    row: row.clone(),
                    access_epoch,
                },
                notification,
            ],
            (not_applied, "changed_meanwhile"),
        )
        .await?;
        self.request_view(&row, &ring).await
    }

    pub async fn access_requests(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        state: Option<&str>,
        active_grants_only: bool,
        page: &PageRequest,
    ) -> ServiceResult<Page<AccessRequestView>> {
        let audit_action = if active_grants_only {
            "access.list_grants"
        } else {
            "access.list"
        };
        let mut record = self
            .lockbox_gate(
                p,
                ctx,
                tenant_id,
                (Action::ListAccessRequests, audit_action),
                None,
                "",
            )
            .await?;
        if let Some(s) = state
            && !ACCESS_REQUEST_STATES.contains(&s)
        {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "state is pending, approved, denied, expired or revoked",
            ));
        }
        let customer = p.tenant_id.as_deref() == Some(tenant_id);
        let officer = p.is_staff() && p.roles.contains(&Role::SecurityOfficer);
        // The customer sees all of its own; staff their own requests, and a security officer also
        // the tenant's break-glass grants, which a second officer must review. Filtered in the
        // query, so that a page's cursor is a request the caller sees.
        let filter = AccessRequestFilter {
            state: if active_grants_only {
                Some("approved".into())
            } else {
                state.map(str::to_owned)
            },
            now: self.now(),
            requester_id: (!customer).then(|| p.user_id.clone()),
            or_break_glass: officer,
        };
        let rows = self
            .store
            .access_requests(
                &TenantScope::new(tenant_id),
                &filter,
                page.cursor.as_deref(),
                page.limit,
            )
            .await?;
        // The query already filters; checked again here because what it would leak (a
        // justification) is worth the second look.
        let visible: Vec<&AccessRequestRow> = rows
            .iter()
            .filter(|row| customer || row.requester_id == p.user_id || (officer && row.break_glass))
            .collect();
        // The entry names what is shown: each request's justification and comment are opened.
        record.records = visible.iter().map(|row| row.id.clone()).collect();
        self.audit.append(record).await?;
        let visible = &visible;
        let items = self
            .keys
            .with_keyring_async(self.store.as_ref(), tenant_id, |ring| async move {
                let mut items = Vec::with_capacity(visible.len());
                for row in visible {
                    items.push(self.request_view(row, &ring).await?);
                }
                Ok(items)
            })
            .await?;
        let next_cursor = super::next_cursor(&rows, page.limit, |r| r.id.clone());
        Ok(Page { items, next_cursor })
    }

    /// Approves (`approve`) or denies a pending request: the tenant's admins, never the requester.
    pub async fn decide_access(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        request_id: &str,
        approve: bool,
        input: AccessDecision,
    ) -> ServiceResult<AccessRequestView> {
        let audit_action = if approve {
            "access.approve"
        } else {
            "access.deny"
        };
        let row = self
            .request_row(p, ctx, tenant_id, request_id, audit_action)
            .await?;
        let record = self
            .lockbox_gate(
                p,
                ctx,
                tenant_id,
                (Action::ApproveAccess, audit_action),
                Some(&row),
                request_id,
            )
            .await?;
        let now = self.now();
        if effective_state(&row, now) != "pending" {
            let err = ServiceError::new(ErrorCode::Conflict, "the request is no longer pending");
            return Err(self.refuse_because(record, "already_decided", err).await);
        }
        let ring = self.keys.keyring(self.store.as_ref(), tenant_id).await?;
        let comment = super::optional_text(input.comment.as_deref(), "comment", MAX_COMMENT_CHARS)?
            .map(|c| shape::seal(&ring, KIND, request_id, "decision_comment", &c))
            .transpose()?;
        // The tenant's limit when it approves, not when the request was made: one lowered
        // meanwhile (after an incident, say) holds for the grant.
        let Some(tenant) = self.tenant_state(tenant_id).await? else {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        };
        let ceiling = if row.break_glass {
            BREAK_GLASS_MAX_MINUTES
        } else {
            tenant.instructions.max_grant_hours.saturating_mul(60)
        };
        let minutes = row.duration_minutes.min(i64::from(ceiling));
        let ends_at = approve.then(|| now.saturating_add(minutes.saturating_mul(60_000)));
        self.commit_attempt(
            vec![record],
            vec![Mutation::DecideAccessRequest {
                scope: TenantScope::new(tenant_id),
                id: request_id.to_owned(),
                approve,
                by: p.user_id.clone(),
                at: now,
                comment,
                ends_at,
            }],
            ("access.decide_not_applied", "already_decided"),
        )
        .await?;
        self.fresh_view(tenant_id, request_id).await
    }

    /// Ends a pending request or an active grant at once: the tenant's admins or the requester.
    pub async fn revoke_access(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        request_id: &str,
    ) -> ServiceResult<AccessRequestView> {
        let row = self
            .request_row(p, ctx, tenant_id, request_id, "access.revoke")
            .await?;
        let record = self
            .lockbox_gate(
                p,
                ctx,
                tenant_id,
                (Action::RevokeAccess, "access.revoke"),
                Some(&row),
                request_id,
            )
            .await?;
        let now = self.now();
        if !matches!(effective_state(&row, now), "pending" | "approved") {
            let err = ServiceError::new(
                ErrorCode::Conflict,
                "the request is neither pending nor an active grant",
            );
            return Err(self.refuse_because(record, "already_ended", err).await);
        }
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let notification = self.notification(&tenant, NotificationKind::Revoked, &row, now)?;
        self.commit_attempt(
            vec![record],
            vec![
                Mutation::RevokeAccessRequest {
                    scope: TenantScope::new(tenant_id),
                    id: request_id.to_owned(),
                    by: p.user_id.clone(),
                    at: now,
                },
                notification,
                // Exports built while the grant was open go with it.
                Mutation::ExpireUserExports {
                    user_id: row.requester_id.clone(),
                    scope: Some(TenantScope::new(tenant_id)),
                },
            ],
            ("access.revoke_not_applied", "already_ended"),
        )
        .await?;
        self.fresh_view(tenant_id, request_id).await
    }

    /// The post-incident review of a break-glass grant, by a second security officer.
    pub async fn review_break_glass(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        request_id: &str,
    ) -> ServiceResult<AccessRequestView> {
        let row = self
            .request_row(p, ctx, tenant_id, request_id, "access.review")
            .await?;
        let record = self
            .lockbox_gate(
                p,
                ctx,
                tenant_id,
                (Action::ListAccessRequests, "access.review"),
                Some(&row),
                request_id,
            )
            .await?;
        // Four eyes: another security officer than the one who broke the glass.
        if !p.roles.contains(&Role::SecurityOfficer) || row.requester_id == p.user_id {
            return Err(self.refuse(record, Denial::Forbidden, Vec::new()).await);
        }
        if !row.break_glass || row.reviewed_at.is_some() {
            let err = ServiceError::new(
                ErrorCode::Conflict,
                "not a break-glass grant awaiting review",
            );
            return Err(self.refuse_because(record, "already_reviewed", err).await);
        }
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let now = self.now();
        let notification = self.notification(&tenant, NotificationKind::Reviewed, &row, now)?;
        self.commit_attempt(
            vec![record],
            vec![
                Mutation::ReviewBreakGlass {
                    scope: TenantScope::new(tenant_id),
                    id: request_id.to_owned(),
                    by: p.user_id.clone(),
                    at: now,
                },
                notification,
            ],
            ("access.review_not_applied", "already_reviewed"),
        )
        .await?;
        self.fresh_view(tenant_id, request_id).await
    }

    async fn fresh_view(
        &self,
        tenant_id: &str,
        request_id: &str,
    ) -> ServiceResult<AccessRequestView> {
        let row = self
            .store
            .access_request(&TenantScope::new(tenant_id), request_id)
            .await?
            .ok_or_else(ServiceError::not_found)?;
        let row = &row;
        self.keys
            .with_keyring_async(self.store.as_ref(), tenant_id, |ring| async move {
                self.request_view(row, &ring).await
            })
            .await
    }

    async fn request_view(
        &self,
        row: &AccessRequestRow,
        ring: &strongroom_crypto::TenantKeyring,
    ) -> ServiceResult<AccessRequestView> {
        let now = self.now();
        let requester = self.user_row(&row.requester_id).await?;
        // Text sealed under a lost key version (a restore accepted it) shows as absent.
        let comment = match &row.decision_comment {
            Some(ct) => shape::open_readable(ring, KIND, &row.id, "decision_comment", ct)?,
            None => None,
        };
        Ok(AccessRequestView {
            id: row.id.clone(),
            tenant_id: row.tenant_id.clone(),
            case_id: row.case_id.clone(),
            requester: Requester {
                id: row.requester_id.clone(),
                username: requester.as_ref().map(|u| u.username.clone()),
                roles: parse_roles(&row.requester_roles)
                    .iter()
                    .map(|r| r.as_str().to_owned())
                    .collect(),
            },
            purpose: row.purpose.clone(),
            justification: shape::open_readable(
                ring,
                KIND,
                &row.id,
                "justification",
                &row.justification,
            )?,
            field_classes: row.field_classes.split(',').map(str::to_owned).collect(),
            duration_minutes: row.duration_minutes,
            break_glass: row.break_glass,
            state: effective_state(row, now).to_owned(),
            created_at: rfc3339(row.created_at),
            request_expires_at: rfc3339(row.request_expires_at),
            decided_by: row.decided_by.clone(),
            decided_at: row.decided_at.map(rfc3339),
            comment,
            starts_at: row.starts_at.map(rfc3339),
            ends_at: row.ends_at.map(rfc3339),
            revoked_by: row.revoked_by.clone(),
            revoked_at: row.revoked_at.map(rfc3339),
            review_required: row.break_glass && row.reviewed_at.is_none(),
            reviewed_by: row.reviewed_by.clone(),
            reviewed_at: row.reviewed_at.map(rfc3339),
        })
    }
}
