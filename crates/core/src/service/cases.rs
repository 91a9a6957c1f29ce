//! Cases: title and description are ciphertext; the rest is metadata. Their comments and files
//! are in `comments` and `attachments`, behind `case_gate`.

use strongroom_crypto::TenantKeyring;
use strongroom_policy::{
    Action, Denial, FieldClass, ResourceFacts, ResourceKind, Role, Visibility,
};
use strongroom_store::{CaseFilter, CaseRow, CaseVersion, Mutation, TenantScope};

use super::assignees::{ASSIGNABLE, takes_cases};
use super::case_gate::case_facts;
use super::grants::Grants;
use super::{MAX_FIELD_CHARS, optional_text, required_text};
use crate::access::{Principal, RequestContext};
use crate::audit::{AuditRecord, ResourceRef};
use crate::error::{ServiceError, ServiceResult};
use crate::model::{
    Assignment, CASE_STATUSES, CaseInput, Page, PageRequest, RecordView, SEVERITIES,
};
use crate::{TenantState, Vault, new_id, shape};

const KIND: &str = "case";

/// The cases a list shows `p`: staff other than supervisors the cases assigned to them and those
/// their active grants open; supervisors triage the whole queue (metadata only unless assigned),
/// and customers see their tenant's.
pub(super) fn reachable_cases(p: &Principal, grants: &Grants) -> CaseFilter {
    let own_only = p.is_staff() && !p.roles.contains(&Role::SupportSupervisor);
    CaseFilter {
        assignee_id: own_only.then(|| p.user_id.clone()),
        also_ids: if own_only {
            grants.case_ids()
        } else {
            Vec::new()
        },
    }
}

pub(super) fn case_ref(id: Option<&str>) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: KIND,
        id: id.map(str::to_owned),
    })
}

fn one_of(
    value: Option<&str>,
    allowed: &[&str],
    field: &'static str,
) -> ServiceResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(_) => Err(ServiceError::validation(
            "value is not one of the allowed ones",
            &[field],
        )),
    }
}

impl Vault {
    /// The caller's view of a case it is writing; the caller discloses it into the record it then
    /// commits with the write, so the answer is audited like a read.
    fn case_shaped_for(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        (tenant, grants): (&TenantState, &Grants),
        ring: &TenantKeyring,
        row: &CaseRow,
    ) -> ServiceResult<shape::Shaped> {
        let decision = self.decide(
            p,
            Action::ReadCase,
            &case_facts(p, row, grants),
            Some(&tenant.facts),
            ctx.purpose,
        );
        shape::case(ring, row, &decision.fields)
    }

