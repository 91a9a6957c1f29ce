//! Access governance: suspension side effects, the inactivity sweep (CLI with an injected clock,
//! and API), and access reviews with their export.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::{Value, json};

use crate::kit::*;

const DAY_SECS: i64 = 86_400;

/// RFC 3339 for now + `days`.
fn days_from_now(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(days * DAY_SECS);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format time")
}

/// Runs `strongroom admin ARGS…` on `server`'s store; returns (success, stdout, stderr).
fn admin_cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .arg("admin")
        .args(args)
        .envs(server.store_env())
        .output()
        .expect("run strongroom admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sweep(server: &Server, extra: &[&str]) -> Value {
    let dir = server.data_dir.to_str().expect("utf-8 path");
    let mut args = vec!["sweep-inactive", "--data-dir", dir];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = admin_cli(server, &args);
    assert!(ok, "sweep-inactive {extra:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("report is not JSON ({e}): {stdout}"))
}

fn ids(report: &Value, list: &str) -> Vec<String> {
    let mut v: Vec<String> = report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .map(|l| l["user_id"].as_str().expect("user_id").to_owned())
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn a_role_change_out_of_support_releases_assignments() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let leaving = staff_session(&server, &admin, "support_engineer").await;
    let promoted = staff_session(&server, &admin, "support_engineer").await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let first = id_of(&create_case(&boss, &tenant, json!({"title": "Printer on fire"})).await);
    let second = id_of(&create_case(&boss, &tenant, json!({"title": "Fax is silent"})).await);
    assign(&supervisor, &tenant, &first, &leaving.id).await;
    assign(&supervisor, &tenant, &second, &promoted.id).await;

    // Out of the roles that may hold cases: the case goes back to the queue, on record.
    admin
        .patch(
            &format!("/v1/users/{}", leaving.id),
            json!({"roles": ["security_officer"]}),
        )
        .await
        .ok(200);
    let view = supervisor.get(&case_path(&tenant, &first)).await.ok(200);
    assert_eq!(view["assignee_id"], Value::Null, "{view}");
    let released = entries_with_action(&auditor, "case.unassign").await;
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0]["resource"]["id"], json!(first));
    assert_eq!(released[0]["reason"], "role_change");
    assert_eq!(released[0]["records"], json!([leaving.id]));
    // Moving back does not bring the case back.
    admin
        .patch(
            &format!("/v1/users/{}", leaving.id),
            json!({"roles": ["support_engineer"]}),
        )
        .await
        .ok(200);
    let view = supervisor.get(&case_path(&tenant, &first)).await.ok(200);
    assert_eq!(view["assignee_id"], Value::Null, "{view}");

    // Within the roles that may hold cases, the assignment stays.
    admin
        .patch(
            &format!("/v1/users/{}", promoted.id),
            json!({"roles": ["support_supervisor"]}),
        )
        .await
        .ok(200);
    let view = supervisor.get(&case_path(&tenant, &second)).await.ok(200);
    assert_eq!(view["assignee_id"], json!(promoted.id), "{view}");
    assert_eq!(
        entries_with_action(&auditor, "case.unassign").await.len(),
        1
    );
}

#[tokio::test]
async fn suspension_cuts_off_at_once_and_releases_assignments() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let case = id_of(&create_case(&boss, &tenant, json!({"title": "Printer on fire"})).await);
    assign(&supervisor, &tenant, &case, &engineer.id).await;
    engineer.get(&case_path(&tenant, &case)).await.ok(200);

    admin
        .post(
            &format!("/v1/users/{}/suspend", engineer.id),
            json!({"reason": "left"}),
        )
        .await
        .ok(200);

    // The live session stops on its very next request, and no new one can be opened.
    engineer
        .get(&case_path(&tenant, &case))
        .await
        .err(403, "account_suspended");
    try_login(&server, &engineer.username, PASSWORD)
        .await
        .err(403, "account_suspended");
    // The case is back in the queue, and the release is on record in the tenant's log.
    let view = supervisor.get(&case_path(&tenant, &case)).await.ok(200);
    assert_eq!(view["assignee_id"], Value::Null, "{view}");
    let released = entries_with_action(&auditor, "case.unassign").await;
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0]["tenant_id"], json!(tenant));
    assert_eq!(released[0]["resource"]["id"], json!(case));
    assert_eq!(released[0]["reason"], "account_suspended");
    assert_eq!(released[0]["records"], json!([engineer.id]));
    // The only platform administrator cannot be suspended or demoted: the vault would be
    // left without one.
    admin
        .post(
            &format!("/v1/users/{}/suspend", admin.id),
            json!({"reason": "other"}),
        )
        .await
        .err(409, "conflict");
    admin
        .patch(
            &format!("/v1/users/{}", admin.id),
            json!({"roles": ["auditor"]}),
        )
        .await
        .err(409, "conflict");
    admin.get("/v1/me").await.ok(200);
    for action in ["user.suspend", "user.update_roles"] {
        let refused = entries_with_action(&auditor, action).await;
        assert!(
            refused.iter().any(|e| e["decision"] == "deny"
                && e["reason"] == "last_platform_admin"
                && e["resource"]["id"] == admin.id.as_str()),
            "{action}: {refused:?}"
        );
    }
    // Nobody can hand the case back to the suspended account.
    supervisor
        .post(
            &format!("{}/assign", case_path(&tenant, &case)),
            json!({"user_id": engineer.id}),
        )
        .await
        .err(422, "validation_failed");
}

