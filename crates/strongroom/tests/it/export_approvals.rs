//! Approving an export is a change like any other: of two approvers racing on one export, one
//! approval applies and the other is refused, and the log never shows two approvals of one export.
//! And an export lives under the instructions it was made under: tightened, they end it.

use std::collections::HashMap;

use serde_json::json;

use crate::exports::{export_path, exports_path, key_pair, records_scope};
use crate::kit::*;

/// Exports raced on; each is one chance for both approvals to pass the read before either commits.
const ROUNDS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_racing_approvals_one_applies_and_the_log_says_which() {
    let server = Server::start_with(
        &[
            ("STRONGROOM_EXPORT_APPROVAL_THRESHOLD", "1"),
            ("STRONGROOM_EXPORT_QUOTA_PER_DAY_TENANT_USER", "1000"),
        ],
        &[],
    );
    let platform = server.admin().await;
    let tenant = create_tenant(&platform, None).await;
    let admin = tenant_session(&server, &platform, "tenant_admin", &tenant).await;
    let user = tenant_session(&server, &platform, "tenant_user", &tenant).await;
    let supervisor = staff_session(&server, &platform, "support_supervisor").await;
    for i in 0..2 {
        create_contact(&user, &tenant, json!({"name": format!("Person {i}")})).await;
    }
    let (_, recipient) = key_pair();
    let body = json!({"scope": records_scope(&["contacts"]), "recipient": recipient});

    let mut exports = Vec::new();
    for _ in 0..ROUNDS {
        let pending = user
            .post(&exports_path(&tenant), body.clone())
            .await
            .ok(201);
        assert_eq!(pending["state"], "pending_approval", "{pending}");
        let id = id_of(&pending);
        let approve = export_path(&tenant, &id, "/approve");
        let (by_admin, by_supervisor) = tokio::join!(
            admin.post(&approve, json!({})),
            supervisor.post(&approve, json!({})),
        );
        let mut statuses = [by_admin.status.as_u16(), by_supervisor.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 409],
            "{} / {}",
            by_admin.text,
            by_supervisor.text
        );
        exports.push(id);
    }

    // Per export: approvals recorded as allowed, less those recorded as not applied, is one.
    let log = admin
        .get(&format!("/v1/tenants/{tenant}/access-log?limit=500"))
        .await
        .ok(200);
    let mut net: HashMap<String, i64> = HashMap::new();
    let mut refused_at_commit = 0;
    for entry in log["items"].as_array().unwrap().iter().map(|i| &i["entry"]) {
        let Some(id) = entry["resource"]["id"].as_str() else {
            continue;
        };
        let applied = match (entry["action"].as_str(), entry["decision"].as_str()) {
            (Some("export.approve"), Some("allow")) => 1,
            (Some("export.approve_not_applied"), _) => {
                refused_at_commit += 1;
                -1
            }
            _ => continue,
        };
        *net.entry(id.to_owned()).or_default() += applied;
    }
    for id in &exports {
        assert_eq!(net.get(id), Some(&1), "export {id}: {log}");
    }
    eprintln!(
        "{refused_at_commit} of {ROUNDS} races were refused at the commit, the rest at the read"
    );
}

/// A tenant that withdraws exports (or a purpose, or access without its approval) ends the
/// exports already made: a ready one is no longer downloaded, a pending one no longer approved.
#[tokio::test]
async fn tightened_instructions_end_the_open_exports() {
    let server = Server::start_with(&[("STRONGROOM_EXPORT_APPROVAL_THRESHOLD", "1")], &[]);
    let platform = server.admin().await;
    let tenant = create_tenant(&platform, None).await;
    let admin = tenant_session(&server, &platform, "tenant_admin", &tenant).await;
    let user = tenant_session(&server, &platform, "tenant_user", &tenant).await;
    let supervisor = staff_session(&server, &platform, "support_supervisor").await;
    let (_, recipient) = key_pair();
    let body = json!({"scope": records_scope(&["contacts"]), "recipient": recipient});
    create_contact(&user, &tenant, json!({"name": "Person 1"})).await;
    let ready = user
        .post(&exports_path(&tenant), body.clone())
        .await
        .ok(201);
    assert_eq!(ready["state"], "ready", "{ready}");
    create_contact(&user, &tenant, json!({"name": "Person 2"})).await;
    let pending = user.post(&exports_path(&tenant), body).await.ok(201);
    assert_eq!(pending["state"], "pending_approval", "{pending}");

    admin
        .patch(
            &format!("/v1/tenants/{tenant}/instructions"),
            json!({"export_allowed": false}),
        )
        .await
        .ok(200);
    user.get(&export_path(&tenant, &id_of(&ready), "/download"))
        .await
        .err(404, "not_found");
    supervisor
        .post(
            &export_path(&tenant, &id_of(&pending), "/approve"),
            json!({}),
        )
        .await
        .err(409, "conflict");
    for export in [&ready, &pending] {
        let now = user
            .get(&export_path(&tenant, &id_of(export), ""))
            .await
            .ok(200);
        assert_eq!(now["state"], "expired", "{now}");
    }
}

/// Four eyes over the day, not per export: exports small enough to leave alone are counted
/// together, and the one that takes them past the threshold waits for a second person.
#[tokio::test]
async fn a_large_export_split_into_small_ones_still_needs_approval() {
    let server = Server::start_with(&[("STRONGROOM_EXPORT_APPROVAL_THRESHOLD", "2")], &[]);
    let platform = server.admin().await;
    let tenant = create_tenant(&platform, None).await;
    let user = tenant_session(&server, &platform, "tenant_user", &tenant).await;
    let (_, recipient) = key_pair();
    let mut states = Vec::new();
    for i in 0..3 {
        let contact = create_contact(&user, &tenant, json!({"name": format!("Person {i}")})).await;
        let one = json!({"scope": {"kind": "records", "record_kinds": ["contacts"],
                                   "ids": [id_of(&contact)]},
                         "recipient": recipient});
        let export = user.post(&exports_path(&tenant), one).await.ok(201);
        assert_eq!(export["record_count"], 1, "{export}");
        states.push(export["state"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(states, ["ready", "ready", "pending_approval"]);
}