    pub async fn read_case(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
    ) -> ServiceResult<RecordView> {
        let (mut gate, decision) = self
            .case_gate(p, ctx, tenant_id, case_id, Action::ReadCase, "case.read")
            .await?;
        let shaped = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                shape::case(ring, &gate.row, &decision.fields)
            })
            .await?;
        let view = shape::disclose(&mut gate.record, shaped);
        self.audit.append(gate.record).await?;
        Ok(view)
    }

    pub async fn list_cases(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        page: &PageRequest,
    ) -> ServiceResult<Page<RecordView>> {
        let (mut record, purpose, tenant) = self
            .open_content(p, ctx, "case.list", tenant_id, case_ref(None))
            .await?;
        let probe = ResourceFacts::reachable(ResourceKind::Case, "", Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::ListCases,
            &probe,
            Some(&tenant.facts),
            Some(purpose),
        );
        self.enforce(&mut record, &decision).await?;
        let grants = self.grants_for(p, tenant_id, Some(purpose)).await?;
        let filter = reachable_cases(p, &grants);
        let rows = self
            .store
            .cases(
                &TenantScope::new(tenant_id),
                &filter,
                page.cursor.as_deref(),
                page.limit,
            )
            .await?;
        // Over a copy of the record, so that a second pass (the keyring read again) starts clean.
        let (record, items) = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                let mut record = record.clone();
                let mut items = Vec::with_capacity(rows.len());
                for row in &rows {
                    let facts = case_facts(p, row, &grants);
                    let d = self.decide(
                        p,
                        Action::ReadCase,
                        &facts,
                        Some(&tenant.facts),
                        Some(purpose),
                    );
                    if !d.allowed {
                        continue;
                    }
                    if record.grant_id.is_none() {
                        record.grant_id = facts.grant.map(|g| g.id);
                    }
                    record.records.push(row.id.clone());
                    items.push(shape::disclose(
                        &mut record,
                        shape::case(ring, row, &d.fields)?,
                    ));
                }
                Ok((record, items))
            })
            .await?;
        self.audit.append(record).await?;
        let next_cursor = super::next_cursor(&rows, page.limit, |r| r.id.clone());
        Ok(Page { items, next_cursor })
    }

    async fn check_contact_ref(
        &self,
        tenant_id: &str,
        contact_id: Option<&str>,
    ) -> ServiceResult<()> {
        if let Some(cid) = contact_id
            && self
                .store
                .contact(&TenantScope::new(tenant_id), cid)
                .await?
                .is_none()
        {
            return Err(ServiceError::validation(
                "no such contact in this tenant",
                &["contact_id"],
            ));
        }
        Ok(())
    }

    pub async fn create_case(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        input: CaseInput,
    ) -> ServiceResult<RecordView> {
        let id = new_id();
        let (mut record, purpose, tenant) = self
            .open_content(p, ctx, "case.create", tenant_id, case_ref(Some(&id)))
            .await?;
        let resource = ResourceFacts::new(ResourceKind::Case, &id, Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::CreateCase,
            &resource,
            Some(&tenant.facts),
            Some(purpose),
        );
        self.enforce(&mut record, &decision).await?;

        let title = required_text(input.title.as_deref(), "title", 1_000)?;
        let description =
            optional_text(input.description.as_deref(), "description", MAX_FIELD_CHARS)?;
        let severity = one_of(input.severity.as_deref(), &SEVERITIES, "severity")?
            .unwrap_or_else(|| "medium".into());
        let status = one_of(input.status.as_deref(), &CASE_STATUSES, "status")?
            .unwrap_or_else(|| "open".into());
        let product = optional_text(input.product.as_deref(), "product", 200)?;
        let contact_id = optional_text(input.contact_id.as_deref(), "contact_id", 64)?;
        self.check_contact_ref(tenant_id, contact_id.as_deref())
            .await?;

        let ring = self.keys.keyring(self.store.as_ref(), tenant_id).await?;
        let now = self.now();
        let row = CaseRow {
            tenant_id: tenant_id.to_owned(),
            id: id.clone(),
            title: shape::seal(&ring, KIND, &id, "title", &title)?,
            description: description
                .as_deref()
                .map(|d| shape::seal(&ring, KIND, &id, "description", d))
                .transpose()?,
            severity,
            status,
            product,
            contact_id,
            assignee_id: None,
            created_at: now,
            updated_at: now,
        };
        record.fields_requested = vec![
            "title",
            "description",
            "severity",
            "status",
            "product",
            "contact_id",
        ];
        let view = shape::disclose(
            &mut record,
            self.case_shaped_for(p, ctx, (&tenant, &Grants::default()), &ring, &row)?,
        );
        self.commit_attempt(
            vec![record],
            vec![Mutation::InsertCase(row.clone())],
            ("case.create_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(view)
    }

    pub async fn update_case(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        input: CaseInput,
    ) -> ServiceResult<RecordView> {
        let epoch = self.current_access_epoch(p).await?;
        let (mut gate, decision) = self
            .case_gate(
                p,
                ctx,
                tenant_id,
                case_id,
                Action::UpdateCase,
                "case.update",
            )
            .await?;
        let content_change = input.title.is_some() || input.description.is_some();
        // Staff reach a contact through the cases assigned to them, so a staff member who could re-point
        // a case at another contact could reach any contact of the tenant: only the customer links them.
        // That rule is ours, not a policy's: its refusal names none.
        let relinks_contact = p.is_staff() && input.contact_id.is_some();
        if relinks_contact {
            return Err(self
                .refuse(gate.record, Denial::Forbidden, Vec::new())
                .await);
        }
        if content_change && decision.fields.get(FieldClass::CaseContent) != Visibility::Reveal {
            let ids = self.field_refusal_ids(
                p,
                Action::UpdateCase,
                &case_facts(p, &gate.row, &gate.grants),
                Some(&gate.tenant.facts),
                ctx.purpose,
                FieldClass::CaseContent,
            );
            return Err(self.refuse(gate.record, Denial::Forbidden, ids).await);
        }
        let title = input
            .title
            .as_deref()
            .map(|title| required_text(Some(title), "title", 1_000))
            .transpose()?;
        let description = input
            .description
            .as_deref()
            .map(|d| optional_text(Some(d), "description", MAX_FIELD_CHARS))
            .transpose()?;
        let mut row = gate.row.clone();
        if let Some(s) = one_of(input.severity.as_deref(), &SEVERITIES, "severity")? {
            row.severity = s;
        }
        if let Some(s) = one_of(input.status.as_deref(), &CASE_STATUSES, "status")? {
            row.status = s;
        }
        if let Some(product) = input.product.as_deref() {
            row.product = optional_text(Some(product), "product", 200)?;
        }
        let mut consequences = self
            .access_guard(p, epoch, &gate.record)
            .await?
            .at(self.now());
        if let Some(contact_id) = input.contact_id.as_deref() {
            let cid = optional_text(Some(contact_id), "contact_id", 64)?;
            self.check_contact_ref(tenant_id, cid.as_deref()).await?;
            if cid != gate.row.contact_id {
                let Some(relinked) = self.relink_consequences(p, tenant_id, &gate.row).await?
                else {
                    return Err(self
                        .refuse(gate.record, Denial::Forbidden, Vec::new())
                        .await);
                };
                consequences.extend(relinked);
            }
            row.contact_id = cid;
        }
        row.updated_at = super::next_version(self.now(), gate.row.updated_at);
        gate.record.fields_requested = [
            ("title", input.title.is_some()),
            ("description", input.description.is_some()),
            ("severity", input.severity.is_some()),
            ("status", input.status.is_some()),
            ("product", input.product.is_some()),
            ("contact_id", input.contact_id.is_some()),
        ]
        .iter()
        .filter(|(_, present)| *present)
        .map(|(f, _)| *f)
        .collect();
        // The stored row may hold fields sealed under a version this instance has not loaded yet.
        let (row, shaped) = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                let mut row = row.clone();
                if let Some(title) = &title {
                    row.title = shape::seal(ring, KIND, case_id, "title", title)?;
                }
                if let Some(description) = &description {
                    row.description = description
                        .as_deref()
                        .map(|d| shape::seal(ring, KIND, case_id, "description", d))
                        .transpose()?;
                }
                let shaped =
                    self.case_shaped_for(p, ctx, (&gate.tenant, &gate.grants), ring, &row)?;
                Ok((row, shaped))
            })
            .await?;
        let view = shape::disclose(&mut gate.record, shaped);
        self.rewrite_case(
            gate.record,
            row,
            consequences,
            &gate.row,
            "case.update_not_applied",
        )
        .await?;
        Ok(view)
    }

    pub async fn assign_case(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        assignment: Assignment,
    ) -> ServiceResult<RecordView> {
        let (mut gate, _) = self
            .case_gate(
                p,
                ctx,
                tenant_id,
                case_id,
                Action::AssignCase,
                "case.assign",
            )
            .await?;
        // Four eyes: assigning a case to oneself would turn triage into standing access to its content.
        if assignment.user_id == p.user_id {
            return Err(self
                .refuse(gate.record, Denial::Forbidden, Vec::new())
                .await);
        }
        let assignee = self.user_row(&assignment.user_id).await?;
        let eligible = assignee
            .as_deref()
            .is_some_and(|u| takes_cases(&u.status, &u.roles));
        if !eligible {
            return Err(ServiceError::validation(
                "the assignee must be an active support engineer or supervisor",
                &["user_id"],
            ));
        }
        // Checked again inside the commit: a role change or suspension committed since the
        // read above would otherwise leave the case with someone who may not hold it.
        let mut consequences = vec![Mutation::RequireActiveWithRole {
            user_id: assignment.user_id.clone(),
            any_of: ASSIGNABLE.iter().map(|r| r.as_str().to_owned()).collect(),
        }];
        // The previous assignee loses the case: exports built with it go, as when a grant ends.
        consequences.extend(
            gate.row
                .assignee_id
                .iter()
                .filter(|previous| **previous != assignment.user_id)
                .map(|previous| Mutation::ExpireUserExports {
                    user_id: previous.clone(),
                    scope: Some(TenantScope::new(tenant_id)),
                }),
        );
        let mut row = gate.row.clone();
        row.assignee_id = Some(assignment.user_id.clone());
        row.updated_at = super::next_version(self.now(), gate.row.updated_at);
        gate.record.fields_requested = vec!["assignee_id"];
        gate.record.records = vec![assignment.user_id];
        let shaped = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                self.case_shaped_for(p, ctx, (&gate.tenant, &gate.grants), ring, &row)
            })
            .await?;
        let view = shape::disclose(&mut gate.record, shaped);
        self.rewrite_case(
            gate.record,
            row,
            consequences,
            &gate.row,
            "case.assign_not_applied",
        )
        .await?;
        Ok(view)
    }

    /// What re-pointing `case` at another contact brings with it, or `None` when `p` may not.
    ///
    /// A grant on a case opens the case's contact, so re-pointing it while operator access is
    /// pending or open would hand that access to another contact: only a tenant admin (who
    /// approves grants) may, and for anyone else the check is made again inside the commit. Whoever
    /// reached the old contact through the case (its assignee, its grantees) loses it, and their
    /// exports in the tenant go with it, as when a grant ends.
    async fn relink_consequences(
        &self,
        p: &Principal,
        tenant_id: &str,
        case: &CaseRow,
    ) -> ServiceResult<Option<Vec<Mutation>>> {
        let scope = TenantScope::new(tenant_id);
        let now = self.now();
        let grantees = self
            .store
            .case_open_requesters(&scope, &case.id, now)
            .await?;
        let mut consequences = Vec::new();
        if !p.roles.contains(&Role::TenantAdmin) {
            if !grantees.is_empty() {
                return Ok(None);
            }
            consequences.push(Mutation::RequireNoOpenRequest {
                scope: scope.clone(),
                case_id: case.id.clone(),
                at: now,
            });
        }
        let mut released: Vec<&String> = case.assignee_id.iter().chain(&grantees).collect();
        released.sort_unstable();
        released.dedup();
        consequences.extend(
            released
                .into_iter()
                .map(|user_id| Mutation::ExpireUserExports {
                    user_id: user_id.clone(),
                    scope: Some(scope.clone()),
                }),
        );
        Ok(Some(consequences))
    }

    /// Commits `row` and its consequences with its entry if the case is still as `read` (a
    /// reassignment, a relink or another update since makes it a conflict, recorded as not applied).
    async fn rewrite_case(
        &self,
        record: AuditRecord,
        row: CaseRow,
        consequences: Vec<Mutation>,
        read: &CaseRow,
        not_applied: &'static str,
    ) -> ServiceResult<()> {
        let update = Mutation::UpdateCase {
            row,
            read: CaseVersion::of(read),
        };
        let mut mutations = vec![update];
        mutations.extend(consequences);
        self.commit_attempt(vec![record], mutations, (not_applied, "changed_meanwhile"))
            .await
            .map(|_| ())
    }
}
