//! Users, roles and suspension.

use strongroom_policy::{Action, ResourceFacts, ResourceKind, Role};
use strongroom_store::{Mutation, TenantScope, UserRow};
use zeroize::Zeroizing;

use super::auth::user_view;
use super::required_text;
use crate::access::{Principal, RequestContext, parse_roles};
use crate::audit::{Actor, AuditRecord, ResourceRef};
use crate::auth::password;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::{NewUser, SuspendReason, Suspension, User, UserPatch};
use crate::{Vault, new_id};

pub(crate) fn user_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "user",
        id: Some(id.to_owned()),
    })
}

pub(super) fn parse_role_list(names: &[String]) -> ServiceResult<Vec<Role>> {
    let mut roles = Vec::with_capacity(names.len());
    for name in names {
        let role: Role = name
            .parse()
            .map_err(|_| ServiceError::validation("unknown role", &["roles"]))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        return Err(ServiceError::validation(
            "at least one role is required",
            &["roles"],
        ));
    }
    let staff = roles.iter().any(Role::is_staff);
    let customer = roles.iter().any(Role::is_customer);
    if staff && customer {
        return Err(ServiceError::validation(
            "a user is either staff or a customer, not both",
            &["roles"],
        ));
    }
    Ok(roles)
}

/// A freshly created, active user with no history.
pub(crate) fn new_user_row(
    id: String,
    username: String,
    display_name: String,
    password_hash: String,
    roles: String,
    tenant_id: Option<String>,
    now: i64,
) -> UserRow {
    UserRow {
        id,
        username,
        display_name,
        password_hash,
        roles,
        tenant_id,
        status: "active".into(),
        status_reason: None,
        confidentiality_version: None,
        confidentiality_at: None,
        failed_logins: 0,
        last_failed_login_at: None,
        locked_until: None,
        last_login_at: None,
        created_at: now,
        updated_at: now,
        reactivated_at: None,
        access_epoch: 0,
    }
}

pub(super) fn join_roles(roles: &[Role]) -> String {
    roles.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
}

fn valid_username(name: &str) -> bool {
    (3..=64).contains(&name.len())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@')
        })
}

impl Vault {
    pub async fn create_user(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        input: NewUser,
    ) -> ServiceResult<User> {
        let id = new_id();
        let mut record = self.record(
            p,
            ctx,
            "user.create",
            input.tenant_id.as_deref(),
            user_ref(&id),
        );
        self.refuse_minting_by_key(p, &record).await?;
        let roles = parse_role_list(&input.roles)?;
        let customer = roles.iter().any(Role::is_customer);
        let tenant = self
            .tenant_of_new_principal(&record, input.tenant_id.as_deref(), customer)
            .await?;
        let mut resource = ResourceFacts::new(ResourceKind::User, &id, input.tenant_id.clone());
        resource.target_roles = roles.clone();
        let action = if customer {
            Action::CreateCustomerUser
        } else {
            Action::CreateStaffUser
        };
        let decision = self.decide(
            p,
            action,
            &resource,
            tenant.as_ref().map(|t| &t.facts),
            ctx.purpose,
        );
        self.enforce(&mut record, &decision).await?;

        if !valid_username(&input.username) {
            return Err(ServiceError::validation(
                "usernames are 3 to 64 characters of a-z, 0-9, '.', '_', '-', '@'",
                &["username"],
            ));
        }
        let display_name = required_text(Some(&input.display_name), "display_name", 200)?;
        let secret = Zeroizing::new(input.password);
        // Roles that must have a second factor can do nothing before enrolling one: the shorter
        // minimum applies to them from the start.
        password::check_policy_for(&secret, &input.username, self.mfa_required_for(&roles))?;
        let hash = password::hash(secret).await?;
        let now = self.now();
        let row = new_user_row(
            id,
            input.username,
            display_name,
            hash,
            join_roles(&roles),
            input.tenant_id,
            now,
        );
        self.commit_attempt(
            vec![record],
            vec![Mutation::InsertUser(row.clone())],
            ("user.create_not_applied", "username_taken"),
        )
        .await?;
        Ok(user_view(&row))
    }

