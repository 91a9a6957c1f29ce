//! The caller's own reach: the cases assigned to them and those an operator-access request of
//! theirs covers, in every tenant, so that staff know where their work is without naming each
//! tenant. Ids and times only: what each case holds is read through the tenant, as ever.

use crate::Vault;
use crate::access::{Principal, RequestContext};
use crate::clock::rfc3339;
use crate::error::ServiceResult;
use crate::model::lockbox::CaseReach;
use crate::model::{Page, PageRequest};

use super::grants::effective_state;
use super::page_in_memory;

impl Vault {
    /// `GET /v1/me/cases`, recorded with the case ids it names.
    pub async fn my_cases(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> ServiceResult<Page<CaseReach>> {
        let mut record = self.record(p, ctx, "case.list_own_reach", None, None);
        let now = self.now();
        let mut items: Vec<CaseReach> = self
            .store
            .assignments_of(&p.user_id)
            .await?
            .into_iter()
            .map(|a| CaseReach {
                tenant_id: a.tenant_id,
                case_id: a.case_id,
                reach: "assignment",
                request_id: None,
                until: None,
            })
            .collect();
        for row in self.store.open_requests_of_user(&p.user_id, now).await? {
            let (reach, until) = match effective_state(&row, now) {
                "approved" => ("grant", row.ends_at),
                "pending" => ("pending_request", Some(row.request_expires_at)),
                _ => continue,
            };
            items.push(CaseReach {
                tenant_id: row.tenant_id,
                case_id: row.case_id,
                reach,
                request_id: Some(row.id),
                until: until.map(rfc3339),
            });
        }
        // By case, then how it is reached, so that a case's lines come together on one page.
        items.sort_by(|a, b| a.reach.cmp(b.reach));
        let page = page_in_memory(items, page, |i| &i.case_id);
        record.records = page.items.iter().map(|i| i.case_id.clone()).collect();
        record.records.dedup();
        self.audit.append(record).await?;
        Ok(page)
    }
}
