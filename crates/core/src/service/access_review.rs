//! Access reviews: a snapshot of every account with what it can reach, certified or revoked line by
//! line by a platform administrator or security officer, and kept.

use std::collections::{HashMap, HashSet};

use strongroom_policy::{Action, ResourceFacts, ResourceKind};
use strongroom_store::{AccessReviewLineRow, AccessReviewRow, Mutation};

use super::users::user_ref;
use crate::access::{Principal, RequestContext, parse_roles};
use crate::audit::{Actor, AuditRecord, ResourceRef};
use crate::clock::rfc3339;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::governance::{
    AccessReview, AccessReviewLine, AccessReviewSummary, ReviewDecision, ReviewVerdict,
};
use crate::model::{Page, PageRequest};
use crate::{Vault, new_id};

fn review_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "access_review",
        id: Some(id.to_owned()),
    })
}

impl Vault {
    /// Decides `ReviewAccess` for `p` and returns the record to complete.
    async fn review_gate(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        action: &'static str,
        review_id: Option<&str>,
    ) -> ServiceResult<AuditRecord> {
        let mut record = self.record(p, ctx, action, None, review_id.and_then(review_ref));
        let resource = ResourceFacts::new(ResourceKind::User, "*", None);
        let decision = self.decide(p, Action::ReviewAccess, &resource, None, ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        Ok(record)
    }

    pub async fn create_access_review(
        &self,
        p: &Principal,
        ctx: &RequestContext,
    ) -> ServiceResult<AccessReview> {
        let record = self
            .review_gate(p, ctx, "access_review.create", None)
            .await?;
        let actor = record.actor.clone();
        self.snapshot_review(actor, record).await
    }

    /// A review started by an operator from the command line (`strongroom admin access-review`).
    pub async fn create_access_review_unattended(
        &self,
        request_id: &str,
    ) -> ServiceResult<AccessReview> {
        let record = AuditRecord::new("access_review.create", request_id);
        self.snapshot_review(None, record).await
    }

    async fn snapshot_review(
        &self,
        actor: Option<Actor>,
        mut record: AuditRecord,
    ) -> ServiceResult<AccessReview> {
        let users = self.all_users().await?;
        let assignments: HashMap<String, i64> =
            self.store.assignment_counts().await?.into_iter().collect();
        let grants: HashMap<String, i64> = self
            .store
            .active_grant_counts(self.now())
            .await?
            .into_iter()
            .collect();
        let keys: HashMap<String, (i64, Option<i64>)> = self
            .store
            .api_key_activity(self.now())
            .await?
            .into_iter()
            .map(|k| (k.user_id, (k.live_keys, k.last_used_at)))
            .collect();
        let enrolled: HashSet<String> =
            self.store.mfa_enrolled_users().await?.into_iter().collect();
        let id = new_id();
        let review = AccessReviewRow {
            id: id.clone(),
            created_by: actor.as_ref().map(|a| a.user_id.clone()),
            created_at: self.now(),
        };
        let lines: Vec<AccessReviewLineRow> = users
            .iter()
            .map(|u| AccessReviewLineRow {
                review_id: id.clone(),
                user_id: u.id.clone(),
                username: u.username.clone(),
                roles: u.roles.clone(),
                tenant_id: u.tenant_id.clone(),
                status: u.status.clone(),
                last_activity_at: u
                    .last_activity_at()
                    .max(keys.get(&u.id).and_then(|k| k.1).unwrap_or(i64::MIN)),
                mfa_enrolled: enrolled.contains(&u.id),
                assignments: assignments.get(&u.id).copied().unwrap_or(0),
                active_grants: grants.get(&u.id).copied().unwrap_or(0),
                api_keys: keys.get(&u.id).map_or(0, |k| k.0),
                decision: None,
                decided_by: None,
                decided_at: None,
            })
            .collect();
        record.resource = review_ref(&id);
        record.records = users.iter().map(|u| u.id.clone()).collect();
        self.audit
            .commit(
                vec![record],
                vec![Mutation::InsertAccessReview {
                    review: review.clone(),
                    lines,
                }],
            )
            .await?;
        // As stored: the commit leaves out accounts gone since they were read (a tenant shredded
        // meanwhile), and their names must not leave here either.
        let kept = self.store.access_review_lines(&id).await?;
        Ok(review_view(&review, &kept))
    }

    pub async fn access_reviews(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        page: PageRequest,
    ) -> ServiceResult<Page<AccessReviewSummary>> {
        let record = self.review_gate(p, ctx, "access_review.list", None).await?;
        self.audit.append(record).await?;
        let rows = self
            .store
            .access_reviews(page.cursor.as_deref(), page.limit)
            .await?;
        let next_cursor = super::next_cursor(&rows, page.limit, |r| r.id.clone());
        let items = rows
            .iter()
            .map(|r| AccessReviewSummary {
                id: r.id.clone(),
                created_at: rfc3339(r.created_at),
                created_by: r.created_by.clone(),
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    pub async fn access_review(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        review_id: &str,
    ) -> ServiceResult<AccessReview> {
        let record = self
            .review_gate(p, ctx, "access_review.read", Some(review_id))
            .await?;
        let Some(review) = self.store.access_review(review_id).await? else {
            return Err(self
                .refuse(record, strongroom_policy::Denial::NotFound, Vec::new())
                .await);
        };
        self.audit.append(record).await?;
        let lines = self.store.access_review_lines(review_id).await?;
        Ok(review_view(&review, &lines))
    }

    /// Certifies or revokes one line. Revoking suspends the account at once; nobody decides on
    /// their own access.
    pub async fn decide_access_review(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        review_id: &str,
        decision: ReviewDecision,
    ) -> ServiceResult<AccessReviewLine> {
        let mut record = self
            .review_gate(p, ctx, "access_review.decide", Some(review_id))
            .await?;
        record.records = crate::access::is_id(&decision.user_id)
            .then(|| decision.user_id.clone())
            .into_iter()
            .collect();
        record.reason = Some(decision.decision.as_str());
        let lines = match self.store.access_review(review_id).await? {
            Some(_) => self.store.access_review_lines(review_id).await?,
            None => Vec::new(),
        };
        let Some(line) = lines.iter().find(|l| l.user_id == decision.user_id) else {
            return Err(self
                .refuse(record, strongroom_policy::Denial::NotFound, Vec::new())
                .await);
        };
        if decision.user_id == p.user_id {
            return Err(self
                .refuse(record, strongroom_policy::Denial::Forbidden, Vec::new())
                .await);
        }
        if line.decision.is_some() {
            return Err(self
                .refuse_because(record, "already_decided", already_decided())
                .await);
        }
        let now = self.now();
        let mut records = Vec::new();
        let mut mutations = vec![Mutation::DecideAccessReviewLine {
            review_id: review_id.to_owned(),
            user_id: decision.user_id.clone(),
            decision: decision.decision.as_str().to_owned(),
            decided_by: p.user_id.clone(),
            at: now,
        }];
        let mut revoked_active = false;
        // What a refusal at the commit means: the line decided by someone else first, or, with
        // the account read as inactive, that or the account reactivated since.
        let mut not_applied_reason = "already_decided";
        // From the store, not a cache: a stale "not active" would record a revocation and leave
        // the account active.
        let account = if decision.decision == ReviewVerdict::Revoke {
            self.store.user(&decision.user_id).await?
        } else {
            None
        };
        match account {
            Some(user) if user.status == "active" => {
                mutations.push(self.keep_last_admin(&user, &record).await?);
                let mut suspend = AuditRecord::new("user.suspend", &ctx.request_id);
                suspend.actor.clone_from(&record.actor);
                suspend.tenant_id.clone_from(&user.tenant_id);
                suspend.resource = user_ref(&user.id);
                suspend.reason = Some("access_review");
                let (effects, changes) = self
                    .suspension_effects(record.actor.as_ref(), &ctx.request_id, &user.id, now)
                    .await?;
                records.push(suspend);
                records.extend(effects);
                mutations.push(Mutation::SetUserStatus {
                    user_id: user.id.clone(),
                    status: "suspended".into(),
                    reason: Some("other".into()),
                    at: now,
                });
                mutations.extend(changes);
                revoked_active = true;
            }
            // Nothing to suspend, as long as nobody reactivates the account before the commit.
            Some(user) => {
                mutations.push(Mutation::RequireInactive { user_id: user.id });
                not_applied_reason = "changed_meanwhile";
            }
            None => {}
        }
        records.insert(0, record);
        self.commit_attempt(
            records,
            mutations,
            ("access_review.decide_not_applied", not_applied_reason),
        )
        .await?;
        if revoked_active {
            self.after_suspension(&decision.user_id);
        }
        let mut decided = line.clone();
        decided.decision = Some(decision.decision.as_str().to_owned());
        decided.decided_by = Some(p.user_id.clone());
        decided.decided_at = Some(now);
        Ok(line_view(&decided))
    }
}

fn already_decided() -> ServiceError {
    ServiceError::new(ErrorCode::Conflict, "this line is already decided")
}

fn line_view(l: &AccessReviewLineRow) -> AccessReviewLine {
    AccessReviewLine {
        user_id: l.user_id.clone(),
        username: l.username.clone(),
        roles: parse_roles(&l.roles)
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        tenant_id: l.tenant_id.clone(),
        status: l.status.clone(),
        last_activity_at: rfc3339(l.last_activity_at),
        mfa_enrolled: l.mfa_enrolled,
        assignments: l.assignments,
        active_grants: l.active_grants,
        api_keys: l.api_keys,
        decision: l.decision.clone(),
        decided_by: l.decided_by.clone(),
        decided_at: l.decided_at.map(rfc3339),
    }
}

fn review_view(review: &AccessReviewRow, lines: &[AccessReviewLineRow]) -> AccessReview {
    AccessReview {
        id: review.id.clone(),
        created_at: rfc3339(review.created_at),
        created_by: review.created_by.clone(),
        total: lines.len(),
        pending: lines.iter().filter(|l| l.decision.is_none()).count(),
        lines: lines.iter().map(line_view).collect(),
    }
}