    /// The tenant a new user or service principal joins: customers belong to exactly one (which
    /// must exist), staff to none.
    pub(super) async fn tenant_of_new_principal(
        &self,
        record: &AuditRecord,
        tenant_id: Option<&str>,
        customer: bool,
    ) -> ServiceResult<Option<std::sync::Arc<crate::TenantState>>> {
        match (tenant_id, customer) {
            (Some(tid), true) => Ok(Some(self.tenant_for(record, tid).await?)),
            (None, false) => Ok(None),
            (None, true) => Err(ServiceError::validation(
                "customer accounts belong to a tenant",
                &["tenant_id"],
            )),
            (Some(_), false) => Err(ServiceError::validation(
                "staff accounts belong to no tenant",
                &["tenant_id"],
            )),
        }
    }

    /// Loads the target user and decides `action` on it; `not_found` when it does not exist.
    pub(super) async fn user_target(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        user_id: &str,
        action: Action,
        audit_action: &'static str,
        extra_roles: &[Role],
    ) -> ServiceResult<(UserRow, AuditRecord)> {
        let mut record = self.record(p, ctx, audit_action, None, user_ref(user_id));
        let Some(user) = self.user_row(user_id).await? else {
            return Err(self
                .refuse(record, strongroom_policy::Denial::NotFound, Vec::new())
                .await);
        };
        record.tenant_id = user.tenant_id.clone();
        let tenant = match &user.tenant_id {
            Some(tid) => self.tenant_state(tid).await?,
            None => None,
        };
        let mut resource = ResourceFacts::new(ResourceKind::User, user_id, user.tenant_id.clone());
        resource.target_roles = parse_roles(&user.roles);
        for r in extra_roles {
            if !resource.target_roles.contains(r) {
                resource.target_roles.push(*r);
            }
        }
        let decision = self.decide(
            p,
            action,
            &resource,
            tenant.as_ref().map(|t| &t.facts),
            ctx.purpose,
        );
        self.enforce(&mut record, &decision).await?;
        Ok(((*user).clone(), record))
    }

    pub async fn user(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        user_id: &str,
    ) -> ServiceResult<User> {
        let (user, record) = self
            .user_target(p, ctx, user_id, Action::ReadUser, "user.read", &[])
            .await?;
        self.audit.append(record).await?;
        Ok(user_view(&user))
    }

