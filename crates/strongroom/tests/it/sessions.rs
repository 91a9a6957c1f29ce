//! Sessions: logout, idle and absolute timeouts, bad tokens.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

/// Idle 2 s, absolute 3 s: every test must log in right before it acts.
fn server() -> Shared {
    shared(
        &SERVER,
        &[
            ("STRONGROOM_SESSION_IDLE_TIMEOUT_SECS", "2"),
            ("STRONGROOM_SESSION_ABSOLUTE_TIMEOUT_SECS", "3"),
        ],
    )
}

/// A fresh customer user (admin session used at once, before it expires).
async fn new_user(server: &Server) -> NewUser {
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    create_user(&admin, "tenant_user", Some(&tenant)).await
}

#[tokio::test]
async fn logout_revokes_only_that_token() {
    let server = server();
    let user = new_user(&server).await;
    let (first, _) = login(&server, &user.username, PASSWORD).await;
    let (second, me) = login(&server, &user.username, PASSWORD).await;
    assert_eq!(me["username"], json!(user.username));
    assert_eq!(me["id"], json!(user.id));
    assert_eq!(me["roles"], json!(["tenant_user"]));
    first.get("/v1/me").await.ok(200);

    let r = first.post("/v1/auth/logout", json!({})).await;
    assert!(
        matches!(r.status.as_u16(), 200 | 204),
        "logout: {} {}",
        r.status,
        r.text
    );
    first.get("/v1/me").await.err(401, "unauthenticated");
    first
        .post("/v1/auth/logout", json!({}))
        .await
        .err(401, "unauthenticated");
    second.get("/v1/me").await.ok(200);
}

/// Its own server, with an absolute limit far away: on the shared one (absolute 3 s) a session
/// idle for 3 s would be refused for its age whatever the idle limit did.
#[tokio::test]
async fn idle_timeout() {
    let server = Server::start_with(
        &[
            ("STRONGROOM_SESSION_IDLE_TIMEOUT_SECS", "2"),
            ("STRONGROOM_SESSION_ABSOLUTE_TIMEOUT_SECS", "600"),
        ],
        &[],
    );
    let user = new_user(&server).await;
    let (api, _) = login(&server, &user.username, PASSWORD).await;
    // Activity keeps it alive past the idle limit counted from login...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        api.get("/v1/me").await.ok(200);
    }
    // ...and a pause longer than the limit ends it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    api.get("/v1/me").await.err(401, "unauthenticated");
    // And it stays dead.
    api.get("/v1/me").await.err(401, "unauthenticated");
}

#[tokio::test]
async fn absolute_timeout_despite_activity() {
    let server = server();
    let user = new_user(&server).await;
    let (api, _) = login(&server, &user.username, PASSWORD).await;
    let start = Instant::now();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        api.get("/v1/me").await.ok(200);
    }
    // Keep it active (never 2 s idle) until 4 s after login.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = api.get("/v1/me").await;
    let left = Duration::from_secs(4).saturating_sub(start.elapsed());
    tokio::time::sleep(left + Duration::from_millis(100)).await;
    api.get("/v1/me").await.err(401, "unauthenticated");
    // A fresh login works again.
    let (fresh, _) = login(&server, &user.username, PASSWORD).await;
    fresh.get("/v1/me").await.ok(200);
}

#[tokio::test]
async fn missing_and_garbage_tokens() {
    let server = server();
    let anon = server.anon();
    anon.get("/v1/me").await.err(401, "unauthenticated");
    let user = new_user(&server).await;
    let (api, _) = login(&server, &user.username, PASSWORD).await;
    let token = api.token().unwrap().to_owned();
    let flipped = {
        let mut t = token.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    let cases = [
        "Bearer garbage".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {flipped}"),
        format!("Bearer {token}x"),
        format!("Basic {token}"),
        token.clone(),
    ];
    for auth in &cases {
        anon.send(
            reqwest::Method::GET,
            "/v1/me",
            Body::None,
            &[("Authorization", auth.as_str())],
        )
        .await
        .err(401, "unauthenticated");
    }
    // The real token still works after all that.
    api.get("/v1/me").await.ok(200);
}
