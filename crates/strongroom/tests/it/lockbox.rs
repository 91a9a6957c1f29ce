//! Customer lockbox: operator access requests, approval by the tenant, grants enforced by the
//! policy, revocation, expiry, break-glass, notifications as signed webhooks, transparency.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kit::*;

pub(crate) static SERVER: OnceLock<Server> = OnceLock::new();

pub(crate) const ENV: &[(&str, &str)] = &[
    ("STRONGROOM_WEBHOOK_POLL_INTERVAL_MS", "200"),
    ("STRONGROOM_WEBHOOK_BACKOFF_BASE_MS", "200"),
    ("STRONGROOM_WEBHOOK_ALLOW_LOOPBACK_HTTP", "true"),
    // An export of a case and its comment needs approval; of the case alone, not.
    ("STRONGROOM_EXPORT_APPROVAL_THRESHOLD", "1"),
];

pub(crate) fn requests_path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/access-requests")
}

pub(crate) fn request_action(tenant: &str, request: &str, action: &str) -> String {
    format!("/v1/tenants/{tenant}/access-requests/{request}/{action}")
}

/// A tenant that requires approval, its admin, a contact, a case on it with a comment, and a
/// second case; the engineer is assigned to the first case.
pub(crate) struct World {
    pub(crate) tenant: String,
    pub(crate) admin: Session,
    pub(crate) engineer: Session,
    pub(crate) case_a: String,
    pub(crate) case_b: String,
    pub(crate) contact: String,
}

pub(crate) async fn world(server: &Server, extra: Value) -> World {
    let platform = server.admin().await;
    let mut instructions = json!({"operator_access_requires_approval": true});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        instructions[k] = v;
    }
    let tenant = create_tenant(&platform, Some(instructions)).await;
    let admin = tenant_session(server, &platform, "tenant_admin", &tenant).await;
    let admin = Session {
        api: admin.api.with_purpose(Some("customer-self-service")),
        ..admin
    };
    let contact = id_of(
        &create_contact(
            &admin,
            &tenant,
            json!({"name": "Ada Lockbox", "email": "ada@example.com", "phone": "+44 20 7946 0000"}),
        )
        .await,
    );
    let case_a = id_of(
        &create_case(
            &admin,
            &tenant,
            json!({"title": "Printer on fire", "description": "Smoke", "contact_id": contact}),
        )
        .await,
    );
    add_comment(&admin, &tenant, &case_a, "It is still burning").await;
    let case_b = id_of(&create_case(&admin, &tenant, json!({"title": "Other secret"})).await);
    let engineer = staff_session(server, &platform, "support_engineer").await;
    let supervisor = staff_session(server, &platform, "support_supervisor").await;
    assign(&supervisor, &tenant, &case_a, &engineer.id).await;
    World {
        tenant,
        admin,
        engineer,
        case_a,
        case_b,
        contact,
    }
}

pub(crate) async fn request(api: &Api, tenant: &str, body: Value) -> Value {
    api.post(&requests_path(tenant), body).await.ok(201)
}

pub(crate) fn ask(case: &str, classes: &[&str], minutes: u32) -> Value {
    json!({
        "case_id": case,
        "purpose": "case-resolution",
        "justification": "ticket 4711: customer asked us to look",
        "field_classes": classes,
        "duration_minutes": minutes,
    })
}

/// Entries of the tenant's access log.
pub(crate) async fn access_log(admin: &Api, tenant: &str) -> Vec<Value> {
    list_items(admin, &format!("/v1/tenants/{tenant}/access-log?limit=500")).await
}