    /// Changes roles; the user's sessions, API keys and lockbox grants are revoked, and their
    /// assigned cases released when the new roles cannot be assigned cases.
    pub async fn update_user_roles(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        user_id: &str,
        patch: UserPatch,
    ) -> ServiceResult<User> {
        let roles = parse_role_list(&patch.roles)?;
        let (mut user, record) = self
            .user_target(
                p,
                ctx,
                user_id,
                Action::UpdateUserRoles,
                "user.update_roles",
                &roles,
            )
            .await?;
        self.refuse_minting_by_key(p, &record).await?;
        let admin_guard = if roles.contains(&Role::PlatformAdmin) {
            None
        } else {
            Some(self.keep_last_admin(&user, &record).await?)
        };
        let was_customer = parse_roles(&user.roles).iter().any(Role::is_customer);
        if was_customer != roles.iter().any(Role::is_customer) {
            return Err(ServiceError::validation(
                "a role change cannot turn staff into a customer or back",
                &["roles"],
            ));
        }
        let now = self.now();
        user.roles = join_roles(&roles);
        user.updated_at = now;
        let actor = record.actor.clone();
        let (mut records, grant_mutations) = self
            .revoke_user_grants_effects(
                actor.as_ref(),
                &ctx.request_id,
                user_id,
                "role_change",
                now,
            )
            .await?;
        records.insert(0, record);
        // Reach through assigned cases belongs to the roles that may be assigned; a user moved
        // out of them keeps none of it (and does not get it back by being moved back).
        let assignable = roles
            .iter()
            .any(|r| matches!(r, Role::SupportEngineer | Role::SupportSupervisor));
        let (released, releases) = if assignable {
            (Vec::new(), Vec::new())
        } else {
            self.release_assignments_effects(
                actor.as_ref(),
                &ctx.request_id,
                user_id,
                "role_change",
                now,
            )
            .await?
        };
        records.extend(released);
        let mut mutations = vec![
            Mutation::SetUserRoles {
                user_id: user_id.to_owned(),
                roles: user.roles.clone(),
                at: now,
            },
            Mutation::RevokeUserSessions {
                user_id: user_id.to_owned(),
                at: now,
            },
            Mutation::RevokeUserApiKeys {
                user_id: user_id.to_owned(),
                at: now,
            },
        ];
        mutations.extend(admin_guard);
        mutations.extend(grant_mutations);
        mutations.extend(releases);
        self.commit_attempt(
            records,
            mutations,
            ("user.update_roles_not_applied", "changed_meanwhile"),
        )
        .await?;
        self.sessions.revoke_user(user_id);
        self.api_keys.revoke_user(user_id);
        self.forget_user(user_id);
        Ok(user_view(&user))
    }

    pub async fn suspend_user(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        user_id: &str,
        suspension: Suspension,
    ) -> ServiceResult<User> {
        let reason = SuspendReason::parse(&suspension.reason).ok_or_else(|| {
            ServiceError::validation(
                "reason must be one of left, role_change, inactivity, other",
                &["reason"],
            )
        })?;
        let (mut user, mut record) = self
            .user_target(p, ctx, user_id, Action::SuspendUser, "user.suspend", &[])
            .await?;
        record.reason = Some(reason.as_str());
        let admin_guard = self.keep_last_admin(&user, &record).await?;
        let now = self.now();
        user.status = "suspended".into();
        user.status_reason = Some(reason.as_str().into());
        user.updated_at = now;
        let actor = record.actor.clone();
        let (mut records, mut mutations) = self
            .suspension_effects(actor.as_ref(), &ctx.request_id, user_id, now)
            .await?;
        records.insert(0, record);
        mutations.insert(
            0,
            Mutation::SetUserStatus {
                user_id: user_id.to_owned(),
                status: user.status.clone(),
                reason: user.status_reason.clone(),
                at: now,
            },
        );
        mutations.push(admin_guard);
        self.commit_attempt(
            records,
            mutations,
            ("user.suspend_not_applied", "changed_meanwhile"),
        )
        .await?;
        self.after_suspension(user_id);
        Ok(user_view(&user))
    }

    /// Everything a suspension takes away besides the status: sessions, the cases assigned to the
    /// account, each released and recorded in its tenant's log, and its lockbox requests and grants.
    pub(crate) async fn suspension_effects(
        &self,
        actor: Option<&Actor>,
        request_id: &str,
        user_id: &str,
        at: i64,
    ) -> ServiceResult<(Vec<AuditRecord>, Vec<Mutation>)> {
        let mut records = Vec::new();
        let mut mutations = vec![
            Mutation::RevokeUserSessions {
                user_id: user_id.to_owned(),
                at,
            },
            Mutation::RevokeUserApiKeys {
                user_id: user_id.to_owned(),
                at,
            },
        ];
        let (released, releases) = self
            .release_assignments_effects(actor, request_id, user_id, "account_suspended", at)
            .await?;
        records.extend(released);
        mutations.extend(releases);
        let (grant_records, grant_mutations) = self
            .revoke_user_grants_effects(actor, request_id, user_id, "account_suspended", at)
            .await?;
        records.extend(grant_records);
        mutations.extend(grant_mutations);
        Ok((records, mutations))
    }

