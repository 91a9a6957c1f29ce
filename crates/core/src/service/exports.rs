//! Exports (issue 7, items 1 and 2): limited exports under per-role quotas and four-eyes approval, and
//! the tenant's return-of-data archive. Always age-encrypted to the recipient; stored as ciphertext
//! only; downloadable by the requester until the export expires.

use serde_json::{Value, json};
use strongroom_policy::{Denial, Purpose, ResourceFacts, ResourceKind, Role};
use strongroom_store::{ExportQuota, ExportRow, Mutation, TenantScope};

use super::export_build::{Gather, content_hash, parse_recipient, seal};
use crate::access::{Principal, RequestContext, denial_error, is_id};
use crate::audit::{AuditDecision, AuditRecord, ResourceRef};
use crate::clock::rfc3339;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::exports::{EXPORT_RECORD_KINDS, ExportScope, ExportView, NewExport};
use crate::model::{CASE_STATUSES, Page, PageRequest};
use crate::{TenantState, Vault, new_id};

const KIND: &str = "export";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn export_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: KIND,
        id: Some(id.to_owned()),
    })
}

fn view(row: &ExportRow) -> ExportView {
    ExportView {
        id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        kind: row.kind.clone(),
        state: row.state.clone(),
        record_count: row.record_count,
        created_at: rfc3339(row.created_at),
        expires_at: rfc3339(row.expires_at),
        approved_by: row.approved_by.clone(),
        approved_at: row.approved_at.map(rfc3339),
        manifest: serde_json::from_str(&row.manifest).unwrap_or(Value::Null),
    }
}