#[tokio::test]
async fn request_approve_reveal_revoke() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let comments = comments_path(t, &w.case_a);

    // The assignment alone gives metadata: the tenant requires approval.
    let case = w.engineer.get(&case_path(t, &w.case_a)).await.ok(200);
    assert!(case.get("title").is_none(), "title before approval: {case}");
    w.engineer
        .get(&comments)
        .await
        .err(403, "access_grant_required");

    let req = request(&w.engineer, t, ask(&w.case_a, &["case_content"], 60)).await;
    assert_eq!(req["state"], "pending", "{req}");
    let rid = id_of(&req);
    w.engineer
        .get(&comments)
        .await
        .err(403, "access_grant_required");

    // The customer sees who asks, their role, the case, purpose, justification, classes, duration.
    let pending = list_items(&w.admin, &format!("{}?state=pending", requests_path(t))).await;
    let seen = pending
        .iter()
        .find(|r| r["id"] == rid.as_str())
        .unwrap_or_else(|| panic!("request not listed: {pending:?}"));
    // The listing opened its justification: the entry names the requests shown.
    let listed = access_log(&w.admin, t).await.into_iter().any(|e| {
        e["entry"]["action"] == "access.list"
            && e["entry"]["actor"]["user_id"] == w.admin.id.as_str()
            && e["entry"]["records"]
                .as_array()
                .is_some_and(|r| r.iter().any(|id| id == rid.as_str()))
    });
    assert!(listed, "the listing's entry names the request");
    assert_eq!(seen["requester"]["id"], w.engineer.id.as_str());
    assert_eq!(seen["requester"]["username"], w.engineer.username.as_str());
    assert_eq!(seen["requester"]["roles"], json!(["support_engineer"]));
    assert_eq!(seen["case_id"], w.case_a.as_str());
    assert_eq!(seen["purpose"], "case-resolution");
    assert_eq!(
        seen["justification"],
        "ticket 4711: customer asked us to look"
    );
    assert_eq!(seen["field_classes"], json!(["case_content"]));
    assert_eq!(seen["duration_minutes"], 60);

    let approved = w
        .admin
        .post(
            &request_action(t, &rid, "approve"),
            json!({"comment": "ok, go ahead"}),
        )
        .await
        .ok(200);
    assert_eq!(approved["state"], "approved", "{approved}");
    assert_eq!(approved["comment"], "ok, go ahead");

    // Content within the granted classes only.
    let items = list_items(&w.engineer, &comments).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["body"], "It is still burning");
    let case = w.engineer.get(&case_path(t, &w.case_a)).await.ok(200);
    assert_eq!(case["title"], "Printer on fire", "{case}");
    w.engineer
        .get(&contact_path(t, &w.contact))
        .await
        .err(403, "access_grant_required");

    let grants = list_items(&w.admin, &format!("/v1/tenants/{t}/grants")).await;
    assert!(grants.iter().any(|g| g["id"] == rid.as_str()), "{grants:?}");

    // Every access under the grant carries its id in the tenant's log.
    let log = access_log(&w.admin, t).await;
    let under: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["entry"]["actor"]["user_id"] == w.engineer.id.as_str()
                && e["entry"]["decision"] == "allow"
                && matches!(
                    e["entry"]["action"].as_str(),
                    Some("comment.list" | "case.read")
                )
                && e["entry"]["resource"]["id"] == w.case_a.as_str()
        })
        .collect();
    assert!(under.len() >= 2, "{log:?}");
    let after_approval: Vec<&&Value> = under
        .iter()
        .filter(|e| e["entry"]["action"] == "comment.list")
        .collect();
    for e in &after_approval {
        assert_eq!(e["entry"]["grant_id"], rid.as_str(), "{e}");
        assert!(e["index"].is_u64());
    }
    assert!(
        log.iter().all(|e| e["entry"]["tenant_id"] == t.as_str()),
        "another tenant's entry in the access log"
    );
    // The comment is customer free text: never in the log.
    assert!(!serde_json::to_string(&log).unwrap().contains("go ahead"));

    // Revocation takes effect on the next request.
    let revoked = w
        .admin
        .post(&request_action(t, &rid, "revoke"), json!({}))
        .await
        .ok(200);
    assert_eq!(revoked["state"], "revoked");
    w.engineer
        .get(&comments)
        .await
        .err(403, "access_grant_required");
    let grants = list_items(&w.admin, &format!("/v1/tenants/{t}/grants")).await;
    assert!(!grants.iter().any(|g| g["id"] == rid.as_str()));
}