    /// Every case assigned to the account, released (only if still assigned to it when the batch
    /// commits) and recorded in its tenant's log.
    async fn release_assignments_effects(
        &self,
        actor: Option<&Actor>,
        request_id: &str,
        user_id: &str,
        reason: &'static str,
        at: i64,
    ) -> ServiceResult<(Vec<AuditRecord>, Vec<Mutation>)> {
        let mut records = Vec::new();
        let mut mutations = Vec::new();
        for assignment in self.store.assignments_of(user_id).await? {
            let mut record = AuditRecord::new("case.unassign", request_id);
            record.actor = actor.cloned();
            record.tenant_id = Some(assignment.tenant_id.clone());
            record.resource = Some(ResourceRef {
                kind: "case",
                id: Some(assignment.case_id.clone()),
            });
            record.records = vec![user_id.to_owned()];
            record.reason = Some(reason);
            records.push(record);
            mutations.push(Mutation::ReleaseAssignment {
                scope: TenantScope::new(assignment.tenant_id),
                case_id: assignment.case_id,
                assignee_id: user_id.to_owned(),
                at,
            });
        }
        mutations.push(Mutation::RequireNoAssignments {
            user_id: user_id.to_owned(),
        });
        Ok((records, mutations))
    }

    /// Refuses to take away the last active platform administrator: nobody could administer the
    /// vault any more (the refusal recorded from `record`, the change's record). The change must
    /// commit with the returned guard, which checks again inside the transaction: two admins
    /// suspending each other at once, or a `user` row read from a cache that has not seen a
    /// promotion yet (another instance's), so the guard goes with every change, admin or not.
    pub(crate) async fn keep_last_admin(
        &self,
        user: &UserRow,
        record: &AuditRecord,
    ) -> ServiceResult<Mutation> {
        let is_admin = |u: &UserRow| {
            u.status == "active" && parse_roles(&u.roles).contains(&Role::PlatformAdmin)
        };
        let guard = Mutation::KeepAnotherPlatformAdmin {
            user_id: user.id.clone(),
        };
        if !is_admin(user) {
            return Ok(guard);
        }
        let users = self.all_users().await?;
        if users.iter().any(|u| u.id != user.id && is_admin(u)) {
            return Ok(guard);
        }
        let err = ServiceError::new(
            ErrorCode::Conflict,
            "the last active platform administrator cannot be suspended or demoted",
        );
        Err(self
            .refuse_because(record.clone(), "last_platform_admin", err)
            .await)
    }

    /// Every account, for governance jobs that judge all of them.
    pub(crate) async fn all_users(&self) -> ServiceResult<Vec<UserRow>> {
        const PAGE: u32 = 500;
        let mut users = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.users(after.as_deref(), PAGE).await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|u| u.id.clone());
            users.extend(page);
            if !full {
                return Ok(users);
            }
        }
    }

    /// Drops what memory still holds for a suspended account, so its next request is refused.
    pub(crate) fn after_suspension(&self, user_id: &str) {
        self.sessions.revoke_user(user_id);
        self.api_keys.revoke_user(user_id);
        self.forget_user(user_id);
    }

    pub async fn reactivate_user(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        user_id: &str,
    ) -> ServiceResult<User> {
        let (mut user, record) = self
            .user_target(
                p,
                ctx,
                user_id,
                Action::ReactivateUser,
                "user.reactivate",
                &[],
            )
            .await?;
        self.refuse_minting_by_key(p, &record).await?;
        user.status = "active".into();
        user.status_reason = None;
        user.updated_at = self.now();
        self.audit
            .commit(
                vec![record],
                vec![Mutation::SetUserStatus {
                    user_id: user_id.to_owned(),
                    status: user.status.clone(),
                    reason: None,
                    at: user.updated_at,
                }],
            )
            .await?;
        self.forget_user(user_id);
        Ok(user_view(&user))
    }
}
