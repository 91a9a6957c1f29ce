//! Administration and lockbox actions for every role, against a table
//! written from the brief.

use strongroom_policy::{
    Action, Decision, Denial, FieldMask, Purpose, ResourceFacts, ResourceKind, Role,
};

use crate::common::{OTHER, OWN, decide, engine, principal, tenant};
use crate::expected::first;

const ADMIN_ACTIONS: &[Action] = &[
    Action::CreateTenant,
    Action::ReadTenant,
    Action::UpdateTenantInstructions,
    Action::DeleteTenant,
    Action::CreateStaffUser,
    Action::CreateCustomerUser,
    Action::ReadUser,
    Action::UpdateUserRoles,
    Action::SuspendUser,
    Action::ReactivateUser,
    Action::RevokeCredentials,
    Action::ResetSecondFactor,
    Action::ReadAuditLog,
    Action::ReadTenantAccessLog,
    Action::ReadIncidents,
    Action::CloseIncident,
    Action::ReviewAccess,
    Action::SweepInactiveUsers,
    Action::ListAssignees,
    Action::RequestAccess,
    Action::ApproveAccess,
    Action::RevokeAccess,
    Action::ListAccessRequests,
    Action::ApproveExport,
    Action::ReviewExports,
    Action::ManageTenantKeys,
];

/// Who the action is about.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// a customer user / record of the caller's (customer's) tenant
    OwnTenant,
    OtherTenant,
    /// a customer user of the own tenant being given a staff role
    OwnTenantPromotedToStaff,
    /// a staff user (no tenant)
    Staff,
}

fn kind(action: Action) -> ResourceKind {
    match action {
        Action::CreateTenant
        | Action::ReadTenant
        | Action::UpdateTenantInstructions
        | Action::DeleteTenant
        | Action::ManageTenantKeys => ResourceKind::Tenant,
        Action::ReadAuditLog | Action::ReadIncidents | Action::CloseIncident => {
            ResourceKind::AuditLog
        }
        Action::ReadTenantAccessLog | Action::ApproveExport | Action::ReviewExports => {
            ResourceKind::Tenant
        }
        Action::RequestAccess
        | Action::ApproveAccess
        | Action::RevokeAccess
        | Action::ListAccessRequests => ResourceKind::AccessRequest,
        _ => ResourceKind::User,
    }
}

fn is_user_admin(a: Action) -> bool {
    matches!(
        a,
        Action::CreateStaffUser
            | Action::CreateCustomerUser
            | Action::ReadUser
            | Action::UpdateUserRoles
            | Action::SuspendUser
            | Action::ReactivateUser
            | Action::RevokeCredentials
            | Action::ResetSecondFactor
    )
}

fn is_governance(a: Action) -> bool {
    matches!(a, Action::ReviewAccess | Action::SweepInactiveUsers)
}

fn target_tenant(action: Action, target: Target) -> Option<&'static str> {
    match (action, target) {
        (Action::CreateTenant | Action::ReadAuditLog, _) => None,
        (Action::ReviewAccess | Action::SweepInactiveUsers | Action::ListAssignees, _) => None,
        (_, Target::Staff) if kind(action) == ResourceKind::User => None,
        (_, Target::OtherTenant) => Some(OTHER),
        _ => Some(OWN),
    }
}

fn target_roles(target: Target) -> Vec<Role> {
    match target {
        Target::OwnTenant | Target::OtherTenant => vec![Role::TenantUser],
        Target::OwnTenantPromotedToStaff => vec![Role::TenantUser, Role::SupportEngineer],
        Target::Staff => vec![Role::SupportEngineer],
    }
}

