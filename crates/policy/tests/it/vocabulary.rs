//! Names match API.md and round-trip.

use std::str::FromStr;

use strongroom_policy::{Action, Denial, FieldClass, FieldMask, Purpose, Role, Visibility};

#[test]
fn names_round_trip() {
    for r in Role::ALL {
        assert_eq!(Role::from_str(r.as_str()), Ok(*r));
        assert_eq!(r.is_staff(), !r.is_customer());
    }
    for p in Purpose::ALL {
        assert_eq!(Purpose::from_str(p.as_str()), Ok(*p));
    }
    for c in FieldClass::ALL {
        assert_eq!(FieldClass::from_str(c.as_str()), Ok(*c));
    }
    for a in Action::ALL {
        assert_eq!(Action::from_str(a.as_str()), Ok(*a));
    }
    assert!(Role::from_str("root").is_err());
    assert!(Purpose::from_str("Case-Resolution").is_err());
}

#[test]
fn api_names() {
    let roles: Vec<&str> = Role::ALL.iter().map(Role::as_str).collect();
    assert_eq!(
        roles,
        [
            "platform_admin",
            "auditor",
            "security_officer",
            "support_supervisor",
            "support_engineer",
            "marketing",
            "tenant_admin",
            "tenant_user"
        ]
    );
    let purposes: Vec<&str> = Purpose::ALL.iter().map(Purpose::as_str).collect();
    assert_eq!(
        purposes,
        [
            "case-resolution",
            "customer-self-service",
            "data-subject-request",
            "security-investigation",
            "legal-compliance",
            "account-management",
            "marketing",
            "advertising"
        ]
    );
    let customers: Vec<Role> = Role::ALL
        .iter()
        .copied()
        .filter(Role::is_customer)
        .collect();
    assert_eq!(customers, [Role::TenantAdmin, Role::TenantUser]);
    assert_eq!(Action::ALL.iter().filter(|a| a.is_content()).count(), 16);
}

#[test]
fn denial_codes_and_priority() {
    let codes: Vec<&str> = Denial::BY_PRIORITY.iter().map(Denial::code).collect();
    assert_eq!(
        codes,
        [
            "account_suspended",
            "not_found",
            "purpose_required",
            "forbidden",
            "confidentiality_acknowledgement_required",
            "purpose_not_permitted",
            "access_grant_required"
        ]
    );
    for d in Denial::BY_PRIORITY {
        assert_eq!(Denial::from_code(d.code()), Some(*d));
    }
    assert!(Denial::AccountSuspended.priority() < Denial::AccessGrantRequired.priority());
}

#[test]
fn field_mask() {
    let m = FieldMask::none();
    assert!(
        FieldClass::ALL
            .iter()
            .all(|&c| m.get(c) == Visibility::Withhold)
    );
    let m = m.with(FieldClass::Sensitive, Visibility::Mask);
    assert_eq!(m.get(FieldClass::Sensitive), Visibility::Mask);
    assert_eq!(m.get(FieldClass::Metadata), Visibility::Withhold);
    assert_eq!(m.iter().count(), 5);
    assert_eq!(
        FieldMask::all(Visibility::Reveal).get(FieldClass::ContactDetail),
        Visibility::Reveal
    );
}

#[test]
fn serde_names_match() {
    // serde and as_str agree (core serialises these in API bodies)
    fn json<T: serde::Serialize>(v: T) -> String {
        serde_json::to_string(&v).unwrap()
    }
    assert_eq!(json(Purpose::CaseResolution), "\"case-resolution\"");
    assert_eq!(json(Role::SupportEngineer), "\"support_engineer\"");
    assert_eq!(json(FieldClass::ContactIdentity), "\"contact_identity\"");
}