#[tokio::test]
async fn a_grant_opens_its_case_only_and_the_requester_may_revoke() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let platform = server.admin().await;
    // An engineer with no assignment at all: the grant is the only way in.
    let other = staff_session(&server, &platform, "support_engineer").await;
    other
        .get(&case_path(t, &w.case_a))
        .await
        .err(403, "access_grant_required");
    let listed = async || -> Vec<Value> {
        let cases = list_items(&other, &cases_path(t)).await;
        cases.iter().map(|c| c["id"].clone()).collect()
    };
    assert_eq!(listed().await, Vec::<Value>::new());
    let rid = id_of(
        &request(
            &other,
            t,
            ask(&w.case_a, &["case_content", "contact_identity"], 30),
        )
        .await,
    );
    w.admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .ok(200);
    let case = other.get(&case_path(t, &w.case_a)).await.ok(200);
    assert_eq!(case["title"], "Printer on fire");
    // Its case list shows the granted case, and not the tenant's other one.
    assert_eq!(listed().await, vec![json!(w.case_a)]);
    // The contact of the granted case, within the granted classes (and the role's ceiling).
    let contact = other.get(&contact_path(t, &w.contact)).await.ok(200);
    assert_eq!(contact["name"], "Ada Lockbox", "{contact}");
    assert!(contact.get("phone").is_none(), "{contact}");
    // While the grant is open, re-pointing the case at another contact would widen it without
    // the admin who approved it: a tenant user may not, the tenant admin may.
    let user = tenant_session(&server, &platform, "tenant_user", t).await;
    let user = user.api.with_purpose(Some("customer-self-service"));
    let second = id_of(&create_contact(&w.admin, t, json!({"name": "Bea Elsewhere"})).await);
    user.patch(&case_path(t, &w.case_a), json!({"contact_id": second}))
        .await
        .err(403, "forbidden");
    other
        .get(&contact_path(t, &second))
        .await
        .err(403, "access_grant_required");
    user.patch(&case_path(t, &w.case_a), json!({"status": "pending"}))
        .await
        .ok(200);
    w.admin
        .patch(&case_path(t, &w.case_a), json!({"contact_id": second}))
        .await
        .ok(200);
    w.admin
        .patch(&case_path(t, &w.case_a), json!({"contact_id": w.contact}))
        .await
        .ok(200);
    // Case B of the same tenant: nothing.
    other
        .get(&case_path(t, &w.case_b))
        .await
        .err(403, "access_grant_required");
    other
        .get(&comments_path(t, &w.case_b))
        .await
        .err(403, "access_grant_required");
    // Another purpose does not ride on the grant.
    other
        .with_purpose(Some("legal-compliance"))
        .get(&case_path(t, &w.case_a))
        .await
        .err(403, "purpose_not_permitted");

    other
        .post(&request_action(t, &rid, "revoke"), json!({}))
        .await
        .ok(200);
    other
        .get(&case_path(t, &w.case_a))
        .await
        .err(403, "access_grant_required");
    assert_eq!(listed().await, Vec::<Value>::new());
}

#[tokio::test]
async fn self_approval_and_strangers_are_refused() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 30)).await);
    w.engineer
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .err(403, "forbidden");
    // The admin of another tenant does not even see it.
    let platform = server.admin().await;
    let elsewhere = create_tenant(&platform, None).await;
    let stranger = tenant_session(&server, &platform, "tenant_admin", &elsewhere).await;
    stranger
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .err(404, "not_found");
    let pending = list_items(&w.admin, &format!("{}?state=pending", requests_path(t))).await;
    assert!(pending.iter().any(|r| r["id"] == rid.as_str()));
    // Denial is final.
    w.admin
        .post(&request_action(t, &rid, "deny"), json!({"comment": "no"}))
        .await
        .ok(200);
    w.admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .err(409, "conflict");
    // That refusal is in the log like any other.
    let refused = access_log(&w.admin, t).await.into_iter().any(|i| {
        let e = &i["entry"];
        e["action"] == "access.approve"
            && e["decision"] == "deny"
            && e["reason"] == "already_decided"
            && e["resource"]["id"] == rid.as_str()
    });
    assert!(refused, "no recorded refusal of the second decision");
}

