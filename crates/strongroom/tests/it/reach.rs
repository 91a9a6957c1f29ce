//! `GET /v1/me/cases`: the cases a caller reaches in every tenant — assigned, granted, or asked
//! for — so that staff find their work without naming each tenant; nothing more, and audited.

use serde_json::{Value, json};

use crate::kit::*;
use crate::lockbox::{ask, request, request_action, world};

async fn my_cases(api: &Api) -> Vec<Value> {
    let page = api.get("/v1/me/cases").await.ok(200);
    assert!(page["next_cursor"].is_null(), "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn staff_see_the_cases_they_reach_and_no_other() {
    // Its own server: the audit entry is looked for among the log's first 500.
    let server = Server::start();
    let w = world(&server, json!({})).await;
    let t = &w.tenant;

    // The assignment: case A, not case B of the same tenant.
    let reach = my_cases(&w.engineer).await;
    let here: Vec<&Value> = reach
        .iter()
        .filter(|r| r["tenant_id"] == t.as_str())
        .collect();
    assert_eq!(here.len(), 1, "{reach:?}");
    assert_eq!(here[0]["case_id"], w.case_a.as_str());
    assert_eq!(here[0]["reach"], "assignment");
    assert!(here[0]["request_id"].is_null() && here[0]["until"].is_null());

    // A request of theirs shows as pending, then as the grant it becomes, with its end.
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 60)).await);
    let pending = my_cases(&w.engineer).await;
    let asked = pending
        .iter()
        .find(|r| r["request_id"] == rid.as_str())
        .unwrap_or_else(|| panic!("request not listed: {pending:?}"));
    assert_eq!(asked["reach"], "pending_request");
    assert_eq!(asked["case_id"], w.case_a.as_str());
    assert!(asked["until"].is_string(), "{asked}");
    w.admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .ok(200);
    let granted = my_cases(&w.engineer).await;
    let grant = granted
        .iter()
        .find(|r| r["request_id"] == rid.as_str())
        .unwrap_or_else(|| panic!("grant not listed: {granted:?}"));
    assert_eq!(grant["reach"], "grant");
    assert!(grant["until"].is_string(), "{grant}");
    assert!(
        granted.iter().all(|r| r["case_id"] != w.case_b.as_str()),
        "{granted:?}"
    );

    // Paged like every list; a case's lines stay together, even past a limit of one.
    let first = w.engineer.get("/v1/me/cases?limit=1").await.ok(200);
    let lines = first["items"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{first}");
    assert!(
        lines.iter().all(|r| r["case_id"] == w.case_a.as_str()),
        "{first}"
    );
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a cursor after a full page");
    let rest = w
        .engineer
        .get(&format!("/v1/me/cases?limit=1&cursor={cursor}"))
        .await
        .ok(200);
    assert_eq!(rest["items"], json!([]), "{rest}");
    assert!(rest["next_cursor"].is_null(), "{rest}");
    for bad in ["limit=0", "limit=501", "cursor=Jane", "color=red"] {
        w.engineer
            .get(&format!("/v1/me/cases?{bad}"))
            .await
            .err(400, "invalid_request");
    }

    // A customer is assigned nothing and asks for nothing.
    assert!(my_cases(&w.admin).await.is_empty());

    // Recorded, with the case ids it named.
    let platform = server.admin().await;
    let auditor = staff_session(&server, &platform, "auditor").await;
    let listed = entries_with_action(&auditor, "case.list_own_reach").await;
    assert!(
        listed.iter().any(|e| {
            e["actor"]["user_id"] == w.engineer.id.as_str()
                && e["records"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|id| id == w.case_a.as_str()))
        }),
        "{listed:?}"
    );
}
