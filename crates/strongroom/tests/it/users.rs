//! Users and roles: duplicates, suspension, reactivation, role changes.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(&SERVER, &[])
}

#[tokio::test]
async fn duplicate_username_is_409() {
    let server = server();
    let admin = server.admin().await;
    let user = create_user(&admin, "auditor", None).await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    let start = settled_tree_size(&server).await;
    let r = admin
        .post(
            "/v1/users",
            json!({"username": user.username, "display_name": "Again",
                   "password": "Orchid mantle 84 drift cobalt!", "roles": ["auditor"]}),
        )
        .await;
    r.err(409, "conflict");
    // The attempt's entry is in the log, and so is the fact that it created nobody.
    let page = auditor
        .get(&format!("/v1/audit/entries?start={start}&limit=500"))
        .await
        .ok(200);
    let not_applied = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| {
            i["entry"]["action"] == "user.create_not_applied"
                && i["entry"]["decision"] == "deny"
                && i["entry"]["reason"] == "username_taken"
                && i["entry"]["actor"]["user_id"] == admin.id.as_str()
        })
        .count();
    assert_eq!(not_applied, 1, "{page}");
    // The original is untouched: its password still works.
    login(&server, &user.username, PASSWORD).await;
    let again = admin
        .post(
            "/v1/users",
            json!({"username": "admin", "display_name": "Imposter",
                   "password": "Orchid mantle 84 drift cobalt!", "roles": ["platform_admin"]}),
        )
        .await;
    again.err(409, "conflict");
    server.admin().await;
}

#[tokio::test]
async fn suspend_and_reactivate() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let session = tenant_session(&server, &admin, "tenant_user", &tenant).await;
    session.get("/v1/me").await.ok(200);
    session.get(&contacts_path(&tenant)).await.ok(200);

    let suspended = admin
        .post(
            &format!("/v1/users/{}/suspend", session.id),
            json!({"reason": "left"}),
        )
        .await
        .ok(200);
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(suspended["id"], json!(session.id));

    // The live token stops working, and says why.
    for path in ["/v1/me".to_owned(), contacts_path(&tenant)] {
        session.get(&path).await.err(403, "account_suspended");
    }
    // Login with the right password: account_suspended.
    try_login(&server, &session.username, PASSWORD)
        .await
        .err(403, "account_suspended");
    let fetched = admin
        .get(&format!("/v1/users/{}", session.id))
        .await
        .ok(200);
    assert_eq!(fetched["status"], "suspended");

    let active = admin
        .post(&format!("/v1/users/{}/reactivate", session.id), json!({}))
        .await
        .ok(200);
    assert_eq!(active["status"], "active");
    let again = open_session(&server, &session.username, PASSWORD, "tenant_user").await;
    again.get(&contacts_path(&tenant)).await.ok(200);
}

#[tokio::test]
async fn role_change_revokes_sessions() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let session = tenant_session(&server, &admin, "tenant_user", &tenant).await;
    session.get("/v1/me").await.ok(200);

    let changed = admin
        .patch(
            &format!("/v1/users/{}", session.id),
            json!({"roles": ["tenant_admin"]}),
        )
        .await
        .ok(200);
    assert_eq!(changed["roles"], json!(["tenant_admin"]));
    session.get("/v1/me").await.err(401, "unauthenticated");
    session
        .get(&contacts_path(&tenant))
        .await
        .err(401, "unauthenticated");

    let again = open_session(&server, &session.username, PASSWORD, "tenant_admin").await;
    let me = again.get("/v1/me").await.ok(200);
    assert_eq!(me["roles"], json!(["tenant_admin"]));
    // The new role is in force: a tenant_admin may create users.
    create_user(&again, "tenant_user", Some(&tenant)).await;

    // Staff too.
    let eng = staff_session(&server, &admin, "support_engineer").await;
    admin
        .patch(
            &format!("/v1/users/{}", eng.id),
            json!({"roles": ["support_supervisor"]}),
        )
        .await
        .ok(200);
    eng.get("/v1/me").await.err(401, "unauthenticated");
}

