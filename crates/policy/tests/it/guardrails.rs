//! Guardrails outside the matrix: account and tenant state, priorities, and
//! that extra policies cannot lift them.

use strongroom_policy::{
    AccessRequest, Action, Decision, Denial, FieldClass, PolicyEngine, PrincipalFacts, Purpose,
    ResourceFacts, ResourceKind, Role, Visibility,
};

use crate::common::{
    CONTENT_ACTIONS, OTHER, OWN, decide, engine, permissive_engine, principal, record, tenant,
};
use crate::expected::role_purposes;

fn engines() -> [&'static PolicyEngine; 2] {
    [engine(), permissive_engine()]
}

/// A request the role could otherwise make: own tenant, assigned, own purpose.
fn content(engine: &PolicyEngine, p: &PrincipalFacts, role: Role, action: Action) -> Decision {
    let mut r = record(action, OWN);
    r.assigned_to_principal = true;
    let t = tenant(OWN, false, Purpose::ALL);
    let purpose = role_purposes(role).first().copied();
    decide(engine, p, action, &r, Some(&t), purpose)
}

fn has_id(d: &Decision, id: &str) -> bool {
    d.policy_ids.iter().any(|x| x == id)
}

#[test]
fn suspended_accounts_can_do_nothing() {
    for engine in engines() {
        for &role in Role::ALL {
            let mut p = principal(role);
            p.active = false;
            for &action in Action::ALL {
                let d = if action.is_content() {
                    content(engine, &p, role, action)
                } else {
                    let r = ResourceFacts::new(
                        match action {
                            Action::ReadAuditLog
                            | Action::ReadIncidents
                            | Action::CloseIncident => ResourceKind::AuditLog,
                            Action::RequestAccess
                            | Action::ApproveAccess
                            | Action::RevokeAccess
                            | Action::ListAccessRequests => ResourceKind::AccessRequest,
                            Action::CreateTenant
                            | Action::ReadTenant
                            | Action::UpdateTenantInstructions
                            | Action::ReadTenantAccessLog
                            | Action::ApproveExport
                            | Action::ReviewExports
                            | Action::DeleteTenant
                            | Action::ManageTenantKeys => ResourceKind::Tenant,
                            _ => ResourceKind::User,
                        },
                        "x",
                        Some(OTHER.into()),
                    );
                    decide(engine, &p, action, &r, None, None)
                };
                assert_eq!(d.denial, Some(Denial::AccountSuspended), "{role} {action}");
                assert!(has_id(&d, "guardrail.account_suspended"));
            }
        }
    }
}

#[test]
fn staff_must_acknowledge_confidentiality() {
    for engine in engines() {
        for role in [
            Role::SupportEngineer,
            Role::SupportSupervisor,
            Role::SecurityOfficer,
        ] {
            let mut p = principal(role);
            assert!(content(engine, &p, role, Action::ReadCase).allowed);
            p.confidentiality_acknowledged = false;
            let d = content(engine, &p, role, Action::ReadCase);
            assert_eq!(
                d.denial,
                Some(Denial::ConfidentialityAcknowledgementRequired),
                "{role}"
            );
            // administration is not customer data
            let r = ResourceFacts::new(ResourceKind::AccessRequest, "ar", Some(OWN.into()));
            let t = tenant(OWN, true, Purpose::ALL);
            let d = decide(engine, &p, Action::RequestAccess, &r, Some(&t), None);
            assert!(d.allowed, "{role} {d:?}");
        }
        for role in [Role::TenantAdmin, Role::TenantUser] {
            let mut p = principal(role);
            p.confidentiality_acknowledged = false;
            assert!(
                content(engine, &p, role, Action::ReadCase).allowed,
                "{role}"
            );
        }
    }
}

#[test]
fn an_inactive_tenant_is_not_found_except_to_the_platform_admin() {
    for engine in engines() {
        let mut t = tenant(OWN, false, Purpose::ALL);
        t.active = false;
        let r = ResourceFacts::new(ResourceKind::Tenant, OWN, Some(OWN.into()));
        for role in [Role::TenantAdmin, Role::TenantUser] {
            let d = decide(
                engine,
                &principal(role),
                Action::ReadTenant,
                &r,
                Some(&t),
                None,
            );
            assert_eq!(d.denial, Some(Denial::NotFound), "{role}");
            let mut c = record(Action::ReadCase, OWN);
            c.assigned_to_principal = true;
            let d = decide(
                engine,
                &principal(role),
                Action::ReadCase,
                &c,
                Some(&t),
                Some(Purpose::CustomerSelfService),
            );
            assert_eq!(d.denial, Some(Denial::NotFound), "{role}");
        }
        let mut c = record(Action::ReadCase, OWN);
        c.assigned_to_principal = true;
        let d = decide(
            engine,
            &principal(Role::SupportEngineer),
            Action::ReadCase,
            &c,
            Some(&t),
            Some(Purpose::CaseResolution),
        );
        assert_eq!(d.denial, Some(Denial::NotFound));
        let admin = principal(Role::PlatformAdmin);
        for action in [Action::ReadTenant, Action::UpdateTenantInstructions] {
            assert!(
                decide(engine, &admin, action, &r, Some(&t), None).allowed,
                "{action}"
            );
        }
    }
}

