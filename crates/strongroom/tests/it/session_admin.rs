//! Session management: list own sessions, revoke one or all, administrators revoke a user's.

use std::sync::OnceLock;

use serde_json::Value;

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(&SERVER, &[])
}

async fn sessions_of(api: &Api) -> Vec<Value> {
    list_items(api, "/v1/me/sessions").await
}

fn current_id(items: &[Value]) -> String {
    let current: Vec<&Value> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{items:?}");
    current[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn list_shows_the_current_session_and_ids_are_not_credentials() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let user = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let (first, _) = login(&server, &user.username, PASSWORD).await;
    let (second, _) = login(&server, &user.username, PASSWORD).await;

    let items = sessions_of(&first).await;
    assert_eq!(items.len(), 2, "{items:?}");
    for s in &items {
        let id = s["id"].as_str().unwrap();
        assert_eq!(id.len(), 32, "{s}");
        for field in ["created_at", "last_seen_at", "expires_at"] {
            assert!(s[field].is_string(), "{s}");
        }
        // The id authenticates nothing and reveals neither token.
        for token in [first.token().unwrap(), second.token().unwrap()] {
            assert!(!token.contains(id));
        }
        server
            .anon()
            .with_token(Some(id))
            .get("/v1/me")
            .await
            .err(401, "unauthenticated");
    }
    let mine = current_id(&items);
    let theirs = current_id(&sessions_of(&second).await);
    assert_ne!(mine, theirs);
    let text = first.get("/v1/me/sessions").await.text;
    assert!(!text.contains(second.token().unwrap()) && !text.contains(first.token().unwrap()));

    // Paged like every list, by id.
    let page = first.get("/v1/me/sessions?limit=1").await.ok(200);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let rest = first
        .get(&format!("/v1/me/sessions?limit=1&cursor={cursor}"))
        .await
        .ok(200);
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let mut walked: Vec<Value> = [&page, &rest]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().clone())
        .map(|s| s["id"].clone())
        .collect();
    let mut all: Vec<Value> = items.iter().map(|s| s["id"].clone()).collect();
    walked.sort_by_key(|v| v.to_string());
    all.sort_by_key(|v| v.to_string());
    assert_eq!(walked, all);
    for bad in ["limit=0", "limit=501", "cursor=abc"] {
        first
            .get(&format!("/v1/me/sessions?{bad}"))
            .await
            .err(400, "invalid_request");
    }
}

#[tokio::test]
async fn revoking_one_session_ends_only_that_one() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let user = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let (first, _) = login(&server, &user.username, PASSWORD).await;
    let (second, _) = login(&server, &user.username, PASSWORD).await;
    let victim = current_id(&sessions_of(&second).await);

    let r = first.delete(&format!("/v1/me/sessions/{victim}")).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    second.get("/v1/me").await.err(401, "unauthenticated");
    first.get("/v1/me").await.ok(200);
    assert_eq!(sessions_of(&first).await.len(), 1);
    // Gone, unknown, or someone else's: all the same 404.
    first
        .delete(&format!("/v1/me/sessions/{victim}"))
        .await
        .err(404, "not_found");
    let (other, _) = login(&server, "admin", ADMIN_PASSWORD).await;
    let admins = current_id(&sessions_of(&other).await);
    first
        .delete(&format!("/v1/me/sessions/{admins}"))
        .await
        .err(404, "not_found");
    other.get("/v1/me").await.ok(200);
}

#[tokio::test]
async fn revoking_all_keeps_the_current_one_unless_asked() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let user = create_user(&admin, "tenant_admin", Some(&tenant)).await;
    let (me, _) = login(&server, &user.username, PASSWORD).await;
    let (a, _) = login(&server, &user.username, PASSWORD).await;
    let (b, _) = login(&server, &user.username, PASSWORD).await;

    let r = me.delete("/v1/me/sessions").await.ok(200);
    assert_eq!(r["revoked"], 2);
    a.get("/v1/me").await.err(401, "unauthenticated");
    b.get("/v1/me").await.err(401, "unauthenticated");
    me.get("/v1/me").await.ok(200);

    let r = me
        .delete("/v1/me/sessions?include_current=true")
        .await
        .ok(200);
    assert_eq!(r["revoked"], 1);
    me.get("/v1/me").await.err(401, "unauthenticated");
}

#[tokio::test]
async fn administrators_revoke_a_users_sessions() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let other = create_tenant(&admin, None).await;
    let user = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let (a, _) = login(&server, &user.username, PASSWORD).await;
    let (b, _) = login(&server, &user.username, PASSWORD).await;
    let path = format!("/v1/users/{}/sessions", user.id);

    // Not allowed: a colleague, another tenant's administrator, an engineer.
    let colleague = tenant_session(&server, &admin, "tenant_user", &tenant).await;
    colleague.delete(&path).await.err(403, "forbidden");
    let stranger = tenant_session(&server, &admin, "tenant_admin", &other).await;
    stranger.delete(&path).await.err(404, "not_found");
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    engineer.delete(&path).await.err(403, "forbidden");
    a.get("/v1/me").await.ok(200);

    let r = admin.delete(&path).await.ok(200);
    assert_eq!(r["revoked"], 2);
    a.get("/v1/me").await.err(401, "unauthenticated");
    b.get("/v1/me").await.err(401, "unauthenticated");

    // The tenant's own administrator and a security officer may too.
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let (c, _) = login(&server, &user.username, PASSWORD).await;
    assert_eq!(boss.delete(&path).await.ok(200)["revoked"], 1);
    c.get("/v1/me").await.err(401, "unauthenticated");
    let officer = staff_session(&server, &admin, "security_officer").await;
    let (d, _) = login(&server, &user.username, PASSWORD).await;
    assert_eq!(officer.delete(&path).await.ok(200)["revoked"], 1);
    d.get("/v1/me").await.err(401, "unauthenticated");
    // Staff accounts do not exist for a tenant administrator.
    boss.delete(&format!("/v1/users/{}/sessions", engineer.id))
        .await
        .err(404, "not_found");
    engineer.get("/v1/me").await.ok(200);
    admin
        .delete("/v1/users/nonexistent/sessions")
        .await
        .err(404, "not_found");
}