#[tokio::test]
async fn role_and_tenant_rules() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let body = |roles: serde_json::Value, tenant: Option<&str>| {
        let mut b = json!({"username": unique("rules"), "display_name": "R",
                           "password": PASSWORD, "roles": roles});
        if let Some(t) = tenant {
            b["tenant_id"] = json!(t);
        }
        b
    };
    // Staff with a tenant, customers without one.
    admin
        .post(
            "/v1/users",
            body(json!(["support_engineer"]), Some(&tenant)),
        )
        .await
        .err(422, "validation_failed");
    admin
        .post("/v1/users", body(json!(["tenant_user"]), None))
        .await
        .err(422, "validation_failed");
    admin
        .post("/v1/users", body(json!(["wizard"]), None))
        .await
        .err(422, "validation_failed");

    // A tenant_admin creates customer users of its tenant, never staff.
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    create_user(&boss, "tenant_user", Some(&tenant)).await;
    // A tenant_user creates nobody.
    let user = tenant_session(&server, &boss, "tenant_user", &tenant).await;
    user.post("/v1/users", body(json!(["tenant_user"]), Some(&tenant)))
        .await
        .err(403, "forbidden");
    // Only platform_admin suspends staff.
    let eng = create_user(&admin, "support_engineer", None).await;
    let r = boss
        .post(
            &format!("/v1/users/{}/suspend", eng.id),
            json!({"reason": "other"}),
        )
        .await;
    match r.status.as_u16() {
        404 => r.err(404, "not_found"),
        _ => r.err(403, "forbidden"),
    };
    login(&server, &eng.username, PASSWORD).await;
}

#[tokio::test]
async fn tenant_admin_cannot_create_staff() {
    // API.md: staff users are created by platform_admin; the policy denies
    // anyone else: 403 forbidden (there is no foreign id to hide here).
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    for role in ["support_engineer", "platform_admin"] {
        let username = unique("staff");
        let r = boss
            .post(
                "/v1/users",
                json!({"username": username, "display_name": "S",
                       "password": PASSWORD, "roles": [role]}),
            )
            .await;
        assert_eq!(r.status, 403, "{role}: {}", r.text);
        r.err(403, "forbidden");
        try_login(&server, &username, PASSWORD)
            .await
            .err(401, "invalid_credentials");
    }
}

/// The size of the signed tree head once it has stopped moving (the signer runs every 200 ms).
async fn settled_tree_size(server: &Server) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let note = server.anon().get("/v1/audit/checkpoint").await;
        let size: u64 = note
            .text
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("no tree size in the checkpoint: {}", note.text));
        if last == Some(size) {
            return size;
        }
        assert!(Instant::now() < deadline, "the log never settled");
        last = Some(size);
    }
}

/// The `auth.authenticate` refusals on record for `user_id`, as an auditor reads them.
async fn auth_refusals(auditor: &Api, user_id: &str) -> Vec<Value> {
    entries_with_action(auditor, "auth.authenticate")
        .await
        .into_iter()
        .filter(|e| e["actor"]["user_id"] == user_id)
        .collect()
}

#[tokio::test]
async fn refused_tokens_of_known_users_are_audited_and_random_ones_are_not() {
    // Its own server: the tree size must not move for anything but this test.
    let server = Server::start();
    let admin = server.admin().await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    let tenant = create_tenant(&admin, None).await;

    // Suspended: 403 account_suspended, on record against the user.
    let gone = tenant_session(&server, &admin, "tenant_user", &tenant).await;
    gone.get("/v1/me").await.ok(200);
    admin
        .post(
            &format!("/v1/users/{}/suspend", gone.id),
            json!({"reason": "left"}),
        )
        .await
        .ok(200);
    // Answered every time, recorded once a minute: a token replayed in a loop does not grow
    // the log with each request.
    for _ in 0..3 {
        gone.get("/v1/me").await.err(403, "account_suspended");
    }
    let refusals = auth_refusals(&auditor, &gone.id).await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["decision"], "deny");
    assert_eq!(refusals[0]["reason"], "account_suspended");
    assert_eq!(refusals[0]["resource"]["kind"], "session");
    // A customer's refusal is in its tenant's log too.
    assert_eq!(refusals[0]["tenant_id"], json!(tenant));

    // Logged out: the old token is 401, and the refusal is on record too.
    let leaver = tenant_session(&server, &admin, "tenant_user", &tenant).await;
    let r = leaver.post("/v1/auth/logout", json!({})).await;
    assert!(matches!(r.status.as_u16(), 200 | 204), "logout: {}", r.text);
    leaver.get("/v1/me").await.err(401, "unauthenticated");
    let refusals = auth_refusals(&auditor, &leaver.id).await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["decision"], "deny");
    assert_eq!(refusals[0]["reason"], "session_revoked");

    // Unknown tokens and keys: 401 and nothing on record, however many.
    let before = settled_tree_size(&server).await;
    // Well-formed (43 characters after the prefix) so both reach the store's lookup.
    for token in [
        format!("sr_{}", &rand_hex(22)[..43]),
        format!("srk_{}", &rand_hex(22)[..43]),
        rand_hex(20),
    ] {
        let stranger = server.anon().with_token(Some(&token));
        for _ in 0..5 {
            stranger.get("/v1/me").await.err(401, "unauthenticated");
        }
    }
    assert_eq!(settled_tree_size(&server).await, before);
}

