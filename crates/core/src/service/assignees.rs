//! Whom a case can be assigned to: the active staff holding a role that takes cases, for those
//! who assign them (supervisors, platform administrators). Staff metadata only: no tenant data.

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

impl Vault {
    /// A page of the active staff who can be assigned cases, by id, each with the number of
    /// cases assigned to it now (to spread the work). Recorded with the ids it returns.
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

        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX).max(1);
        let mut after = page.cursor.clone();
        let mut items = Vec::new();
        let mut next_cursor = None;
        let mut assigned: Option<HashMap<String, i64>> = None;
        'pages: loop {
            let rows = self.store.active_staff(after.as_deref(), SCAN).await?;
            let exhausted = rows.len() < SCAN as usize;
            for row in rows {
                after = Some(row.id.clone());
                let roles = parse_roles(&row.roles);
                if !roles.iter().any(|r| ASSIGNABLE.contains(r)) {
                    continue;
                }
                let counts = match &mut assigned {
                    Some(counts) => counts,
                    None => {
                        assigned.insert(self.store.assignment_counts().await?.into_iter().collect())
                    }
                };
                items.push(Assignee {
                    assigned_cases: counts.get(&row.id).copied().unwrap_or(0),
                    id: row.id,
                    username: row.username,
                    display_name: row.display_name,
                    roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
                });
                if items.len() == limit {
                    next_cursor = after;
                    break 'pages;
                }
            }
            if exhausted {
                break;
            }
        }
        record.records = items.iter().map(|a| a.id.clone()).collect();
        self.audit.append(record).await?;
        Ok(Page { items, next_cursor })
    }
}
