//! The gate to a case's own records (comments, files): the case must exist in the tenant, the
//! caller must reach it (assignment or grant) for the stated purpose, and what a page of them
//! discloses is recorded before it leaves.

use std::sync::Arc;

use strongroom_crypto::TenantKeyring;
use strongroom_policy::{Action, Decision, Denial, ResourceFacts, ResourceKind};
use strongroom_store::{CaseRow, TenantScope};

use super::cases::case_ref;
use super::grants::Grants;
use crate::access::{Principal, RequestContext};
use crate::audit::AuditRecord;
use crate::error::ServiceResult;
use crate::model::{Page, RecordView};
use crate::{TenantState, Vault, shape};

/// The policy facts of one case: staff reach it through an assignment or an active grant.
pub(super) fn case_facts(p: &Principal, row: &CaseRow, grants: &Grants) -> ResourceFacts {
    let mut r = ResourceFacts::new(ResourceKind::Case, &row.id, Some(row.tenant_id.clone()));
    r.assigned_to_principal = row.assignee_id.as_deref() == Some(p.user_id.as_str());
    r.grant = grants.for_case(&row.id).cloned();
    r
}

/// A case the caller may act on, and the audit record of the request so far.
pub(super) struct Gate {
    pub(super) tenant: Arc<TenantState>,
    pub(super) row: CaseRow,
    pub(super) record: AuditRecord,
    pub(super) grants: Grants,
}

impl Vault {
    pub(super) async fn case_gate(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        action: Action,
        audit_action: &'static str,
    ) -> ServiceResult<(Gate, Decision)> {
        let (mut record, purpose, tenant) = self
            .open_content(p, ctx, audit_action, tenant_id, case_ref(Some(case_id)))
            .await?;
        // An id that is not in this tenant is not found, whoever asks and whatever their role.
        let Some(row) = self
            .store
            .case(&TenantScope::new(tenant_id), case_id)
            .await?
        else {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        };
        let grants = self.grants_for(p, tenant_id, Some(purpose)).await?;
        let facts = case_facts(p, &row, &grants);
        // Every access under a grant names it, allowed or not.
        record.grant_id = facts.grant.as_ref().map(|g| g.id.clone());
        let decision = self.decide(p, action, &facts, Some(&tenant.facts), Some(purpose));
        self.enforce(&mut record, &decision).await?;
        Ok((
            Gate {
                tenant,
                row,
                record,
                grants,
            },
            decision,
        ))
    }

    /// A page of the case's records (comments, files), each shaped under the tenant's keys, its
    /// id and what it discloses noted in the gate's audit record, and that record durable before
    /// the page is returned: a view reaches a caller only through it.
    pub(super) async fn disclose_case_page<R>(
        &self,
        mut gate: Gate,
        rows: Vec<R>,
        limit: u32,
        id: impl Fn(&R) -> &str,
        shape_row: impl Fn(&TenantKeyring, &R) -> ServiceResult<shape::Shaped>,
    ) -> ServiceResult<Page<RecordView>> {
        let shaped: Vec<shape::Shaped> = self
            .keys
            .with_keyring(self.store.as_ref(), &gate.row.tenant_id, |ring| {
                rows.iter().map(|row| shape_row(ring, row)).collect()
            })
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for (row, shaped) in rows.iter().zip(shaped) {
            gate.record.records.push(id(row).to_owned());
            items.push(shape::disclose(&mut gate.record, shaped));
        }
        self.audit.append(gate.record).await?;
        let next_cursor = super::next_cursor(&rows, limit, |row| id(row).to_owned());
        Ok(Page { items, next_cursor })
    }
}
