//! The decision cache returns exactly what Cedar would, stays bounded, and
//! ids reach Cedar whenever a policy names one.

use std::sync::Arc;

use strongroom_policy::{Action, Denial, PolicyEngine, Purpose, Role};

use crate::common::{CONTENT_ACTIONS, OWN, decide, engine, principal, record, tenant};

#[test]
fn cached_and_uncached_decisions_agree() {
    let uncached = PolicyEngine::load(None).unwrap().with_cache_capacity(0);
    let cached = PolicyEngine::load(None).unwrap();
    let mut n = 0;
    for &role in Role::ALL {
        for &action in CONTENT_ACTIONS {
            for purpose in [
                None,
                Some(Purpose::CaseResolution),
                Some(Purpose::CustomerSelfService),
            ] {
                for assigned in [false, true] {
                    // distinct ids and tenants, same facts otherwise
                    for i in 0..3 {
                        let mut p = principal(role);
                        p.id = format!("u{i}");
                        let tid = format!("t{i}");
                        if role.is_customer() {
                            p.tenant_id = Some(tid.clone());
                        }
                        let mut r = record(action, &tid);
                        r.id = format!("r{i}");
                        r.assigned_to_principal = assigned;
                        let t = tenant(&tid, false, Purpose::ALL);
                        let a = decide(&uncached, &p, action, &r, Some(&t), purpose);
                        let b = decide(&cached, &p, action, &r, Some(&t), purpose);
                        assert_eq!(a, b, "{role} {action} {purpose:?}");
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(uncached.cached_decisions(), 0);
    // three distinct ids per fact set share one entry
    assert_eq!(cached.cached_decisions(), n / 3);
}

#[test]
fn the_cache_is_bounded() {
    let e = PolicyEngine::load(None).unwrap().with_cache_capacity(4);
    for &action in CONTENT_ACTIONS {
        for &role in Role::ALL {
            let r = record(action, OWN);
            let t = tenant(OWN, false, Purpose::ALL);
            decide(
                &e,
                &principal(role),
                action,
                &r,
                Some(&t),
                Some(Purpose::CustomerSelfService),
            );
            assert!(e.cached_decisions() <= 8);
        }
    }
    e.clear_cache();
    assert_eq!(e.cached_decisions(), 0);
}

#[test]
fn a_policy_naming_a_tenant_makes_ids_reach_cedar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.cedar"),
        r#"
@id("tenant.acme.no_self_service_deletes")
forbid (principal, action == Action::"delete_contact", resource)
when { context has tenant && context.tenant.id == Tenant::"acme" };
"#,
    )
    .unwrap();
    let e = PolicyEngine::load(Some(dir.path())).unwrap();
    assert!(e.uses_identities());
    assert!(!engine().uses_identities());
    for (tid, allowed) in [("acme", false), ("zeta", true), ("acme", false)] {
        let mut p = principal(Role::TenantAdmin);
        p.tenant_id = Some(tid.into());
        let r = record(Action::DeleteContact, tid);
        let t = tenant(tid, false, Purpose::ALL);
        let d = decide(
            &e,
            &p,
            Action::DeleteContact,
            &r,
            Some(&t),
            Some(Purpose::CustomerSelfService),
        );
        assert_eq!(d.allowed, allowed, "{tid}: {d:?}");
    }
}

#[test]
fn a_policy_naming_a_user_makes_ids_reach_cedar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mallory.cedar"),
        "@id(\"deployment.block_mallory\") forbid (principal == User::\"mallory\", action, resource);\n",
    )
    .unwrap();
    let e = PolicyEngine::load(Some(dir.path())).unwrap();
    assert!(e.uses_identities());
    let r = record(Action::ReadCase, OWN);
    let t = tenant(OWN, false, Purpose::ALL);
    let mut p = principal(Role::TenantUser);
    let purpose = Some(Purpose::CustomerSelfService);
    assert!(decide(&e, &p, Action::ReadCase, &r, Some(&t), purpose).allowed);
    p.id = "mallory".into();
    let d = decide(&e, &p, Action::ReadCase, &r, Some(&t), purpose);
    assert_eq!(
        (d.denial, d.policy_ids),
        (
            Some(Denial::Forbidden),
            vec!["deployment.block_mallory".to_owned()]
        )
    );
}

#[test]
fn decisions_are_consistent_across_threads() {
    let e = Arc::new(PolicyEngine::load(None).unwrap().with_cache_capacity(8));
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 0..200 {
                    let role = Role::ALL[(i + k) % Role::ALL.len()];
                    let action = CONTENT_ACTIONS[i % CONTENT_ACTIONS.len()];
                    let mut r = record(action, OWN);
                    r.assigned_to_principal = i % 2 == 0;
                    let t = tenant(OWN, i % 3 == 0, Purpose::ALL);
                    let purpose = Some(Purpose::ALL[i % Purpose::ALL.len()]);
                    let p = principal(role);
                    let got = decide(&e, &p, action, &r, Some(&t), purpose);
                    let want = decide(engine(), &p, action, &r, Some(&t), purpose);
                    assert_eq!(got, want);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