/// Supervisors pick whom to assign from the active staff who can take cases, with the cases each
/// holds; nobody else may list them, and each listing is recorded with the ids it showed.
#[tokio::test]
async fn supervisors_list_the_staff_they_can_assign() {
    let server = Server::start();
    let admin = server.admin().await;
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let leaver = create_user(&admin, "support_engineer", None).await;
    admin
        .post(
            &format!("/v1/users/{}/suspend", leaver.id),
            json!({"reason": "left"}),
        )
        .await
        .ok(200);
    let officer = staff_session(&server, &admin, "security_officer").await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let case = id_of(&create_case(&boss, &tenant, json!({"title": "Printer on fire"})).await);
    assign(&supervisor, &tenant, &case, &engineer.id).await;

    let listed = list_items(&supervisor, "/v1/assignees").await;
    let mut expected = vec![engineer.id.clone(), supervisor.id.clone()];
    expected.sort();
    let ids: Vec<String> = listed
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    // Neither the suspended engineer, the security officer, the platform admin nor customers.
    assert_eq!(ids, expected, "{listed:?}");
    let theirs = listed
        .iter()
        .find(|a| a["id"] == engineer.id.as_str())
        .unwrap();
    assert_eq!(theirs["open_cases"], 1, "{theirs}");
    assert_eq!(theirs["roles"], json!(["support_engineer"]));
    assert_eq!(theirs["username"], engineer.username.as_str());
    assert!(theirs.get("tenant_id").is_none() && theirs.get("status").is_none());

    // Work in hand: a second case counts, a closed one does not.
    let second = id_of(&create_case(&boss, &tenant, json!({"title": "Fax jammed"})).await);
    assign(&supervisor, &tenant, &second, &engineer.id).await;
    boss.patch(&case_path(&tenant, &case), json!({"status": "closed"}))
        .await
        .ok(200);
    let open_cases = |items: Vec<Value>| {
        items
            .into_iter()
            .find(|a| a["id"] == engineer.id.as_str())
            .map(|a| a["open_cases"].clone())
    };
    assert_eq!(
        open_cases(list_items(&supervisor, "/v1/assignees").await),
        Some(json!(1))
    );

    // One at a time, following the cursor, the same two.
    let first = supervisor.get("/v1/assignees?limit=1").await.ok(200);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let second = supervisor
        .get(&format!("/v1/assignees?limit=1&cursor={cursor}"))
        .await
        .ok(200);
    let paged = [&first, &second].map(|p| p["items"][0]["id"].as_str().unwrap().to_owned());
    assert_eq!(paged.to_vec(), expected);
    supervisor
        .get("/v1/assignees?limit=0")
        .await
        .err(400, "invalid_request");

    // The platform admin creates staff but does not assign cases.
    admin.get("/v1/assignees").await.err(403, "forbidden");
    engineer.get("/v1/assignees").await.err(403, "forbidden");
    officer.get("/v1/assignees").await.err(403, "forbidden");
    boss.get("/v1/assignees").await.err(404, "not_found");

    let auditor = staff_session(&server, &admin, "auditor").await;
    let entries = entries_with_action(&auditor, "user.list_assignees").await;
    let allowed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["decision"] == "allow")
        .collect();
    assert_eq!(strings(&allowed[0]["records"]), expected, "{}", allowed[0]);
    assert_eq!(
        entries.iter().filter(|e| e["decision"] == "deny").count(),
        4,
        "{entries:?}"
    );
}
