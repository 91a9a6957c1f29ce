//! Suspension of inactive accounts (PCI DSS 8.2.6), with warnings ahead of time.
//!
//! Idempotent and safe with several instances: each suspension is re-checked inside its own
//! transaction (still active, still inactive, not the last active platform administrator), and a
//! warning is given once per stretch of inactivity.

use std::collections::HashMap;

use strongroom_policy::{Action, ResourceFacts, ResourceKind, Role};
use strongroom_store::{InactivityWarningRow, Mutation, UserRow};

use serde_json::json;

use super::notify::NotificationKind;
use super::users::user_ref;
use crate::Vault;
use crate::access::{Principal, RequestContext, parse_roles};
use crate::audit::{Actor, AuditRecord};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::governance::{SweepLine, SweepReport, SweepRequest};

const DAY_MS: i64 = 86_400_000;

fn is_platform_admin(u: &UserRow) -> bool {
    parse_roles(&u.roles).contains(&Role::PlatformAdmin)
}

impl Vault {
    /// The sweep on behalf of an administrator (`POST /v1/admin/inactivity-sweep`).
    pub async fn sweep_inactive(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        request: SweepRequest,
    ) -> ServiceResult<SweepReport> {
        let mut record = self.record(p, ctx, "user.inactivity_sweep", None, None);
        let resource = ResourceFacts::new(ResourceKind::User, "*", None);
        let decision = self.decide(p, Action::SweepInactiveUsers, &resource, None, ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        let now = self.now();
        let as_of = match request.as_of.as_deref() {
            None => now,
            Some(text) => parse_rfc3339(text)
                .ok_or_else(|| ServiceError::validation("not an RFC 3339 time", &["as_of"]))?,
        };
        if as_of > now && !request.dry_run {
            return Err(ServiceError::validation(
                "a future as_of is only for a dry run",
                &["as_of"],
            ));
        }
        let actor = Actor {
            user_id: p.user_id.clone(),
            roles: p.role_names(),
        };
        self.sweep(Some(actor), record, as_of, request.dry_run)
            .await
    }

    /// The sweep run by the server's background job or by `strongroom admin sweep-inactive`.
    pub async fn sweep_inactive_unattended(
        &self,
        as_of: Option<i64>,
        dry_run: bool,
        request_id: &str,
    ) -> ServiceResult<SweepReport> {
        let as_of = as_of.unwrap_or_else(|| self.now());
        let record = AuditRecord::new("user.inactivity_sweep", request_id);
        self.sweep(None, record, as_of, dry_run).await
    }

    async fn sweep(
        &self,
        actor: Option<Actor>,
        mut summary: AuditRecord,
        as_of: i64,
        dry_run: bool,
    ) -> ServiceResult<SweepReport> {
        let mut users = self.all_users().await?;
        let warned_before: HashMap<String, i64> = self
            .store
            .inactivity_warnings()
            .await?
            .into_iter()
            .map(|w| (w.user_id, w.last_activity_at))
            .collect();
        // A service principal is active when its API keys are used.
        let key_use: HashMap<String, i64> = self
            .store
            .api_key_activity(as_of)
            .await?
            .into_iter()
            .filter_map(|k| Some((k.user_id, k.last_used_at?)))
            .collect();
        let last_activity = |u: &UserRow| {
            u.last_activity_at()
                .max(key_use.get(&u.id).copied().unwrap_or(i64::MIN))
        };
        let mut active_admins = users
            .iter()
            .filter(|u| u.status == "active" && is_platform_admin(u))
            .count();
        // Longest inactive first, so the administrator kept is the most recently active one.
        users.retain(|u| u.status == "active");
        users.sort_by_key(|u| last_activity(u));

        let mut report = SweepReport {
            as_of: rfc3339(as_of),
            dry_run,
            suspended: Vec::new(),
            warned: Vec::new(),
            kept_last_admin: Vec::new(),
        };
        let warn_days = i64::from(self.settings.inactivity_warn_days);
        for user in &users {
            let limit_days = self.inactivity_limit_days(user).await?;
            let last = last_activity(user);
            let idle = as_of.saturating_sub(last);
            let line = sweep_line(user, last, idle, limit_days);
            if idle >= i64::from(limit_days) * DAY_MS {
                let admin = is_platform_admin(user);
                if admin && active_admins <= 1 {
                    report.kept_last_admin.push(line);
                    continue;
                }
                if !dry_run {
                    let cutoff = as_of - i64::from(limit_days) * DAY_MS;
                    if !self
                        .suspend_inactive(actor.clone(), &summary.request_id, user, last, cutoff)
                        .await?
                    {
                        continue;
                    }
                }
                if admin {
                    active_admins -= 1;
                }
                report.suspended.push(line);
            } else if warn_days > 0
                && idle >= (i64::from(limit_days) - warn_days).max(0) * DAY_MS
                && warned_before.get(&user.id) != Some(&last)
            {
                if !dry_run {
                    self.warn_inactive(actor.clone(), &summary.request_id, user, last)
                        .await?;
                }
                report.warned.push(line);
            }
        }
        summary.actor = actor;
        summary.reason = Some(if dry_run { "dry_run" } else { "inactivity" });
        summary.records = report.suspended.iter().map(|l| l.user_id.clone()).collect();
        self.audit.append(summary).await?;
        Ok(report)
    }

    /// The platform limit, or for a customer the lower of it and the tenant's.
    async fn inactivity_limit_days(&self, user: &UserRow) -> ServiceResult<u32> {
        let platform = self.settings.inactivity_suspend_days;
        let Some(tenant_id) = &user.tenant_id else {
            return Ok(platform);
        };
        let tenant_limit = self
            .tenant_state(tenant_id)
            .await?
            .and_then(|t| t.instructions.customer_inactivity_days);
        Ok(tenant_limit.map_or(platform, |t| t.min(platform)))
    }

    /// Suspends one account; false when it is no longer eligible (a login, or another sweep).
    async fn suspend_inactive(
        &self,
        actor: Option<Actor>,
        request_id: &str,
        user: &UserRow,
        last_activity_at: i64,
        cutoff: i64,
    ) -> ServiceResult<bool> {
        let now = self.now();
        let mut record = AuditRecord::new("user.suspend", request_id);
        record.actor.clone_from(&actor);
        record.tenant_id.clone_from(&user.tenant_id);
        record.resource = user_ref(&user.id);
        record.reason = Some("inactivity");
        let (mut records, mut mutations) = self
            .suspension_effects(actor.as_ref(), request_id, &user.id, now)
            .await?;
        records.insert(0, record);
        mutations.insert(
            0,
            Mutation::SuspendInactiveUser {
                user_id: user.id.clone(),
                cutoff,
                at: now,
            },
        );
        mutations.extend(
            self.tenant_notice(
                user,
                NotificationKind::InactivitySuspended,
                last_activity_at,
                now,
            )
            .await?,
        );
        match self.audit.commit(records, mutations).await {
            Ok(_) => {
                self.after_suspension(&user.id);
                Ok(true)
            }
            // A login or another instance got there first. The attempt's entries are in the log
            // already; say that it changed nothing.
            Err(e) if e.code == ErrorCode::Conflict => {
                let mut kept = AuditRecord::new("user.suspend_not_applied", request_id);
                kept.actor = actor;
                kept.tenant_id.clone_from(&user.tenant_id);
                kept.resource = user_ref(&user.id);
                kept.reason = Some("no_longer_eligible");
                self.audit.append(kept).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Warns the account's administrators: the entry lands in the tenant's access log for a
    /// customer and in the platform log for staff.
    async fn warn_inactive(
        &self,
        actor: Option<Actor>,
        request_id: &str,
        user: &UserRow,
        last_activity_at: i64,
    ) -> ServiceResult<()> {
        let now = self.now();
        let mut record = AuditRecord::new("user.inactivity_warning", request_id);
        record.actor = actor;
        record.tenant_id.clone_from(&user.tenant_id);
        record.resource = user_ref(&user.id);
        record.reason = Some("inactivity");
        let mut mutations = vec![Mutation::RecordInactivityWarning(InactivityWarningRow {
            user_id: user.id.clone(),
            last_activity_at,
            warned_at: now,
        })];
        mutations.extend(
            self.tenant_notice(
                user,
                NotificationKind::InactivityWarning,
                last_activity_at,
                now,
            )
            .await?,
        );
        self.audit.commit(vec![record], mutations).await?;
        Ok(())
    }

    /// For a customer account, the notice to its tenant's admins (outbox, delivered as a webhook).
    async fn tenant_notice(
        &self,
        user: &UserRow,
        kind: NotificationKind,
        last_activity_at: i64,
        now: i64,
    ) -> ServiceResult<Option<Mutation>> {
        let Some(tenant_id) = &user.tenant_id else {
            return Ok(None);
        };
        let Some(tenant) = self.tenant_state(tenant_id).await? else {
            return Ok(None);
        };
        let data = json!({
            "tenant_id": tenant_id,
            "user_id": user.id,
            "last_activity_at": rfc3339(last_activity_at),
        });
        self.outbox_row(&tenant, kind, data, None, now).map(Some)
    }
}

fn sweep_line(user: &UserRow, last_activity: i64, idle_ms: i64, limit_days: u32) -> SweepLine {
    SweepLine {
        user_id: user.id.clone(),
        username: user.username.clone(),
        roles: parse_roles(&user.roles)
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        tenant_id: user.tenant_id.clone(),
        last_activity_at: rfc3339(last_activity),
        inactive_days: idle_ms / DAY_MS,
        limit_days,
    }
}
