//! Retention: closed cases (status `closed` or `resolved`), their comments and their files are
//! purged once unchanged for longer than their tenant's `retention_days`.
//!
//! Idempotent and safe beside user traffic: each purge re-checks status and age inside its own
//! transaction (a case reopened meanwhile is kept) and lands with its audit entry, one per case,
//! in the tenant's log.

use std::collections::HashSet;

use strongroom_store::{Mutation, TenantScope};

use crate::Vault;
use crate::access::tenant_state_from;
use crate::audit::{AuditRecord, ResourceRef};
use crate::clock::rfc3339;
use crate::error::{ErrorCode, ServiceResult};
use crate::model::keys::{PurgeReport, PurgedCase};

const DAY_MS: i64 = 86_400_000;
/// Cases looked at per query.
const PAGE: u32 = 500;

impl Vault {
    /// The purge run by the server's background job or by `strongroom admin purge-expired`.
    pub async fn purge_expired_unattended(
        &self,
        as_of: Option<i64>,
        dry_run: bool,
        request_id: &str,
    ) -> ServiceResult<PurgeReport> {
        let as_of = as_of.unwrap_or_else(|| self.now());
        let mut report = PurgeReport {
            as_of: rfc3339(as_of),
            dry_run,
            purged: Vec::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let tenants = self.store.tenants(after.as_deref(), 200).await?;
            let Some(last) = tenants.last() else {
                break;
            };
            after = Some(last.id.clone());
            for row in tenants {
                let tenant_id = row.id.clone();
                let days = tenant_state_from(row)?.instructions.retention_days;
                let cutoff = as_of.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
                self.purge_tenant(&tenant_id, days, cutoff, dry_run, request_id, &mut report)
                    .await?;
            }
        }
        Ok(report)
    }

    async fn purge_tenant(
        &self,
        tenant_id: &str,
        days: u32,
        cutoff: i64,
        dry_run: bool,
        request_id: &str,
        report: &mut PurgeReport,
    ) -> ServiceResult<()> {
        let scope = TenantScope::new(tenant_id);
        // Cases listed (a dry run) or kept (changed since read): passed over by id, since a kept
        // case may leave the result set (reopened) or stay in it (an open access request).
        let mut passed: HashSet<String> = HashSet::new();
        loop {
            // Purged cases leave the result set.
            let limit = u32::try_from(passed.len()).map_or(u32::MAX, |n| PAGE.saturating_add(n));
            let cases = self.store.expired_cases(&scope, cutoff, limit).await?;
            let fresh: Vec<_> = cases
                .into_iter()
                .filter(|case| !passed.contains(&case.id))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            for case in fresh {
                let line = PurgedCase {
                    tenant_id: tenant_id.to_owned(),
                    case_id: case.id.clone(),
                    status: case.status.clone(),
                    updated_at: rfc3339(case.updated_at),
                    retention_days: days,
                };
                if dry_run {
                    passed.insert(case.id.clone());
                    report.purged.push(line);
                    continue;
                }
                let mut record = AuditRecord::new("case.retention_purge", request_id);
                record.tenant_id = Some(tenant_id.to_owned());
                record.resource = Some(ResourceRef {
                    kind: "case",
                    id: Some(case.id.clone()),
                });
                record.reason = Some("retention");
                let mutation = Mutation::PurgeCase {
                    scope: scope.clone(),
                    case_id: case.id.clone(),
                    cutoff,
                    at: self.now(),
                };
                match self.audit.commit(vec![record], vec![mutation]).await {
                    Ok(_) => report.purged.push(line),
                    // Changed since it was read (reopened): kept. The attempt's entry is in the
                    // log already; say that it changed nothing.
                    Err(e) if e.code == ErrorCode::Conflict => {
                        passed.insert(case.id.clone());
                        let mut kept = AuditRecord::new("case.retention_kept", request_id);
                        kept.tenant_id = Some(tenant_id.to_owned());
                        kept.resource = Some(ResourceRef {
                            kind: "case",
                            id: Some(case.id.clone()),
                        });
                        kept.reason = Some("changed_since_read");
                        self.audit.append(kept).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