fn expected(
    role: Role,
    action: Action,
    target: Target,
    requested_by_me: bool,
) -> Result<(), Denial> {
    let tenant = target_tenant(action, target);
    let roles = target_roles(target);
    let mut forbids = Vec::new();
    if role.is_customer() && tenant != Some(OWN) && action != Action::CreateStaffUser {
        forbids.push(Denial::NotFound);
    }
    let lockbox = kind(action) == ResourceKind::AccessRequest;
    if lockbox && tenant.is_none() {
        forbids.push(Denial::NotFound);
    }
    let has_staff = roles.iter().any(Role::is_staff);
    let has_customer = roles.iter().any(Role::is_customer);
    if is_user_admin(action) && role.is_customer() && has_staff {
        forbids.push(Denial::Forbidden);
    }
    if (action == Action::CreateCustomerUser && has_staff)
        || (action == Action::CreateStaffUser && has_customer)
    {
        forbids.push(Denial::Forbidden);
    }
    if matches!(action, Action::ApproveAccess | Action::ApproveExport) && requested_by_me {
        forbids.push(Denial::Forbidden);
    }
    if let Some(d) = first(forbids) {
        return Err(d);
    }
    let own = tenant == Some(OWN);
    let operator = matches!(
        role,
        Role::SupportEngineer | Role::SupportSupervisor | Role::SecurityOfficer
    );
    let permitted = match role {
        Role::PlatformAdmin => {
            matches!(
                action,
                Action::CreateTenant
                    | Action::ReadTenant
                    | Action::UpdateTenantInstructions
                    | Action::DeleteTenant
                    | Action::ManageTenantKeys
            ) || is_user_admin(action)
                || is_governance(action)
        }
        Role::TenantAdmin => {
            own && (matches!(
                action,
                Action::ReadTenant
                    | Action::UpdateTenantInstructions
                    | Action::ReadTenantAccessLog
                    | Action::ReadIncidents
                    | Action::ListAccessRequests
                    | Action::ApproveAccess
                    | Action::RevokeAccess
                    | Action::ApproveExport
                    | Action::ReviewExports
            ) || (is_user_admin(action) && action != Action::CreateStaffUser))
        }
        Role::TenantUser => own && action == Action::ReadTenant,
        Role::Auditor => matches!(action, Action::ReadAuditLog | Action::ReadIncidents),
        Role::SecurityOfficer
            if matches!(
                action,
                Action::ReadAuditLog
                    | Action::RevokeCredentials
                    | Action::ReadIncidents
                    | Action::CloseIncident
            ) || is_governance(action) =>
        {
            true
        }
        _ if operator => {
            matches!(action, Action::RequestAccess | Action::ListAccessRequests)
                || (action == Action::RevokeAccess && requested_by_me)
                || (matches!(
                    action,
                    Action::ApproveExport | Action::ReviewExports | Action::ListAssignees
                ) && role == Role::SupportSupervisor)
        }
        _ => false,
    };
    if permitted {
        Ok(())
    } else {
        Err(Denial::Forbidden)
    }
}

fn run(role: Role, action: Action, target: Target, requested_by_me: bool) -> Decision {
    let p = principal(role);
    let tenant_id = target_tenant(action, target);
    let mut r = ResourceFacts::new(kind(action), "target-1", tenant_id.map(str::to_owned));
    r.target_roles = target_roles(target);
    r.requested_by_principal = requested_by_me;
    let t = tenant_id.map(|id| tenant(id, true, Purpose::ALL));
    // a purpose on an administration action changes nothing
    decide(
        engine(),
        &p,
        action,
        &r,
        t.as_ref(),
        Some(Purpose::Marketing),
    )
}

#[test]
fn administration_matrix() {
    let mut failures = Vec::new();
    let mut n = 0;
    for &role in Role::ALL {
        for &action in ADMIN_ACTIONS {
            for target in [
                Target::OwnTenant,
                Target::OtherTenant,
                Target::OwnTenantPromotedToStaff,
                Target::Staff,
            ] {
                for requested_by_me in [false, true] {
                    n += 1;
                    let d = run(role, action, target, requested_by_me);
                    assert_eq!(d.fields, FieldMask::none(), "no content fields on {action}");
                    let got = if d.allowed {
                        Ok(())
                    } else {
                        Err(d.denial.unwrap())
                    };
                    let want = expected(role, action, target, requested_by_me);
                    if got != want {
                        failures.push(format!(
                            "{role} {action} {target:?} requested_by_me={requested_by_me}: want {want:?} got {got:?} {:?}",
                            d.policy_ids
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(n, Role::ALL.len() * ADMIN_ACTIONS.len() * 4 * 2);
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn self_approval_is_refused_by_its_guardrail() {
    let d = run(
        Role::TenantAdmin,
        Action::ApproveAccess,
        Target::OwnTenant,
        true,
    );
    assert_eq!(d.denial, Some(Denial::Forbidden));
    assert!(
        d.policy_ids.contains(&"guardrail.self_approval".to_owned()),
        "{d:?}"
    );
    let d = run(
        Role::TenantAdmin,
        Action::ApproveAccess,
        Target::OwnTenant,
        false,
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.policy_ids, vec!["role.tenant_admin.lockbox".to_owned()]);
}

#[test]
fn action_on_the_wrong_kind_of_resource_is_refused() {
    let p = principal(Role::PlatformAdmin);
    let r = ResourceFacts::new(ResourceKind::Contact, "c1", Some(OWN.into()));
    let t = tenant(OWN, false, Purpose::ALL);
    let d = decide(engine(), &p, Action::ReadTenant, &r, Some(&t), None);
    assert_eq!(d.denial, Some(Denial::Forbidden));
}