#[tokio::test]
async fn requests_are_validated() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({"max_grant_hours": 2})).await;
    let t = &w.tenant;
    let path = requests_path(t);
    let e = &w.engineer;
    e.post(&path, ask(&w.case_a, &["case_content"], 121))
        .await
        .err(422, "validation_failed");
    e.post(&path, ask(&w.case_a, &["case_content"], 0))
        .await
        .err(422, "validation_failed");
    e.post(&path, ask(&w.case_a, &["everything"], 10))
        .await
        .err(422, "validation_failed");
    e.post(&path, ask("no-such-case", &["case_content"], 10))
        .await
        .err(404, "not_found");
    let mut body = ask(&w.case_a, &["case_content"], 10);
    body["purpose"] = json!("marketing");
    e.post(&path, body).await.err(403, "purpose_not_permitted");
    let refused = access_log(&w.admin, t).await.into_iter().any(|e| {
        e["entry"]["action"] == "access.request"
            && e["entry"]["decision"] == "deny"
            && e["entry"]["reason"] == "purpose_not_permitted"
    });
    assert!(refused, "the refused purpose is in the tenant's log");
    // A purpose the tenant allows but an engineer may not read for: such a grant could be
    // approved and never used.
    let mut body = ask(&w.case_a, &["case_content"], 10);
    body["purpose"] = json!("legal-compliance");
    e.post(&path, body).await.err(403, "purpose_not_permitted");
    let mut body = ask(&w.case_a, &["case_content"], 10);
    body["purpose"] = json!("no-such-purpose");
    e.post(&path, body).await.err(422, "validation_failed");
    // Default duration: the tenant's maximum when below 8 hours.
    let mut body = ask(&w.case_a, &["case_content"], 10);
    body.as_object_mut().unwrap().remove("duration_minutes");
    assert_eq!(request(e, t, body).await["duration_minutes"], 120);
    // Customers do not ask for operator access.
    w.admin
        .post(&path, ask(&w.case_a, &["case_content"], 10))
        .await
        .err(403, "forbidden");
}

#[tokio::test]
async fn unanswered_requests_expire() {
    let server = Server::start_with(&[("STRONGROOM_ACCESS_REQUEST_TTL_SECS", "2")], &[]);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let req = request(&w.engineer, t, ask(&w.case_a, &["case_content"], 30)).await;
    let rid = id_of(&req);
    let created = time::OffsetDateTime::parse(
        req["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        req["request_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires - created).whole_seconds(), 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let expired = list_items(&w.admin, &format!("{}?state=expired", requests_path(t))).await;
        if expired.iter().any(|r| r["id"] == rid.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "request never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .err(409, "conflict");
    w.engineer
        .get(&comments_path(t, &w.case_a))
        .await
        .err(403, "access_grant_required");
}

/// How long a grant lasts, from its view.
fn grant_seconds(grant: &Value) -> i64 {
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    (parse(&grant["ends_at"]) - parse(&grant["starts_at"])).whole_seconds()
}

/// A grant lasts no longer than the tenant allows when it approves: a limit lowered after the
/// request was made holds.
#[tokio::test]
async fn an_approval_applies_the_tenants_current_limit() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({"max_grant_hours": 2})).await;
    let t = &w.tenant;
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 120)).await);
    w.admin
        .patch(
            &format!("/v1/tenants/{t}/instructions"),
            json!({"max_grant_hours": 1}),
        )
        .await
        .ok(200);
    let g = w
        .admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .ok(200);
    assert_eq!(grant_seconds(&g), 3600, "{g}");
    assert_eq!(g["duration_minutes"], 60, "{g}");
}

