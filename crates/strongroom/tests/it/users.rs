//! Users and roles: duplicates, suspension, reactivation, role changes.

use std::sync::OnceLock;

use serde_json::json;

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
    let r = admin
        .post(
            "/v1/users",
            json!({"username": user.username, "display_name": "Again",
                   "password": "Orchid mantle 84 drift cobalt!", "roles": ["auditor"]}),
        )
        .await;
    r.err(409, "conflict");
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

    // The live token stops working.
    for path in ["/v1/me".to_owned(), contacts_path(&tenant)] {
        let r = session.get(&path).await;
        match r.status.as_u16() {
            401 => r.err(401, "unauthenticated"),
            _ => r.err(403, "account_suspended"),
        };
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