/// The purpose the manifest says the export was made for.
fn manifest_purpose(manifest: &str) -> ServiceResult<Option<String>> {
    let manifest: Value = serde_json::from_str(manifest)
        .map_err(|_| ServiceError::internal("export manifest unreadable"))?;
    Ok(manifest
        .get("purpose")
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// The manifest's `access_ends_at` (ms): when the grants the export was built under end.
fn access_ends_at(manifest: &str) -> ServiceResult<Option<i64>> {
    let manifest: Value = serde_json::from_str(manifest)
        .map_err(|_| ServiceError::internal("export manifest unreadable"))?;
    match manifest.get("access_ends_at") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(crate::clock::parse_rfc3339)
            .map(Some)
            .ok_or_else(|| ServiceError::internal("export manifest: access_ends_at")),
    }
}

fn check_scope(scope: &ExportScope) -> ServiceResult<bool> {
    match scope.kind.as_str() {
        "tenant_archive" => {
            if !scope.record_kinds.is_empty() || scope.case_status.is_some() || scope.ids.is_some()
            {
                return Err(ServiceError::validation(
                    "a tenant archive holds everything; it takes no filters",
                    &["scope"],
                ));
            }
            Ok(true)
        }
        "records" => {
            let kinds_ok = !scope.record_kinds.is_empty()
                && scope
                    .record_kinds
                    .iter()
                    .all(|k| EXPORT_RECORD_KINDS.contains(&k.as_str()));
            if !kinds_ok {
                return Err(ServiceError::validation(
                    "record_kinds must list some of contacts, cases, comments, attachments",
                    &["scope.record_kinds"],
                ));
            }
            if scope.case_status.as_ref().is_some_and(|s| {
                s.is_empty() || s.iter().any(|v| !CASE_STATUSES.contains(&v.as_str()))
            }) {
                return Err(ServiceError::validation(
                    "case_status must list case statuses",
                    &["scope.case_status"],
                ));
            }
            // Ids only, in the shape we issue: the scope is kept in the manifest, which is not
            // encrypted, so free text (a name in place of an id) must not reach it.
            if scope.ids.as_ref().is_some_and(|ids| {
                ids.is_empty() || ids.len() > 10_000 || ids.iter().any(|i| !is_id(i))
            }) {
                return Err(ServiceError::validation(
                    "ids must list between 1 and 10000 record ids",
                    &["scope.ids"],
                ));
            }
            Ok(false)
        }
        _ => Err(ServiceError::validation(
            "scope.kind must be records or tenant_archive",
            &["scope.kind"],
        )),
    }
}

impl Vault {
    /// The caller's daily limit: the highest of its roles' quotas (a role not configured has none).
    fn export_quota(&self, p: &Principal) -> u64 {
        p.roles
            .iter()
            .filter_map(|r| self.settings.export_quota_per_day.get(r.as_str()))
            .copied()
            .max()
            .unwrap_or(0)
    }

    pub async fn create_export(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        input: NewExport,
    ) -> ServiceResult<ExportView> {
        let id = new_id();
        let (mut record, purpose, tenant) = self
            .open_content(p, ctx, "export.create", tenant_id, export_ref(&id))
            .await?;
        self.export_gate(p, &mut record, &tenant, purpose).await?;
        let archive = check_scope(&input.scope)?;
        let recipient = parse_recipient(&input.recipient)?;
        if !tenant.instructions.export_allowed {
            return Err(self
                .refuse_because(
                    record,
                    "export_not_allowed",
                    ServiceError::new(
                        ErrorCode::Forbidden,
                        "the tenant's instructions do not allow exports",
                    ),
                )
                .await);
        }
        // Return of data is the tenant admin's, for its own tenant.
        if archive
            && !(p.roles.contains(&Role::TenantAdmin) && p.tenant_id.as_deref() == Some(tenant_id))
        {
            return Err(self
                .refuse_because(
                    record,
                    "forbidden",
                    ServiceError::new(
                        ErrorCode::Forbidden,
                        "only the tenant's own tenant_admin may export the tenant archive",
                    ),
                )
                .await);
        }

        // Read before the records are: an access withdrawn while they are gathered (a grant
        // revoked, the case reassigned, a role change) changes it, and the export is then not
        // inserted. A role change or suspension committed before this read, which the request's
        // principal (from a cache) may not show yet, refuses it here.
        let Some(access_epoch) = self.current_access_epoch(p).await? else {
            let err = ServiceError::unauthenticated();
            return Err(self.refuse_because(record, "access_changed", err).await);
        };
        let gather = Gather {
            p,
            tenant: &tenant,
            purpose,
            scope: &input.scope,
            archive,
        };
        // Over a copy of the record, so that a second pass (the keyring read again) starts clean.
        let (gather, first_record) = (&gather, &record);
        let (mut record, mut content) = self
            .keys
            .with_keyring_async(self.store.as_ref(), tenant_id, |ring| async move {
                let mut record = first_record.clone();
                let content = self.gather(gather, &ring, &mut record).await?;
                Ok((record, content))
            })
            .await?;
        let count = content.counts.records();
        let now = self.now();
        // Checked here for a precise refusal, and again inside the commit, where concurrent
        // exports (on any instance) are serialised: together they cannot exceed it either.
        let quota = (!archive).then(|| ExportQuota {
            since: now - DAY_MS,
            limit: i64::try_from(self.export_quota(p)).unwrap_or(i64::MAX),
        });
        if let Some(ExportQuota { since, limit }) = quota {
            let used = self.store.exported_records_since(&p.user_id, since).await?;
            let requested = i64::try_from(count).unwrap_or(i64::MAX);
            if used.saturating_add(requested) > limit {
                return Err(self
                    .refuse_because(
                        record,
                        "export_quota_exceeded",
                        ServiceError::new(
                            ErrorCode::Forbidden,
                            "the export would exceed your daily export quota (records per 24 hours)",
                        )
                        .with_details(json!({"quota": limit, "used": used, "requested": count})),
                    )
                    .await);
            }
        } else {
            self.gather_audit(tenant_id, &mut content).await?;
        }
        // Four eyes over the day, not per export: a large export split into small ones needs
        // the second person too. Checked again inside the commit, as the quota is.
        let without_approval = (!archive).then(|| ExportQuota {
            since: now - DAY_MS,
            limit: i64::try_from(self.settings.export_approval_threshold).unwrap_or(i64::MAX),
        });
        let needs_approval = match without_approval {
            Some(ExportQuota { since, limit }) => {
                let used = self
                    .store
                    .records_exported_without_approval_since(&p.user_id, since)
                    .await?;
                used.saturating_add(i64::try_from(count).unwrap_or(i64::MAX)) > limit
            }
            None => false,
        };
        let ttl_ms = i64::try_from(self.settings.export_download_ttl_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        // An export built under a grant ends with the earliest of them, as revocation ends it.
        let expires_at = now
            .saturating_add(ttl_ms)
            .min(content.grants_end_at.unwrap_or(i64::MAX));
        let manifest = json!({
            "export_id": id,
            "tenant_id": tenant_id,
            "kind": if archive { "tenant_archive" } else { "records" },
            "requested_by": { "user_id": p.user_id, "roles": p.role_names() },
            "created_at": rfc3339(now),
            "purpose": purpose.as_str(),
            "scope": input.scope,
            "record_count": count,
            "counts": content.counts,
            "fields_masked": content.masked,
            "fields_withheld": content.withheld,
            "fields_unreadable": content.unreadable,
            "content_sha256": content_hash(&content),
            "recipient": input.recipient.trim(),
            "approval_required": needs_approval,
            "access_ends_at": content.grants_end_at.map(rfc3339),
        });
        // Archives name no record ids (they hold them all); limited exports list what left.
        record.records = if archive {
            Vec::new()
        } else {
            std::mem::take(&mut content.record_ids)
        };
        let record_ids = (!archive).then(|| record.records.clone());
        // Encryption is CPU work: off the async workers. The content is wiped when the task drops it.
        let sealed_manifest = manifest.clone();
        let ciphertext =
            tokio::task::spawn_blocking(move || seal(&recipient, &sealed_manifest, &content))
                .await
                .map_err(|_| ServiceError::internal("export encryption task"))??;
        if needs_approval {
            record.reason = Some("approval_required");
        }
        let row = ExportRow {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            requester_id: p.user_id.clone(),
            kind: if archive { "tenant_archive" } else { "records" }.into(),
            state: if needs_approval {
                "pending_approval"
            } else {
                "ready"
            }
            .into(),
            manifest: manifest.to_string(),
            record_count: i64::try_from(count).unwrap_or(i64::MAX),
            ciphertext: Some(ciphertext),
            created_at: now,
            expires_at,
            approved_by: None,
            approved_at: None,
        };
        let out = view(&row);
        self.commit_attempt(
            vec![record],
            vec![Mutation::InsertExport {
                row,
                record_ids,
                access_epoch,
                tenant_version: tenant.row.updated_at,
                quota,
                without_approval: without_approval.filter(|_| !needs_approval),
            }],
            ("export.create_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(out)
    }

    /// The gate of making or taking an export: may `p` export from this tenant at all, for this
    /// purpose? Refusals recorded from `record`.
    async fn export_gate(
        &self,
        p: &Principal,
        record: &mut AuditRecord,
        tenant: &TenantState,
        purpose: Purpose,
    ) -> ServiceResult<()> {
        let probe = ResourceFacts::reachable(ResourceKind::Case, "", Some(tenant.row.id.clone()));
        let decision = self.decide(
            p,
            strongroom_policy::Action::ExportRecords,
            &probe,
            Some(&tenant.facts),
            Some(purpose),
        );
        self.enforce(record, &decision).await
    }

    /// Whether `p` sees every export of `tenant` (`review_exports`: those who approve them); the
    /// decision's policies are noted in `record` either way.
    fn reviews_exports(
        &self,
        p: &Principal,
        tenant: &TenantState,
        record: &mut AuditRecord,
    ) -> bool {
        let facts = ResourceFacts::new(
            ResourceKind::Tenant,
            &tenant.row.id,
            Some(tenant.row.id.clone()),
        );
        let decision = self.decide(
            p,
            strongroom_policy::Action::ReviewExports,
            &facts,
            Some(&tenant.facts),
            None,
        );
        record.policy_ids = decision.policy_ids;
        decision.allowed
    }

    /// The export, if `p` may see it (its requester, or one who reviews the tenant's exports);
    /// `not_found` (recorded, with the policies that decided) if not.
    async fn export_for(
        &self,
        p: &Principal,
        record: &mut AuditRecord,
        tenant_id: &str,
        export_id: &str,
    ) -> ServiceResult<ExportRow> {
        let tenant = self.tenant_for(&*record, tenant_id).await?;
        let row = self.stored_export(record, tenant_id, export_id).await?;
        if row.requester_id == p.user_id || self.reviews_exports(p, &tenant, record) {
            return Ok(row);
        }
        Err(self
            .refuse(record.clone(), Denial::NotFound, Vec::new())
            .await)
    }

    /// The export as stored, whoever asks; `not_found` (recorded) if there is none.
    async fn stored_export(
        &self,
        record: &AuditRecord,
        tenant_id: &str,
        export_id: &str,
    ) -> ServiceResult<ExportRow> {
        let row = self
            .store
            .export(&TenantScope::new(tenant_id), export_id)
            .await?;
        match row {
            Some(row) => Ok(row),
            None => Err(self
                .refuse(record.clone(), Denial::NotFound, Vec::new())
                .await),
        }
    }

    /// The export's state and manifest (no content).
    pub async fn export(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        export_id: &str,
    ) -> ServiceResult<ExportView> {
        let mut record = self.record(
            p,
            ctx,
            "export.read",
            Some(tenant_id),
            export_ref(export_id),
        );
        let row = self
            .export_for(p, &mut record, tenant_id, export_id)
            .await?;
        self.audit.append(record).await?;
        Ok(view(&row))
    }

    /// All of the tenant's exports for those who review them (`review_exports`), or the caller's
    /// own; newest first.
    pub async fn exports(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        page: &PageRequest,
    ) -> ServiceResult<Page<ExportView>> {
        let mut record = self.record(
            p,
            ctx,
            "export.list",
            Some(tenant_id),
            Some(ResourceRef {
                kind: KIND,
                id: None,
            }),
        );
        if p.tenant_id.as_deref().is_some_and(|t| t != tenant_id) {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        }
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let all = self.reviews_exports(p, &tenant, &mut record);
        // Filtered in the query, so that the cursor is one of the caller's own exports.
        let rows = self
            .store
            .exports(
                &TenantScope::new(tenant_id),
                (!all).then_some(p.user_id.as_str()),
                page.cursor.as_deref(),
                page.limit,
            )
            .await?;
        let next_cursor = super::next_cursor(&rows, page.limit, |r| r.id.clone());
        let items: Vec<ExportView> = rows.iter().map(view).collect();
        record.records = items.iter().map(|v| v.id.clone()).collect();
        self.audit.append(record).await?;
        Ok(Page { items, next_cursor })
    }

    /// Four eyes: a second person approves a large export; never its requester.
    pub async fn approve_export(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        export_id: &str,
    ) -> ServiceResult<ExportView> {
        let mut record = self.record(
            p,
            ctx,
            "export.approve",
            Some(tenant_id),
            export_ref(export_id),
        );
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let row = self.stored_export(&record, tenant_id, export_id).await?;
        // The policy decides who approves (guardrail.self_approval: never the requester). Anyone
        // else refused learns nothing of the export: not found.
        let mut facts =
            ResourceFacts::new(ResourceKind::Tenant, tenant_id, Some(tenant_id.to_owned()));
        facts.requested_by_principal = row.requester_id == p.user_id;
        let decision = self.decide(
            p,
            strongroom_policy::Action::ApproveExport,
            &facts,
            Some(&tenant.facts),
            None,
        );
        if !decision.allowed && !facts.requested_by_principal {
            return Err(self
                .refuse(record, Denial::NotFound, decision.policy_ids)
                .await);
        }
        if !decision.allowed {
            record.policy_ids = decision.policy_ids.clone();
            return Err(self
                .refuse_because(
                    record,
                    decision.denial.unwrap_or(Denial::Forbidden).code(),
                    ServiceError::new(
                        ErrorCode::Forbidden,
                        "an export is approved by someone other than its requester",
                    ),
                )
                .await);
        }
        record.policy_ids = decision.policy_ids;
        let now = self.now();
        if row.state != "pending_approval" || row.expires_at <= now {
            return Err(self
                .refuse_because(
                    record,
                    "conflict",
                    ServiceError::new(ErrorCode::Conflict, "the export is not pending approval"),
                )
                .await);
        }
        let ttl_ms = i64::try_from(self.settings.export_download_ttl_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let mut approved = row.clone();
        approved.state = "ready".into();
        approved.approved_by = Some(p.user_id.clone());
        approved.approved_at = Some(now);
        // The approval restarts the download window, never past the grants the export used.
        approved.expires_at = now
            .saturating_add(ttl_ms)
            .min(access_ends_at(&row.manifest)?.unwrap_or(i64::MAX));
        // Approved only if still pending: of two approvers racing, the second's is recorded as
        // not applied.
        self.commit_attempt(
            vec![record],
            vec![Mutation::ApproveExport {
                scope: TenantScope::new(tenant_id),
                id: export_id.to_owned(),
                by: p.user_id.clone(),
                at: now,
                expires_at: approved.expires_at,
            }],
            ("export.approve_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(view(&approved))
    }

    /// The age file, for the requester only, while the export is ready and unexpired, stating the
    /// purpose it was made for (still one the tenant and the caller's role allow). An expired
    /// export's ciphertext is dropped on the spot.
    pub async fn download_export(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        export_id: &str,
    ) -> ServiceResult<Vec<u8>> {
        let (mut record, purpose, tenant) = self
            .open_content(p, ctx, "export.download", tenant_id, export_ref(export_id))
            .await?;
        // Only its requester takes an export away: nobody else learns here that it exists.
        let row = self
            .store
            .export(&TenantScope::new(tenant_id), export_id)
            .await?
            .filter(|row| row.requester_id == p.user_id);
        let Some(row) = row else {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        };
        // The content was read when the export was made; taking it away is reading it again, so
        // staff must hold the current agreement then too, as for every read of content.
        let customer = p.roles.iter().any(Role::is_customer);
        if !customer && !self.principal_facts(p).confidentiality_acknowledged {
            return Err(self
                .refuse(
                    record,
                    Denial::ConfidentialityAcknowledgementRequired,
                    Vec::new(),
                )
                .await);
        }
        let now = self.now();
        if row.state == "expired" || row.expires_at <= now || row.ciphertext.is_none() {
            let mut rec = record;
            rec.decision = AuditDecision::Deny;
            rec.reason = Some("export_expired");
            self.audit
                .commit(
                    vec![rec],
                    vec![Mutation::ExpireExport {
                        scope: TenantScope::new(tenant_id),
                        id: export_id.to_owned(),
                    }],
                )
                .await?;
            return Err(ServiceError::new(
                ErrorCode::NotFound,
                "the export has expired and its content was deleted",
            ));
        }
        // Taking the content away is a use of it: for the purpose it was gathered for, and only
        // while that purpose is one the caller may state for this tenant's content.
        self.export_gate(p, &mut record, &tenant, purpose).await?;
        if manifest_purpose(&row.manifest)?.as_deref() != Some(purpose.as_str()) {
            return Err(self
                .refuse_because(
                    record,
                    "purpose_not_permitted",
                    ServiceError::new(
                        ErrorCode::PurposeNotPermitted,
                        "an export is downloaded for the purpose it was made for",
                    ),
                )
                .await);
        }
        if row.state != "ready" {
            return Err(self
                .refuse_because(
                    record,
                    "approval_required",
                    ServiceError::new(
                        ErrorCode::Forbidden,
                        "the export awaits approval by a second person",
                    ),
                )
                .await);
        }
        let Some(ciphertext) = row.ciphertext else {
            return Err(denial_error(Denial::NotFound));
        };
        self.audit.append(record).await?;
        Ok(ciphertext)
    }

    /// Drops the ciphertext of every expired export, recording each. Idempotent.
    pub async fn sweep_expired_exports(&self, request_id: &str) -> ServiceResult<usize> {
        let mut done = 0;
        loop {
            let due = self.store.expired_exports(self.now(), 100).await?;
            if due.is_empty() {
                return Ok(done);
            }
            let mut records = Vec::with_capacity(due.len());
            let mut mutations = Vec::with_capacity(due.len());
            for (tenant_id, id) in due {
                let mut r = AuditRecord::new("export.expire", request_id);
                r.tenant_id = Some(tenant_id.clone());
                r.resource = export_ref(&id);
                r.reason = Some("export_expired");
                records.push(r);
                mutations.push(Mutation::ExpireExport {
                    scope: TenantScope::new(&tenant_id),
                    id,
                });
                done += 1;
            }
            self.audit.commit(records, mutations).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(kind: &str) -> ExportScope {
        ExportScope {
            kind: kind.into(),
            record_kinds: Vec::new(),
            case_status: None,
            ids: None,
        }
    }

    #[test]
    fn scopes_are_checked() {
        assert_eq!(check_scope(&scope("tenant_archive")).ok(), Some(true));
        assert!(check_scope(&scope("records")).is_err(), "no kinds");
        assert!(check_scope(&scope("everything")).is_err());
        let mut s = scope("records");
        s.record_kinds = vec!["contacts".into(), "comments".into()];
        assert_eq!(check_scope(&s).ok(), Some(false));
        s.record_kinds.push("users".into());
        assert!(check_scope(&s).is_err());
        s.record_kinds.pop();
        s.case_status = Some(vec!["closed".into()]);
        assert!(check_scope(&s).is_ok());
        s.case_status = Some(vec!["archived".into()]);
        assert!(check_scope(&s).is_err());
        s.case_status = None;
        s.ids = Some(Vec::new());
        assert!(check_scope(&s).is_err());
        let mut a = scope("tenant_archive");
        a.record_kinds = vec!["cases".into()];
        assert!(check_scope(&a).is_err(), "an archive takes no filters");
    }
}