#[tokio::test]
async fn grants_end_at_their_end_time() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 1)).await);
    let g = w
        .admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .ok(200);
    assert_eq!(grant_seconds(&g), 60);
    let comments = comments_path(t, &w.case_a);
    w.engineer.get(&comments).await.ok(200);

    // Exports built under the grant end with it, also when an approval restarts their window.
    let exports = format!("/v1/tenants/{t}/exports");
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let export = |kinds: &[&str]| json!({"scope": {"kind": "records", "record_kinds": kinds}, "recipient": recipient});
    let ready = w.engineer.post(&exports, export(&["cases"])).await.ok(201);
    assert_eq!(ready["state"], "ready", "{ready}");
    let pending = w
        .engineer
        .post(&exports, export(&["cases", "comments"]))
        .await
        .ok(201);
    assert_eq!(pending["state"], "pending_approval", "{pending}");
    let pending_id = id_of(&pending);
    let approved = w
        .admin
        .post(&format!("{exports}/{pending_id}/approve"), json!({}))
        .await
        .ok(200);
    let mut downloads = Vec::new();
    for export in [&ready, &approved] {
        assert_eq!(
            export["manifest"]["access_ends_at"], g["ends_at"],
            "{export}"
        );
        assert_eq!(export["expires_at"], g["ends_at"], "{export}");
        let download = format!("{exports}/{}/download", id_of(export));
        let (status, _, _) = w.engineer.get_bytes(&download).await;
        assert_eq!(status.as_u16(), 200, "downloadable while the grant lasts");
        downloads.push(download);
    }

    // Poll from an absolute deadline well past the end time.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = w.engineer.get(&comments).await;
        if r.status.as_u16() == 403 {
            r.err(403, "access_grant_required");
            break;
        }
        assert!(Instant::now() < deadline, "grant never ended");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let expired = list_items(&w.admin, &format!("{}?state=expired", requests_path(t))).await;
    assert!(expired.iter().any(|r| r["id"] == rid.as_str()));
    for download in &downloads {
        let gone = w.engineer.get(download).await;
        gone.err(404, "not_found");
        assert!(gone.text.contains("expired"), "{}", gone.text);
    }
}

#[tokio::test]
async fn role_change_and_suspension_revoke_grants() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let platform = server.admin().await;
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 30)).await);
    w.admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .ok(200);
    platform
        .patch(
            &format!("/v1/users/{}", w.engineer.id),
            json!({"roles": ["support_supervisor"]}),
        )
        .await
        .ok(200);
    let revoked = list_items(&w.admin, &format!("{}?state=revoked", requests_path(t))).await;
    assert!(
        revoked.iter().any(|r| r["id"] == rid.as_str()),
        "{revoked:?}"
    );

    let other = staff_session(&server, &platform, "support_engineer").await;
    let rid2 = id_of(&request(&other, t, ask(&w.case_b, &["case_content"], 30)).await);
    w.admin
        .post(&request_action(t, &rid2, "approve"), json!({}))
        .await
        .ok(200);
    platform
        .post(
            &format!("/v1/users/{}/suspend", other.id),
            json!({"reason": "left"}),
        )
        .await
        .ok(200);
    let grants = list_items(&w.admin, &format!("/v1/tenants/{t}/grants")).await;
    assert!(!grants.iter().any(|g| g["id"] == rid2.as_str()));
    let notes = list_items(&w.admin, &format!("/v1/tenants/{t}/notifications")).await;
    assert!(
        notes
            .iter()
            .any(|n| n["type"] == "grant.revoked" && n["access_request_id"] == rid2.as_str()),
        "{notes:?}"
    );
}

// ---- webhooks and break-glass ------------------------------------------------

#[tokio::test]
async fn staff_see_only_their_own_requests() {
    let server = shared(&SERVER, ENV);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 60)).await);
    let platform = server.admin().await;
    let stranger = staff_session(&server, &platform, "support_engineer").await;
    let seen = stranger.get(&requests_path(t)).await;
    let items = seen.ok(200)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(items.is_empty(), "another engineer sees: {items:?}");
    // Nor do the cursors of a page at a time name it, for them or a security officer.
    let officer = staff_session(&server, &platform, "security_officer").await;
    for who in [&stranger, &officer] {
        let page = who
            .get(&format!("{}?limit=1", requests_path(t)))
            .await
            .ok(200);
        assert_eq!(page["items"], json!([]), "{page}");
        assert_eq!(page["next_cursor"], Value::Null, "{page}");
    }
    // The requester and the customer still do, with the justification.
    let own = list_items(&w.engineer, &requests_path(t)).await;
    assert!(own.iter().any(|r| r["id"] == rid.as_str()), "{own:?}");
    let customer = list_items(&w.admin, &requests_path(t)).await;
    let row = customer
        .iter()
        .find(|r| r["id"] == rid.as_str())
        .unwrap_or_else(|| panic!("{customer:?}"));
    assert_eq!(
        row["justification"],
        "ticket 4711: customer asked us to look"
    );
}
