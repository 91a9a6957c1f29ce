//! Operator grants: intersection with the role ceiling, scope to one record.

use strongroom_policy::{Action, Denial, FieldClass, Purpose, Role, Visibility};

use crate::common::{OWN, decide, engine, grant, principal, record, tenant};
use crate::expected::mask;

use Visibility::{Mask as M, Reveal as R, Withhold as W};

#[test]
fn a_grant_reveals_its_classes_within_the_role_ceiling() {
    let t = tenant(OWN, true, Purpose::ALL);
    let all = FieldClass::ALL;
    for (role, purpose, want) in [
        (
            Role::SupportEngineer,
            Purpose::CaseResolution,
            [R, R, R, M, W],
        ),
        (
            Role::SupportSupervisor,
            Purpose::CaseResolution,
            [R, R, R, M, W],
        ),
        (
            Role::SecurityOfficer,
            Purpose::SecurityInvestigation,
            [R, R, M, M, W],
        ),
        (
            Role::SecurityOfficer,
            Purpose::LegalCompliance,
            [R, R, M, M, W],
        ),
    ] {
        // a grant of every class does not lift the role's ceiling
        let mut r = record(Action::ReadContact, OWN);
        r.grant = Some(grant("g-all", all));
        let d = decide(
            engine(),
            &principal(role),
            Action::ReadContact,
            &r,
            Some(&t),
            Some(purpose),
        );
        assert!(d.allowed, "{role}: {d:?}");
        assert_eq!(d.fields, mask(want), "{role}");

        // a narrower grant narrows the view
        r.grant = Some(grant(
            "g-detail",
            &[FieldClass::ContactDetail, FieldClass::Sensitive],
        ));
        let d = decide(
            engine(),
            &principal(role),
            Action::ReadContact,
            &r,
            Some(&t),
            Some(purpose),
        );
        assert!(d.allowed, "{role}: {d:?}");
        assert_eq!(d.fields, mask([R, W, W, M, W]), "{role}");
    }
}

#[test]
fn an_assignment_alone_gives_metadata_when_approval_is_required() {
    let p = principal(Role::SupportEngineer);
    let mut r = record(Action::ReadCase, OWN);
    r.assigned_to_principal = true;
    let purpose = Some(Purpose::CaseResolution);

    let t = tenant(OWN, true, Purpose::ALL);
    let d = decide(engine(), &p, Action::ReadCase, &r, Some(&t), purpose);
    assert!(d.allowed);
    assert_eq!(d.fields, mask([R, W, W, W, W]));
    for action in [Action::ReadComments, Action::AddComment, Action::UpdateCase] {
        let d = decide(engine(), &p, action, &r, Some(&t), purpose);
        assert_eq!(d.denial, Some(Denial::AccessGrantRequired), "{action}");
        assert!(
            d.policy_ids
                .contains(&"guardrail.lockbox.case_content".to_owned())
        );
    }

    let t = tenant(OWN, false, Purpose::ALL);
    let d = decide(engine(), &p, Action::ReadCase, &r, Some(&t), purpose);
    assert_eq!(d.fields, mask([R, R, R, M, W]));
    assert!(decide(engine(), &p, Action::AddComment, &r, Some(&t), purpose).allowed);
}

/// The service layer passes the grant of the record being asked about; a
/// grant on case A is absent (`None`) when case B is asked about.
#[test]
fn a_grant_on_one_case_does_nothing_for_another() {
    let p = principal(Role::SupportEngineer);
    let t = tenant(OWN, true, Purpose::ALL);
    let purpose = Some(Purpose::CaseResolution);
    let mut case_a = record(Action::ReadCase, OWN);
    case_a.id = "case-a".into();
    case_a.grant = Some(grant("g-a", &[FieldClass::CaseContent]));
    let d = decide(
        engine(),
        &p,
        Action::ReadComments,
        &case_a,
        Some(&t),
        purpose,
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.fields.get(FieldClass::CaseContent), R);

    let mut case_b = record(Action::ReadCase, OWN);
    case_b.id = "case-b".into();
    let d = decide(
        engine(),
        &p,
        Action::ReadComments,
        &case_b,
        Some(&t),
        purpose,
    );
    assert_eq!(d.denial, Some(Denial::AccessGrantRequired));
    assert_eq!(d.fields.get(FieldClass::CaseContent), W);

    // assigned to B but the grant is A's: metadata only on B
    case_b.assigned_to_principal = true;
    let d = decide(engine(), &p, Action::ReadCase, &case_b, Some(&t), purpose);
    assert!(d.allowed);
    assert_eq!(d.fields, mask([R, W, W, W, W]));
}

#[test]
fn a_grant_is_for_staff_reach_only() {
    // a customer of another tenant holding a (bogus) grant still sees nothing
    let p = principal(Role::TenantAdmin);
    let mut r = record(Action::ReadCase, "tenant-other");
    r.grant = Some(grant("g", FieldClass::ALL));
    let t = tenant("tenant-other", false, Purpose::ALL);
    let d = decide(
        engine(),
        &p,
        Action::ReadCase,
        &r,
        Some(&t),
        Some(Purpose::CustomerSelfService),
    );
    assert_eq!(d.denial, Some(Denial::NotFound));
}
