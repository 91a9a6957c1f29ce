//! Every role × content action × own/other tenant × reach × purpose ×
//! approval on/off × tenant purposes, against `expected.rs`.

use strongroom_policy::{Decision, FieldClass, PolicyEngine, Purpose, Role};

use crate::common::{
    CONTENT_ACTIONS, OTHER, OWN, decide, engine, grant, permissive_engine, principal, record,
    tenant,
};
use crate::expected::{Case, Outcome, Reach};

fn reaches() -> Vec<(&'static str, Reach)> {
    vec![
        (
            "unassigned",
            Reach {
                assigned: false,
                grant: None,
            },
        ),
        (
            "assigned",
            Reach {
                assigned: true,
                grant: None,
            },
        ),
        (
            "grant{case_content,contact_detail,sensitive}",
            Reach {
                assigned: false,
                grant: Some(vec![
                    FieldClass::CaseContent,
                    FieldClass::ContactDetail,
                    FieldClass::Sensitive,
                ]),
            },
        ),
        (
            "assigned+grant{contact_identity}",
            Reach {
                assigned: true,
                grant: Some(vec![FieldClass::ContactIdentity]),
            },
        ),
    ]
}

fn tenant_purposes() -> Vec<Vec<Purpose>> {
    vec![
        Purpose::ALL.to_vec(),
        vec![
            Purpose::CustomerSelfService,
            Purpose::CaseResolution,
            Purpose::SecurityInvestigation,
        ],
    ]
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let purposes: Vec<Option<Purpose>> = std::iter::once(None)
        .chain(Purpose::ALL.iter().copied().map(Some))
        .collect();
    for &role in Role::ALL {
        for &action in CONTENT_ACTIONS {
            for own_tenant in [true, false] {
                for (_, reach) in reaches() {
                    for &purpose in &purposes {
                        for approval in [false, true] {
                            for allowed in tenant_purposes() {
                                out.push(Case {
                                    role,
                                    action,
                                    own_tenant,
                                    reach: reach.clone(),
                                    purpose,
                                    approval,
                                    tenant_allowed: allowed,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn run(engine: &PolicyEngine, case: &Case) -> Decision {
    let p = principal(case.role);
    let tenant_id = if case.own_tenant { OWN } else { OTHER };
    let mut r = record(case.action, tenant_id);
    r.assigned_to_principal = case.reach.assigned;
    r.grant = case.reach.grant.as_ref().map(|g| grant("grant-1", g));
    let t = tenant(tenant_id, case.approval, &case.tenant_allowed);
    decide(engine, &p, case.action, &r, Some(&t), case.purpose)
}

fn actual(d: &Decision) -> Outcome {
    match (d.allowed, d.denial) {
        (true, None) => Ok(d.fields),
        (false, Some(denial)) => Err(denial),
        _ => panic!("inconsistent decision {d:?}"),
    }
}

fn check(engine: &PolicyEngine, expected: impl Fn(&Case) -> Outcome) -> usize {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let d = run(engine, case);
        let got = actual(&d);
        let want = expected(case);
        if got != want {
            failures.push(format!(
                "{case:?}\n    want {want:?}\n    got  {got:?} {:?}",
                d.policy_ids
            ));
        }
        if !d.allowed {
            assert_eq!(d.fields, strongroom_policy::FieldMask::none(), "{case:?}");
        } else {
            assert!(
                !d.policy_ids.is_empty(),
                "allowed without a policy id: {case:?}"
            );
        }
        if d.denial
            .is_some_and(|x| x != strongroom_policy::Denial::Forbidden)
        {
            // every specific denial comes from a named guardrail
            assert!(
                d.policy_ids.iter().any(|id| id.starts_with("guardrail.")),
                "{case:?} {d:?}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ; first ones:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    cases.len()
}

#[test]
fn authorization_matrix() {
    let n = check(engine(), Case::expected);
    assert_eq!(n, 8 * 16 * 2 * 4 * 9 * 2 * 2);
}

/// The same matrix with `permit(principal, action, resource);` added: every
/// guardrail still denies with the same reason, and no field exceeds the
/// guardrail ceilings.
#[test]
fn authorization_matrix_with_permissive_extra_policy() {
    check(permissive_engine(), Case::expected_permissive);
}

/// The matrix is not vacuous: it holds allowed and denied cases of every kind.
#[test]
fn matrix_covers_every_outcome() {
    let cases = cases();
    let outcomes: Vec<Outcome> = cases.iter().map(Case::expected).collect();
    for d in [
        strongroom_policy::Denial::NotFound,
        strongroom_policy::Denial::Forbidden,
        strongroom_policy::Denial::PurposeRequired,
        strongroom_policy::Denial::PurposeNotPermitted,
        strongroom_policy::Denial::AccessGrantRequired,
    ] {
        assert!(outcomes.contains(&Err(d)), "{d:?} never expected");
    }
    let allowed = outcomes.iter().filter(|o| o.is_ok()).count();
    assert!(allowed > 500, "only {allowed} allowed cases");
    for role in [
        Role::TenantAdmin,
        Role::TenantUser,
        Role::SupportEngineer,
        Role::SupportSupervisor,
        Role::SecurityOfficer,
    ] {
        assert!(
            cases
                .iter()
                .zip(&outcomes)
                .any(|(c, o)| c.role == role && o.is_ok()),
            "{role} never allowed"
        );
    }
}
