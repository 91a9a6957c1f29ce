//! Reading the audit log: entries for auditors, a tenant's own access log for its admins.

use serde::Serialize;
use strongroom_policy::{Action, ResourceFacts, ResourceKind};
use strongroom_store::{AuditEntryRow, TenantScope};

use crate::Vault;
use crate::access::{Principal, RequestContext};
use crate::audit::ResourceRef;
use crate::error::{ServiceError, ServiceResult};
use crate::model::Page;

#[derive(Debug, Serialize)]
pub struct LoggedEntry {
    pub index: u64,
    pub entry: serde_json::Value,
    /// Base64 of the exact leaf bytes.
    pub leaf: String,
}

fn logged(row: AuditEntryRow) -> ServiceResult<LoggedEntry> {
    use base64::Engine;
    Ok(LoggedEntry {
        index: u64::try_from(row.idx).map_err(|_| ServiceError::internal("audit index"))?,
        entry: serde_json::from_slice(&row.entry)
            .map_err(|_| ServiceError::internal("audit entry unreadable"))?,
        leaf: base64::engine::general_purpose::STANDARD.encode(&row.entry),
    })
}

impl Vault {
    pub async fn audit_entries(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        start: u64,
        limit: u32,
    ) -> ServiceResult<Page<LoggedEntry>> {
        let mut record = self.record(
            p,
            ctx,
            "audit.read",
            None,
            Some(ResourceRef {
                kind: "audit_log",
                id: None,
            }),
        );
        let resource = ResourceFacts::new(ResourceKind::AuditLog, "log", None);
        let decision = self.decide(p, Action::ReadAuditLog, &resource, None, ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        self.audit.append(record).await?;
        let rows = self.audit.entries(start, limit).await?;
        let items = rows
            .into_iter()
            .map(logged)
            .collect::<ServiceResult<Vec<_>>>()?;
        let next_cursor = super::next_cursor(&items, limit, |e| (e.index + 1).to_string());
        Ok(Page { items, next_cursor })
    }

    /// Decides and records `record`, a read of what the log says about `tenant_id` (its access
    /// log, its incidents): the tenant must exist, and the caller may then read on.
    pub(super) async fn read_of_tenant_log(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        mut record: crate::audit::AuditRecord,
        tenant_id: &str,
        action: Action,
    ) -> ServiceResult<()> {
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let resource =
            ResourceFacts::new(ResourceKind::AuditLog, "log", Some(tenant_id.to_owned()));
        let decision = self.decide(p, action, &resource, Some(&tenant.facts), ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        self.audit.append(record).await?;
        Ok(())
    }

    /// The entries that concern one tenant, for its admins to see who touched their data.
    pub async fn tenant_access_log(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        after: Option<u64>,
        limit: u32,
    ) -> ServiceResult<Page<LoggedEntry>> {
        let record = self.record(
            p,
            ctx,
            "audit.read_tenant_log",
            Some(tenant_id),
            Some(ResourceRef {
                kind: "audit_log",
                id: None,
            }),
        );
        self.read_of_tenant_log(p, ctx, record, tenant_id, Action::ReadTenantAccessLog)
            .await?;
        let rows = self
            .store
            .audit_entries_for_tenant(&TenantScope::new(tenant_id), after, limit)
            .await?;
        let items = rows
            .into_iter()
            .map(logged)
            .collect::<ServiceResult<Vec<_>>>()?;
        let next_cursor = super::next_cursor(&items, limit, |e| e.index.to_string());
        Ok(Page { items, next_cursor })
    }
}