#[test]
fn denials_follow_the_priority_order() {
    // suspended beats cross-tenant; cross-tenant beats a missing purpose;
    // a missing purpose beats separation of duties.
    let mut p = principal(Role::TenantUser);
    p.active = false;
    let r = record(Action::ReadCase, OTHER);
    let t = tenant(OTHER, false, Purpose::ALL);
    assert_eq!(
        decide(engine(), &p, Action::ReadCase, &r, Some(&t), None).denial,
        Some(Denial::AccountSuspended)
    );
    p.active = true;
    let d = decide(engine(), &p, Action::ReadCase, &r, Some(&t), None);
    assert_eq!(d.denial, Some(Denial::NotFound));
    assert!(
        has_id(&d, "guardrail.cross_tenant") && has_id(&d, "guardrail.purpose_required"),
        "{d:?}"
    );
    let d = decide(
        engine(),
        &principal(Role::PlatformAdmin),
        Action::ReadCase,
        &r,
        Some(&t),
        None,
    );
    assert_eq!(d.denial, Some(Denial::PurposeRequired));
    // unacknowledged beats a wrong purpose
    let mut p = principal(Role::SupportEngineer);
    p.confidentiality_acknowledged = false;
    let d = decide(
        engine(),
        &p,
        Action::ReadCase,
        &r,
        Some(&t),
        Some(Purpose::Marketing),
    );
    assert_eq!(
        d.denial,
        Some(Denial::ConfidentialityAcknowledgementRequired)
    );
}

#[test]
fn content_needs_the_tenant_and_a_matching_record() {
    for engine in engines() {
        let p = principal(Role::TenantAdmin);
        let r = record(Action::ReadCase, OWN);
        let purpose = Some(Purpose::CustomerSelfService);
        assert_eq!(
            decide(engine, &p, Action::ReadCase, &r, None, purpose).denial,
            Some(Denial::NotFound)
        );
        // the tenant given is not the record's tenant
        let t = tenant(OTHER, false, Purpose::ALL);
        assert_eq!(
            decide(engine, &p, Action::ReadCase, &r, Some(&t), purpose).denial,
            Some(Denial::NotFound)
        );
        let p = principal(Role::SupportEngineer);
        let mut r = record(Action::ReadCase, OTHER);
        r.assigned_to_principal = true;
        let t = tenant(OWN, false, Purpose::ALL);
        let d = decide(
            engine,
            &p,
            Action::ReadCase,
            &r,
            Some(&t),
            Some(Purpose::CaseResolution),
        );
        assert_eq!(d.denial, Some(Denial::NotFound));
        r.tenant_id = None;
        let d = decide(
            engine,
            &p,
            Action::ReadCase,
            &r,
            Some(&t),
            Some(Purpose::CaseResolution),
        );
        assert_eq!(d.denial, Some(Denial::NotFound));
    }
}

#[test]
fn odd_principals_get_nothing_even_with_a_permissive_policy() {
    // customer and staff roles on one account
    let mut p = principal(Role::TenantAdmin);
    p.roles.push(Role::SupportEngineer);
    for engine in engines() {
        for &action in CONTENT_ACTIONS {
            let d = content(engine, &p, Role::TenantAdmin, action);
            assert_eq!(d.denial, Some(Denial::Forbidden), "{action}");
            assert!(has_id(&d, "guardrail.mixed_roles"));
        }
    }
    // no role at all: no purpose is theirs
    let mut p = principal(Role::SupportEngineer);
    p.roles.clear();
    let d = content(
        permissive_engine(),
        &p,
        Role::SupportEngineer,
        Action::ReadCase,
    );
    assert_eq!(d.denial, Some(Denial::PurposeNotPermitted));
    // a customer without a tenant sees nothing
    let mut p = principal(Role::TenantAdmin);
    p.tenant_id = None;
    let d = content(permissive_engine(), &p, Role::TenantAdmin, Action::ReadCase);
    assert_eq!(d.denial, Some(Denial::NotFound));
}

