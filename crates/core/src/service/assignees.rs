//! Whom a case can be assigned to: the active staff holding a role that takes cases, for the
//! supervisors who assign them. Staff metadata only: no tenant data.

use std::collections::HashMap;

use strongroom_policy::{Action, ResourceFacts, ResourceKind, Role};

use crate::Vault;
use crate::access::{Principal, RequestContext, parse_roles};
use crate::error::ServiceResult;
use crate::model::{Assignee, Page, PageRequest};

/// Roles that take cases.
pub(super) const ASSIGNABLE: [Role; 2] = [Role::SupportEngineer, Role::SupportSupervisor];

/// Staff accounts read per store call while a page fills.
const SCAN: u32 = 200;

/// An active account holding a role that takes cases (`status` and `roles` as stored).
pub(super) fn takes_cases(status: &str, roles: &str) -> bool {
    status == "active" && parse_roles(roles).iter().any(|r| ASSIGNABLE.contains(r))
}

impl Vault {
    /// A page of the active staff who can be assigned cases, by id, each with the open and
    /// pending cases it holds now (to spread the work). Recorded with the ids it returns.
    pub async fn assignees(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> ServiceResult<Page<Assignee>> {
        let mut record = self.record(p, ctx, "user.list_assignees", None, None);
        let everyone = ResourceFacts::new(ResourceKind::User, "*", None);
        let decision = self.decide(p, Action::ListAssignees, &everyone, None, ctx.purpose);
        self.enforce(&mut record, &decision).await?;

        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let mut after = page.cursor.clone();
        let mut staff = Vec::new();
        let mut next_cursor = None;
        'pages: loop {
            let rows = self.store.active_staff(after.as_deref(), SCAN).await?;
            let exhausted = rows.len() < SCAN as usize;
            for row in rows {
                after = Some(row.id.clone());
                if !takes_cases(&row.status, &row.roles) {
                    continue;
                }
                staff.push(row);
                if staff.len() == limit {
                    next_cursor = after;
                    break 'pages;
                }
            }
            if exhausted {
                break;
            }
        }
        let ids: Vec<String> = staff.iter().map(|u| u.id.clone()).collect();
        let open: HashMap<String, i64> = self
            .store
            .open_case_counts(&ids)
            .await?
            .into_iter()
            .collect();
        let items = staff
            .into_iter()
            .map(|u| Assignee {
                open_cases: open.get(&u.id).copied().unwrap_or(0),
                roles: parse_roles(&u.roles)
                    .iter()
                    .map(|r| r.as_str().to_owned())
                    .collect(),
                id: u.id,
                username: u.username,
                display_name: u.display_name,
            })
            .collect();
        record.records = ids;
        self.audit.append(record).await?;
        Ok(Page { items, next_cursor })
    }
}
