//! Operator policy files: validated against the schema at start-up, and unable to open a guardrail.

use serde_json::json;

use crate::kit::*;

/// Runs `serve` with `STRONGROOM_POLICY_DIR=dir` and expects it to refuse to start; returns stderr.
fn refused_start(dir: &std::path::Path) -> String {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (err, _) = refused_serve(&data, &[("STRONGROOM_POLICY_DIR", dir.as_os_str())]);
    assert!(
        !data.join("run/listen.json").exists(),
        "a refused server must never listen"
    );
    err
}

#[test]
fn policy_with_a_syntax_error_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.cedar"),
        "permit(principal, action resource);",
    )
    .unwrap();
    let err = refused_start(dir.path());
    assert!(
        err.contains("broken.cedar"),
        "stderr does not name the file: {err}"
    );
}

#[test]
fn policy_failing_strict_validation_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.cedar"),
        "@id(\"ops.typo\")\npermit(principal, action, resource) when { context.no_such_attribute };",
    )
    .unwrap();
    let err = refused_start(dir.path());
    assert!(
        err.contains("typo.cedar"),
        "stderr does not name the file: {err}"
    );
}

#[tokio::test]
async fn a_permissive_extra_policy_lets_no_guardrail_through() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("allow-everything.cedar"),
        "@id(\"ops.allow_everything\")\npermit(principal, action, resource);",
    )
    .unwrap();
    let server = Server::start_with(
        &[("STRONGROOM_POLICY_DIR", dir.path().to_str().unwrap())],
        &[],
    );
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let other = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contact = create_contact(
        &boss,
        &tenant,
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "notes": "n"}),
    )
    .await;
    let path = contact_path(&tenant, &id_of(&contact));

    // Separation of duties: the platform administrator still never reads content.
    admin
        .with_purpose(Some("case-resolution"))
        .get(&path)
        .await
        .err(403, "forbidden");
    // Staff without an assignment.
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    engineer
        .with_purpose(Some("case-resolution"))
        .get(&path)
        .await
        .err(403, "access_grant_required");
    // Marketing never reaches content, whatever the role.
    boss.with_purpose(Some("marketing"))
        .get(&path)
        .await
        .err(403, "purpose_not_permitted");
    // Another tenant's customer: not found, not forbidden.
    let stranger = tenant_session(&server, &admin, "tenant_admin", &other).await;
    stranger
        .with_purpose(Some("customer-self-service"))
        .get(&path)
        .await
        .err(404, "not_found");
    // Staff who have not acknowledged the agreement.
    let fresh = create_user(&admin, "support_supervisor", None).await;
    let (unacked, _) = login(&server, &fresh.username, PASSWORD).await;
    unacked
        .with_purpose(Some("case-resolution"))
        .get(&cases_path(&tenant))
        .await
        .err(403, "confidentiality_acknowledgement_required");
    // The owner still reads it: the extra policy did not break the normal path.
    boss.with_purpose(Some("customer-self-service"))
        .get(&path)
        .await
        .ok(200);
}

/// Who sees every export of a tenant is a policy decision (`review_exports`), so an operator's
/// policy can narrow it: here supervisors see only their own, while the tenant's admin still sees
/// all of them, and the requester theirs.
#[tokio::test]
async fn an_extra_policy_can_keep_supervisors_out_of_a_tenants_exports() {
    use crate::exports::{export_path, exports_path, key_pair, records_scope, world};

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("exports.cedar"),
        "@id(\"ops.exports_for_tenant_admins_only\")\n\
         forbid (principal, action == Action::\"review_exports\", resource)\n\
         when { context.caller.roles.contains(Role::\"support_supervisor\") };\n",
    )
    .unwrap();
    let server = Server::start_with(
        &[("STRONGROOM_POLICY_DIR", dir.path().to_str().unwrap())],
        &[],
    );
    let w = world(&server).await;
    let (_, recipient) = key_pair();
    let created = w
        .engineer
        .post(
            &exports_path(&w.tenant),
            json!({"scope": records_scope(&["cases"]), "recipient": recipient}),
        )
        .await
        .ok(201);
    let id = id_of(&created);

    let platform = server.admin().await;
    let supervisor = staff_session(&server, &platform, "support_supervisor").await;
    assert!(
        list_items(&supervisor, &exports_path(&w.tenant))
            .await
            .is_empty()
    );
    supervisor
        .get(&export_path(&w.tenant, &id, ""))
        .await
        .err(404, "not_found");
    let listed = list_items(&w.admin, &exports_path(&w.tenant)).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    w.admin.get(&export_path(&w.tenant, &id, "")).await.ok(200);
    let own = list_items(&w.engineer, &exports_path(&w.tenant)).await;
    assert_eq!(own.len(), 1, "{own:?}");
    // A tenant that does not exist has no exports to list.
    supervisor
        .get(&exports_path(&rand_hex(16)))
        .await
        .err(404, "not_found");

    // The tenant admin's view names the policy that gave it.
    let auditor = staff_session(&server, &platform, "auditor").await;
    let reads = entries_with_action(&auditor, "export.read").await;
    assert!(
        reads
            .iter()
            .any(|e| e["policy_ids"].to_string().contains("role.review_exports")),
        "{reads:?}"
    );
}