#[test]
fn permissive_policy_cannot_lift_administration_guardrails() {
    let e = permissive_engine();
    // self-approval
    let mut r = ResourceFacts::new(ResourceKind::AccessRequest, "ar", Some(OWN.into()));
    r.requested_by_principal = true;
    let t = tenant(OWN, true, Purpose::ALL);
    for &role in Role::ALL {
        let d = decide(
            e,
            &principal(role),
            Action::ApproveAccess,
            &r,
            Some(&t),
            None,
        );
        assert!(!d.allowed, "{role}");
    }
    // a tenant admin promoting a user of its tenant to staff
    let mut u = ResourceFacts::new(ResourceKind::User, "u", Some(OWN.into()));
    u.target_roles = vec![Role::TenantUser, Role::PlatformAdmin];
    let d = decide(
        e,
        &principal(Role::TenantAdmin),
        Action::UpdateUserRoles,
        &u,
        Some(&t),
        None,
    );
    assert_eq!(d.denial, Some(Denial::Forbidden));
    assert!(has_id(&d, "guardrail.customer_never_manages_staff"));
    // ... or touching another tenant's user
    let u = ResourceFacts::new(ResourceKind::User, "u", Some(OTHER.into()));
    let t2 = tenant(OTHER, true, Purpose::ALL);
    let d = decide(
        e,
        &principal(Role::TenantAdmin),
        Action::SuspendUser,
        &u,
        Some(&t2),
        None,
    );
    assert_eq!(d.denial, Some(Denial::NotFound));
}

#[test]
fn an_extra_forbid_narrows_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("no_deletes.cedar"),
        r#"
@id("tenant.no_deletes")
@reason("forbidden")
forbid (principal, action == Action::"delete_contact", resource);

// no @reason: forbidden
forbid (principal, action == Action::"create_case", resource)
when { context has purpose && context.purpose == Purpose::"data-subject-request" };
"#,
    )
    .unwrap();
    let e = PolicyEngine::load(Some(dir.path())).unwrap();
    let p = principal(Role::TenantAdmin);
    let d = content(&e, &p, Role::TenantAdmin, Action::DeleteContact);
    assert_eq!(
        (d.denial, d.policy_ids.clone()),
        (
            Some(Denial::Forbidden),
            vec!["tenant.no_deletes".to_owned()]
        )
    );
    let r = record(Action::CreateCase, OWN);
    let t = tenant(OWN, false, Purpose::ALL);
    let d = decide(
        &e,
        &p,
        Action::CreateCase,
        &r,
        Some(&t),
        Some(Purpose::DataSubjectRequest),
    );
    assert_eq!(d.policy_ids, vec!["no_deletes.cedar#1".to_owned()]);
    assert!(
        decide(
            &e,
            &p,
            Action::CreateCase,
            &r,
            Some(&t),
            Some(Purpose::CustomerSelfService)
        )
        .allowed
    );
}

/// A refusal on one field names what kept that field from the caller in clear, not the permit
/// that allowed the record.
#[test]
fn a_field_refusal_names_the_field_guardrail() {
    let e = engine();
    let user = principal(Role::TenantUser);
    let r = record(Action::UpdateContact, OWN);
    let t = tenant(OWN, false, Purpose::ALL);
    let purpose = Some(Purpose::CustomerSelfService);
    let d = decide(e, &user, Action::UpdateContact, &r, Some(&t), purpose);
    assert!(d.allowed);
    assert_eq!(d.fields.get(FieldClass::Sensitive), Visibility::Mask);
    let request = AccessRequest {
        principal: &user,
        action: Action::UpdateContact,
        resource: &r,
        tenant: Some(&t),
        purpose,
    };
    assert_eq!(
        e.field_refusal_ids(&request, FieldClass::Sensitive),
        vec!["guardrail.fields.customer_sensitive_admin_only".to_owned()]
    );
    // A class in clear has nothing to name.
    assert!(
        e.field_refusal_ids(&request, FieldClass::ContactIdentity)
            .is_empty()
    );
    // Staff: the ceiling on sensitive data.
    let engineer = principal(Role::SupportEngineer);
    let staff_request = AccessRequest {
        principal: &engineer,
        ..request
    };
    assert_eq!(
        e.field_refusal_ids(&staff_request, FieldClass::Sensitive),
        vec!["guardrail.fields.staff_no_sensitive".to_owned()]
    );
    // Withheld for want of any permit (a purpose the customer's field permit does not take): no
    // policy to name.
    let request = AccessRequest {
        purpose: Some(Purpose::CaseResolution),
        ..request
    };
    assert!(
        e.field_refusal_ids(&request, FieldClass::ContactIdentity)
            .is_empty()
    );
}