#[tokio::test]
async fn inactivity_sweep_suspends_exactly_the_inactive_and_never_the_last_admin() {
    let server = Server::start_with(
        &[
            ("STRONGROOM_INACTIVITY_SUSPEND_DAYS", "90"),
            ("STRONGROOM_INACTIVITY_WARN_DAYS", "14"),
        ],
        &[],
    );
    let admin = server.admin().await;
    let strict = create_tenant(&admin, Some(json!({"customer_inactivity_days": 30}))).await;
    let relaxed = create_tenant(&admin, None).await;
    let engineer = create_user(&admin, "support_engineer", None).await;
    let strict_user = create_user(&admin, "tenant_user", Some(&strict)).await;
    let relaxed_user = create_user(&admin, "tenant_user", Some(&relaxed)).await;
    let relaxed_admin = create_user(&admin, "tenant_admin", Some(&relaxed)).await;
    // A second administrator, active after the first: the one kept at the end.
    let second_admin = create_user(&admin, "platform_admin", None).await;
    login(&server, &second_admin.username, PASSWORD).await;
    let admin_id = admin.id.clone();

    // The API refuses a future clock unless it is a dry run, and is for governance roles only.
    admin
        .post(
            "/v1/admin/inactivity-sweep",
            json!({"as_of": days_from_now(100)}),
        )
        .await
        .err(422, "validation_failed");
    let forecast = forecast_at_day(&admin, 40).await;
    assert_eq!(ids(&forecast, "suspended"), vec![strict_user.id.clone()]);
    let engineer_session = staff_session(&server, &admin, "support_engineer").await;
    engineer_session
        .post("/v1/admin/inactivity-sweep", json!({"dry_run": true}))
        .await
        .err(403, "forbidden");

    // The command line refuses while the server holds the data dir.
    let dir = server.data_dir.to_str().expect("utf-8 path").to_owned();
    let (ok, _, stderr) = admin_cli(
        &server,
        &["sweep-inactive", "--data-dir", &dir, "--dry-run"],
    );
    assert!(!ok && stderr.contains("running server"), "{stderr}");
    let status = server.stop().await;
    assert!(status.success(), "{status}");

    // Day 40, dry run: only the customer under the tenant's 30-day limit, and nothing changes.
    let dry = sweep(&server, &["--dry-run", "--as-of", &days_from_now(40)]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(ids(&dry, "suspended"), vec![strict_user.id.clone()]);
    assert!(ids(&dry, "warned").is_empty(), "{dry}");

    // Day 80: the strict customer is suspended; everyone else is within 14 days of 90: warned.
    let day80 = sweep(&server, &["--as-of", &days_from_now(80)]);
    assert_eq!(ids(&day80, "suspended"), vec![strict_user.id.clone()]);
    let everyone_else = sorted(vec![
        admin_id.clone(),
        second_admin.id.clone(),
        engineer.id.clone(),
        relaxed_user.id.clone(),
        relaxed_admin.id.clone(),
        engineer_session.id.clone(),
    ]);
    assert_eq!(ids(&day80, "warned"), everyone_else);
    // Idempotent: the same run again changes nothing and warns nobody twice.
    let again = sweep(&server, &["--as-of", &days_from_now(80)]);
    assert!(ids(&again, "suspended").is_empty(), "{again}");
    assert!(ids(&again, "warned").is_empty(), "{again}");

    // Day 91: all inactive accounts go, except the most recently active administrator.
    let day91 = sweep(&server, &["--as-of", &days_from_now(91)]);
    assert_eq!(
        ids(&day91, "suspended"),
        sorted(vec![
            admin_id.clone(),
            engineer.id.clone(),
            relaxed_user.id.clone(),
            relaxed_admin.id.clone(),
            engineer_session.id.clone(),
        ])
    );
    assert_eq!(
        ids(&day91, "kept_last_admin"),
        vec![second_admin.id.clone()]
    );
    let day92 = sweep(&server, &["--as-of", &days_from_now(92)]);
    assert!(ids(&day92, "suspended").is_empty(), "{day92}");
    assert_eq!(
        ids(&day92, "kept_last_admin"),
        vec![second_admin.id.clone()]
    );

    // Back online: the suspended cannot log in, the kept administrator can and sees why.
    let server = server.restart().await;
    for name in [
        "admin",
        engineer.username.as_str(),
        strict_user.username.as_str(),
    ] {
        let password = if name == "admin" {
            ADMIN_PASSWORD
        } else {
            PASSWORD
        };
        try_login(&server, name, password)
            .await
            .err(403, "account_suspended");
    }
    let (kept, _) = login(&server, &second_admin.username, PASSWORD).await;
    let record = kept
        .get(&format!("/v1/users/{}", engineer.id))
        .await
        .ok(200);
    assert_eq!(record["status"], "suspended");
    assert_eq!(record["status_reason"], "inactivity");
    // The tenants' admins were told, through their notification outbox (ids only).
    kept.post(
        &format!("/v1/users/{}/reactivate", relaxed_admin.id),
        json!({}),
    )
    .await
    .ok(200);
    let (tenant_admin, _) = login(&server, &relaxed_admin.username, PASSWORD).await;
    let notices = list_items(
        &tenant_admin,
        &format!("/v1/tenants/{relaxed}/notifications?limit=500"),
    )
    .await;
    let about = |kind: &str| -> Vec<String> {
        sorted(
            notices
                .iter()
                .filter(|n| n["type"] == kind)
                .map(|n| {
                    n["payload"]["data"]["user_id"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned()
                })
                .collect(),
        )
    };
    assert_eq!(
        about("user.inactivity_warning"),
        sorted(vec![relaxed_user.id.clone(), relaxed_admin.id.clone()]),
        "{notices:?}"
    );
    assert_eq!(
        about("user.suspended_inactive"),
        sorted(vec![relaxed_user.id.clone(), relaxed_admin.id.clone()]),
        "{notices:?}"
    );
    // Reactivation restarts the clock: the next sweep leaves the account alone.
    kept.post(&format!("/v1/users/{}/reactivate", engineer.id), json!({}))
        .await
        .ok(200);
    let report = kept
        .post("/v1/admin/inactivity-sweep", json!({}))
        .await
        .ok(200);
    assert!(
        !ids(&report, "suspended").contains(&engineer.id),
        "{report}"
    );
    login(&server, &engineer.username, PASSWORD).await;
}

fn line_for<'a>(review: &'a Value, user_id: &str) -> &'a Value {
    review["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["user_id"] == user_id)
        .unwrap_or_else(|| panic!("no line for {user_id} in {review}"))
}

#[tokio::test]
async fn access_review_lists_certifies_revokes_and_exports() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let officer = staff_session(&server, &admin, "security_officer").await;
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    let customer = tenant_session(&server, &admin, "tenant_user", &tenant).await;
    let case = id_of(&create_case(&customer, &tenant, json!({"title": "Lost parcel"})).await);
    assign(&supervisor, &tenant, &case, &engineer.id).await;

    crate::mfa::enrol(&engineer, &engineer.username).await;
    // An approved operator-access grant shows in the review.
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let asked = engineer
        .post(
            &format!("/v1/tenants/{tenant}/access-requests"),
            json!({"case_id": case, "purpose": "case-resolution", "justification": "ticket 12",
                   "field_classes": ["case_content"], "duration_minutes": 60}),
        )
        .await
        .ok(201);
    boss.post(
        &format!(
            "/v1/tenants/{tenant}/access-requests/{}/approve",
            id_of(&asked)
        ),
        json!({"comment": "go ahead"}),
    )
    .await
    .ok(200);
    engineer
        .post("/v1/access-reviews", json!({}))
        .await
        .err(403, "forbidden");
    // An integration's key: its service principal is reviewed like everyone else.
    let key = admin
        .post(
            "/v1/api-keys",
            json!({"name": "crm sync", "roles": ["tenant_user"], "tenant_id": tenant,
                   "expires_at": days_from_now(30)}),
        )
        .await
        .ok(201);
    let principal = key["user_id"].as_str().expect("user_id").to_owned();
    let review = officer.post("/v1/access-reviews", json!({})).await.ok(201);
    let review_id = review["id"].as_str().expect("id").to_owned();
    assert_eq!(review["created_by"], json!(officer.id));
    assert!(review["total"].as_u64().unwrap() >= 5, "{review}");
    assert_eq!(review["pending"], review["total"]);
    let line = line_for(&review, &engineer.id);
    assert_eq!(line["roles"], json!(["support_engineer"]));
    assert_eq!(line["assignments"], 1);
    assert_eq!(line["status"], "active");
    assert!(line["last_activity_at"].is_string(), "{line}");
    assert_eq!(line["mfa_enrolled"], true);
    assert_eq!(line["active_grants"], 1);
    assert_eq!(line_for(&review, &supervisor.id)["active_grants"], 0);
    assert_eq!(line_for(&review, &principal)["api_keys"], 1);
    assert_eq!(line_for(&review, &engineer.id)["api_keys"], 0);
    assert_eq!(line_for(&review, &customer.id)["mfa_enrolled"], false);
    assert_eq!(line_for(&review, &customer.id)["tenant_id"], json!(tenant));

    let path = format!("/v1/access-reviews/{review_id}/decisions");
    let certified = officer
        .post(
            &path,
            json!({"user_id": engineer.id, "decision": "certify"}),
        )
        .await
        .ok(200);
    assert_eq!(certified["decision"], "certify");
    assert_eq!(certified["decided_by"], json!(officer.id));
    officer
        .post(&path, json!({"user_id": engineer.id, "decision": "revoke"}))
        .await
        .err(409, "conflict");
    officer
        .post(&path, json!({"user_id": officer.id, "decision": "certify"}))
        .await
        .err(403, "forbidden");
    officer
        .post(&path, json!({"user_id": "nobody", "decision": "certify"}))
        .await
        .err(404, "not_found");
    officer
        .post(&path, json!({"user_id": customer.id, "decision": "maybe"}))
        .await
        .err(400, "invalid_request");
    // Revoking suspends at once.
    officer
        .post(&path, json!({"user_id": customer.id, "decision": "revoke"}))
        .await
        .ok(200);
    customer.get("/v1/me").await.err(403, "account_suspended");
    try_login(&server, &customer.username, PASSWORD)
        .await
        .err(403, "account_suspended");

    // Kept: listed, and readable as JSON and CSV with the decisions.
    let list = officer.get("/v1/access-reviews").await.ok(200);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == review_id.as_str()),
        "{list}"
    );
    let kept = officer
        .get(&format!("/v1/access-reviews/{review_id}"))
        .await
        .ok(200);
    assert_eq!(line_for(&kept, &customer.id)["decision"], "revoke");
    assert_eq!(
        kept["pending"].as_u64().unwrap(),
        kept["total"].as_u64().unwrap() - 2
    );
    let csv = officer
        .get(&format!("/v1/access-reviews/{review_id}?format=csv"))
        .await;
    assert_eq!(csv.status.as_u16(), 200, "{}", csv.text);
    let content_type = csv.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let mut rows = csv.text.lines();
    assert!(
        rows.next().unwrap().starts_with("user_id,username,roles,"),
        "{}",
        csv.text
    );
    let engineer_row = rows
        .find(|r| r.starts_with(&engineer.id))
        .unwrap_or_else(|| panic!("no CSV row for the engineer: {}", csv.text));
    assert!(engineer_row.contains(&engineer.username), "{engineer_row}");
    assert!(engineer_row.contains(",certify,"), "{engineer_row}");
    officer
        .get(&format!("/v1/access-reviews/{review_id}?format=xml"))
        .await
        .err(400, "invalid_request");
    officer
        .get("/v1/access-reviews/no-such-review")
        .await
        .err(404, "not_found");

    // The operator's command line takes a review of a stopped server, to a private file.
    assert!(server.stop().await.success());
    let out = server.root().join("review.csv");
    let dir = server.data_dir.to_str().expect("utf-8 path");
    let (ok, _, stderr) = admin_cli(
        &server,
        &[
            "access-review",
            "--data-dir",
            dir,
            "--format",
            "csv",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{stderr}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.lines()
            .any(|r| r.starts_with(&customer.id) && r.contains(",suspended,")),
        "{text}"
    );
    let (ok, stdout, stderr) = admin_cli(&server, &["access-review", "--data-dir", dir]);
    assert!(ok, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON review");
    assert_eq!(json["created_by"], Value::Null);
    assert_eq!(line_for(&json, &engineer.id)["assignments"], 1);
}

#[tokio::test]
async fn a_new_confidentiality_agreement_must_be_acknowledged_again() {
    let server = Server::start_with(&[("STRONGROOM_CONFIDENTIALITY_VERSION", "2026-01")], &[]);
    let admin = server.admin().await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let case = id_of(&create_case(&boss, &tenant, json!({"title": "Router reboots"})).await);
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    assign(&supervisor, &tenant, &case, &engineer.id).await;
    engineer.get(&case_path(&tenant, &case)).await.ok(200);

    // The operator publishes version 2026-02.
    let (server, engineer) = server.restart_with_agreement("2026-02", &engineer).await;
    engineer
        .get(&case_path(&tenant, &case))
        .await
        .err(403, "confidentiality_acknowledgement_required");
    let agreement = engineer.get("/v1/confidentiality").await.ok(200);
    assert_eq!(agreement["version"], "2026-02");
    engineer
        .post("/v1/me/confidentiality", json!({"version": "2026-01"}))
        .await
        .err(422, "validation_failed");
    engineer
        .post("/v1/me/confidentiality", json!({"version": "2026-02"}))
        .await
        .ok(200);
    engineer.get(&case_path(&tenant, &case)).await.ok(200);
    let me = engineer.get("/v1/me").await.ok(200);
    assert_eq!(me["confidentiality_acknowledged_version"], "2026-02");

    // Both acknowledgements are kept, each with its version and time.
    let auditor = server.anon().with_token(auditor.token()).with_purpose(None);
    let acks: Vec<Value> = entries_with_action(&auditor, "user.acknowledge_confidentiality")
        .await
        .into_iter()
        .filter(|e| e["actor"]["user_id"] == engineer_id(&me))
        .collect();
    let versions: Vec<&Value> = acks.iter().map(|e| &e["resource"]["id"]).collect();
    assert_eq!(
        versions,
        vec![&json!("2026-01"), &json!("2026-02")],
        "{acks:?}"
    );
    assert!(acks.iter().all(|e| e["time"].is_string()), "{acks:?}");
    assert!(server.stop().await.success());
    let mut db = server.db().await;
    let kept: Vec<String> = db
        .column(
            "SELECT version FROM confidentiality_acknowledgements \
             WHERE user_id = $1 ORDER BY acknowledged_at",
            &[engineer_id(&me).into()],
        )
        .await;
    db.close().await;
    assert_eq!(kept, vec!["2026-01".to_owned(), "2026-02".to_owned()]);
}

fn engineer_id(me: &Value) -> String {
    me["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_tenant_admin_removes_its_own_inactivity_limit() {
    let server = Server::start_with(&[("STRONGROOM_INACTIVITY_SUSPEND_DAYS", "90")], &[]);
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, Some(json!({"customer_inactivity_days": 30}))).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let user = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let path = format!("/v1/tenants/{tenant}/instructions");
    let at_day_40 =
        || async { ids(&forecast_at_day(&admin, 40).await, "suspended").contains(&user.id) };
    assert!(at_day_40().await, "the tenant's 30 days apply");
    // Only the tenant's own admin changes it; 0 removes it.
    admin
        .patch(&path, json!({"customer_inactivity_days": 0}))
        .await
        .err(403, "forbidden");
    let removed = boss
        .patch(&path, json!({"customer_inactivity_days": 0}))
        .await
        .ok(200);
    assert_eq!(
        removed["instructions"]["customer_inactivity_days"],
        Value::Null,
        "{removed}"
    );
    assert!(!at_day_40().await, "the platform's 90 days alone apply");
    boss.patch(&path, json!({"customer_inactivity_days": 3651}))
        .await
        .err(422, "validation_failed");
    // The limit is the tenant's to set, as any change of it.
    admin
        .patch(&path, json!({"customer_inactivity_days": 30}))
        .await
        .err(403, "forbidden");
    boss.patch(&path, json!({"customer_inactivity_days": 30}))
        .await
        .ok(200);
    assert!(at_day_40().await, "the tenant's 30 days apply again");
}

/// The inactivity sweep's dry run as of `days` from now, through the API.
async fn forecast_at_day(admin: &Api, days: i64) -> Value {
    admin
        .post(
            "/v1/admin/inactivity-sweep",
            json!({"dry_run": true, "as_of": days_from_now(days)}),
        )
        .await
        .ok(200)
}
