//! Retention: `strongroom admin purge-expired` (with an injected clock) purges exactly the closed
//! and resolved cases older than their tenant's `retention_days`, with their comments and files; records
//! each purge in the tenant's audit log; and is idempotent.

use std::process::Command;

use serde_json::{Value, json};

use crate::kit::*;

const DAY_SECS: i64 = 86_400;

fn days_from_now(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(days * DAY_SECS);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn purge(server: &Server, extra: &[&str]) -> Value {
    let dir = server.data_dir.to_str().unwrap();
    let out = Command::new(binary())
        .args(["admin", "purge-expired", "--data-dir", dir])
        .args(extra)
        .envs(server.store_env())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "purge-expired {extra:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn purged_ids(report: &Value) -> Vec<String> {
    let mut ids: Vec<String> = report["purged"]
        .as_array()
        .unwrap_or_else(|| panic!("no purged list: {report}"))
        .iter()
        .map(|l| l["case_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn case_with_status(api: &Api, tenant: &str, status: &str) -> String {
    let case = create_case(api, tenant, json!({"title": format!("{status} case")})).await;
    let id = id_of(&case);
    add_comment(api, tenant, &id, "a comment").await;
    add_attachment(api, tenant, &id, "a file", b"file content").await;
    if status != "open" {
        api.patch(&case_path(tenant, &id), json!({"status": status}))
            .await
            .ok(200);
    }
    id
}

/// The case's comments and files: each case is given one of each.
async fn content_rows(server: &Server, case_id: &str) -> i64 {
    let mut db = server.db().await;
    let n = db
        .int(
            "SELECT CAST((SELECT count(*) FROM comments WHERE case_id = $1) \
             + (SELECT count(*) FROM attachments WHERE case_id = $1) AS BIGINT)",
            &[case_id.into()],
        )
        .await;
    db.close().await;
    n
}

#[tokio::test]
async fn retention_purges_exactly_the_expired_closed_cases_once() {
    let server = Server::start_with(&[("STRONGROOM_RETENTION_SWEEP_INTERVAL_SECS", "0")], &[]);
    let admin = server.admin().await;
    let short = create_tenant(&admin, Some(json!({"retention_days": 1}))).await;
    let long = create_tenant(&admin, Some(json!({"retention_days": 30}))).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &short).await;
    let closed = case_with_status(&boss, &short, "closed").await;
    let resolved = case_with_status(&boss, &short, "resolved").await;
    let open = case_with_status(&boss, &short, "open").await;
    let pending = case_with_status(&boss, &short, "pending").await;
    let other = tenant_session(&server, &admin, "tenant_admin", &long).await;
    let long_closed = case_with_status(&other, &long, "closed").await;
    assert!(server.stop().await.success());

    // Nothing is old enough yet.
    assert_eq!(purged_ids(&purge(&server, &[])), Vec::<String>::new());

    // Two days on: the short tenant's closed and resolved cases only. A dry run changes nothing.
    let in_two_days = days_from_now(2);
    let dry = purge(&server, &["--dry-run", "--as-of", &in_two_days]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        purged_ids(&dry),
        sorted(vec![closed.clone(), resolved.clone()])
    );
    assert_eq!(content_rows(&server, &closed).await, 2, "dry run purged");
    let real = purge(&server, &["--as-of", &in_two_days]);
    assert_eq!(
        purged_ids(&real),
        sorted(vec![closed.clone(), resolved.clone()])
    );
    assert_eq!(content_rows(&server, &closed).await, 0);
    assert_eq!(content_rows(&server, &resolved).await, 0);
    assert_eq!(content_rows(&server, &open).await, 2);
    // Idempotent.
    assert_eq!(
        purged_ids(&purge(&server, &["--as-of", &in_two_days])),
        Vec::<String>::new()
    );
    // A month on, the other tenant's limit is reached too; open cases are never purged.
    let later = purge(&server, &["--as-of", &days_from_now(31)]);
    assert_eq!(purged_ids(&later), vec![long_closed.clone()]);

    let server = server.restart().await;
    let admin = server.admin().await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &short).await;
    for gone in [&closed, &resolved] {
        boss.get(&case_path(&short, gone))
            .await
            .err(404, "not_found");
    }
    for kept in [&open, &pending] {
        boss.get(&case_path(&short, kept)).await.ok(200);
    }

    // One audit entry per purged case, in its tenant's log.
    let auditor = staff_session(&server, &admin, "auditor").await;
    let mut entries = Vec::new();
    loop {
        let page = auditor
            .get(&format!(
                "/v1/audit/entries?start={}&limit=500",
                entries.len()
            ))
            .await
            .ok(200);
        let items = page["items"].as_array().unwrap().clone();
        let last_page = items.len() < 500;
        entries.extend(items);
        // Reading the log appends to it: stop at the first short page.
        if last_page {
            break;
        }
    }
    let mut purges: Vec<(String, String)> = entries
        .iter()
        .map(|i| &i["entry"])
        .filter(|e| e["action"] == "case.retention_purge")
        .map(|e| {
            (
                e["tenant_id"].as_str().unwrap().to_owned(),
                e["resource"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    purges.sort();
    let mut want = vec![
        (short.clone(), closed),
        (short.clone(), resolved),
        (long.clone(), long_closed),
    ];
    want.sort();
    assert_eq!(purges, want);
}