/// `action == <group>` matches no request in Cedar (a group is never the action asked), and
/// `action in <group>` matches its members: the engine's per-action slices keep that difference.
#[test]
fn equality_with_an_action_group_matches_no_action() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("group.cedar"),
        r#"
@id("tenant.equals_the_group")
permit (principal, action == Action::"content", resource);
@id("tenant.forbid_equals_the_group")
forbid (principal, action == Action::"content", resource);
"#,
    )
    .unwrap();
    let e = PolicyEngine::load(Some(dir.path())).unwrap();
    let admin = principal(Role::TenantAdmin);
    let d = content(&e, &admin, Role::TenantAdmin, Action::DeleteContact);
    assert!(d.allowed, "{:?}", d.policy_ids);
    assert!(!has_id(&d, "tenant.forbid_equals_the_group"));
    // Nor does the permit open content to a role the built-ins give none.
    let marketing = principal(Role::Marketing);
    let d = content(&e, &marketing, Role::Marketing, Action::ReadContact);
    assert!(!d.allowed);
    assert!(!has_id(&d, "tenant.equals_the_group"));

    std::fs::write(
        dir.path().join("group.cedar"),
        r#"
@id("tenant.forbid_in_the_group")
forbid (principal, action in Action::"content", resource);
"#,
    )
    .unwrap();
    let e = PolicyEngine::load(Some(dir.path())).unwrap();
    let d = content(&e, &admin, Role::TenantAdmin, Action::DeleteContact);
    assert!(!d.allowed);
    assert!(has_id(&d, "tenant.forbid_in_the_group"));
}

/// Cedar skips a policy whose evaluation fails; for a forbid that would let
/// the request through, so `decide` denies instead.
#[test]
fn an_evaluation_error_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("overflow.cedar"),
        r#"
@id("tenant.overflowing_forbid")
forbid (principal, action, resource)
when { 9223372036854775807 + (if context.caller.active then 1 else 0) > 0 };
"#,
    )
    .unwrap();
    let e = PolicyEngine::load(Some(dir.path())).unwrap();
    let p = principal(Role::TenantAdmin);
    let d = content(&e, &p, Role::TenantAdmin, Action::ReadCase);
    assert_eq!(d.denial, Some(Denial::Forbidden), "{d:?}");
    assert_eq!(d.policy_ids, vec!["tenant.overflowing_forbid".to_owned()]);
    assert_eq!(d.fields.get(FieldClass::Metadata), Visibility::Withhold);
}

#[test]
fn an_extra_permit_cannot_reveal_beyond_the_ceilings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("generous.cedar"),
        r#"
@id("deployment.engineers_see_everything")
permit (principal, action in Action::"field", resource)
when { context.caller.roles.contains(Role::"support_engineer") };
"#,
    )
    .unwrap();
    let e = PolicyEngine::load(Some(dir.path())).unwrap();
    let mut r = record(Action::ReadContact, OWN);
    r.assigned_to_principal = true;
    let t = tenant(OWN, false, Purpose::ALL);
    let d = decide(
        &e,
        &principal(Role::SupportEngineer),
        Action::ReadContact,
        &r,
        Some(&t),
        Some(Purpose::CaseResolution),
    );
    assert!(d.allowed);
    assert_eq!(d.fields.get(FieldClass::ContactDetail), Visibility::Mask);
    assert_eq!(d.fields.get(FieldClass::Sensitive), Visibility::Withhold);
}

/// Separation of duties: the guardrail fires for these roles on every
/// content action (a missing or foreign purpose may be the reported reason,
/// by priority, but the guardrail is always among the determining policies).
#[test]
fn separation_of_duties_holds_for_every_content_action() {
    for engine in engines() {
        for role in [Role::PlatformAdmin, Role::Auditor, Role::Marketing] {
            for &action in CONTENT_ACTIONS {
                for purpose in [Purpose::CaseResolution, Purpose::CustomerSelfService] {
                    let mut r = record(action, OWN);
                    r.assigned_to_principal = true;
                    let t = tenant(OWN, false, Purpose::ALL);
                    let d = decide(
                        engine,
                        &principal(role),
                        action,
                        &r,
                        Some(&t),
                        Some(purpose),
                    );
                    assert!(!d.allowed, "{role} {action}");
                    assert!(
                        has_id(&d, "guardrail.separation_of_duties"),
                        "{role} {action} {d:?}"
                    );
                }
            }
        }
    }
}
