//! The password policy, and that password hashes never leave the server.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(&SERVER, &[])
}

/// POST /v1/users with a given password; returns the response.
async fn try_create(admin: &Api, username: &str, password: &str) -> Resp {
    admin
        .post(
            "/v1/users",
            json!({"username": username, "display_name": "Pat Test", "password": password,
                   "roles": ["support_engineer"]}),
        )
        .await
}

#[track_caller]
fn assert_weak(r: &Resp, reason: &str) {
    r.err(422, "weak_password");
    let reasons = r.reasons();
    assert!(
        reasons.contains(&reason.to_owned()),
        "{}: expected reason {reason:?} in {reasons:?}",
        r.what
    );
    let known = [
        "too_short",
        "too_long",
        "common_password",
        "too_guessable",
        "contains_username",
    ];
    for r in &reasons {
        assert!(known.contains(&r.as_str()), "unknown reason {r:?}");
    }
}

#[tokio::test]
async fn each_weak_password_reason() {
    let server = server();
    let admin = server.admin().await;
    let name = unique("pwtest");

    let r = try_create(&admin, &name, "Xk9#mQ2!vT").await;
    assert_weak(&r, "too_short");
    let r = try_create(&admin, &name, "Xk9#mQ2!vT4&pL").await; // 14 chars
    assert_weak(&r, "too_short");

    let long = "Zebra quartz lantern 7 ridge! ".repeat(3); // 90 chars
    let r = try_create(&admin, &name, &long).await;
    assert_weak(&r, "too_long");
    let r = try_create(&admin, &name, &long[..65]).await;
    assert_weak(&r, "too_long");

    let r = try_create(&admin, &name, "password").await;
    assert_weak(&r, "common_password");
    assert_weak(&r, "too_short");

    let r = try_create(&admin, &name, "aaaaaaaaaaaaaaaaaaaa").await;
    assert_weak(&r, "too_guessable");
    let r = try_create(&admin, &name, "abcdefghijklmnopqrstu").await;
    assert_weak(&r, "too_guessable");

    let r = try_create(&admin, &name, &format!("Lantern {name} quartz 93!")).await;
    assert_weak(&r, "contains_username");
    let r = try_create(
        &admin,
        &name,
        &format!("Lantern {} quartz 93!", name.to_uppercase()),
    )
    .await;
    assert_weak(&r, "contains_username");

    // None of these created the user.
    let r = try_login(&server, &name, "Xk9#mQ2!vT").await;
    r.err(401, "invalid_credentials");
    // The name is still free.
    try_create(&admin, &name, PASSWORD).await.ok(201);
}

#[tokio::test]
async fn boundary_lengths_are_accepted() {
    let server = server();
    let admin = server.admin().await;
    // Exactly 15 and exactly 64 characters, both strong.
    let p15 = "Vq7#Lm2!Rt9$Kx4";
    assert_eq!(p15.chars().count(), 15);
    let p64 = "Orchid mantle 84 drift; cobalt ferry 19 quill & sable lynx 72!!";
    let p64 = format!("{p64}{}", "z".repeat(64 - p64.chars().count()));
    assert_eq!(p64.chars().count(), 64);
    for p in [p15.to_owned(), p64] {
        let name = unique("len");
        try_create(&admin, &name, &p).await.ok(201);
        login(&server, &name, &p).await;
    }
}

/// Fails if `v` holds anything that looks like a password hash or secret.
#[track_caller]
fn assert_no_secret(v: &Value, what: &str) {
    let text = v.to_string();
    assert!(
        !text.contains("$argon2"),
        "{what} contains an Argon2 hash: {text}"
    );
    assert!(
        !text.contains(PASSWORD),
        "{what} echoes the password: {text}"
    );
    fn walk(v: &Value, what: &str) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let k = k.to_ascii_lowercase();
                    assert!(
                        !k.contains("password") && !k.contains("hash") && !k.contains("secret"),
                        "{what} has a key {k:?}"
                    );
                    walk(v, what);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, what)),
            _ => {}
        }
    }
    walk(v, what);
}

#[tokio::test]
async fn good_password_accepted_and_hash_never_returned() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let name = unique("good");
    let created = admin
        .post(
            "/v1/users",
            json!({"username": name, "display_name": "Good Pass", "password": PASSWORD,
                   "roles": ["tenant_user"], "tenant_id": tenant}),
        )
        .await
        .ok(201);
    assert_eq!(created["username"], json!(name));
    assert_eq!(created["display_name"], "Good Pass");
    assert_eq!(created["roles"], json!(["tenant_user"]));
    assert_eq!(created["tenant_id"], json!(tenant));
    assert_eq!(created["status"], "active");
    assert!(created["created_at"].is_string());
    assert_no_secret(&created, "POST /v1/users");

    let login_answer = try_login(&server, &name, PASSWORD).await.ok(200);
    assert_no_secret(&login_answer["user"], "login user");
    assert_eq!(login_answer["user"]["username"], json!(name));
    assert_eq!(login_answer["user"]["roles"], json!(["tenant_user"]));
    assert_eq!(login_answer["user"]["tenant_id"], json!(tenant));
    let token = login_answer["token"].as_str().unwrap();
    assert!(!login_answer.to_string().contains("$argon2"));

    let me = server
        .anon()
        .with_token(Some(token))
        .get("/v1/me")
        .await
        .ok(200);
    assert_no_secret(&me, "GET /v1/me");
    assert_eq!(me["id"], created["id"]);

    let id = id_of(&created);
    let fetched = admin.get(&format!("/v1/users/{id}")).await.ok(200);
    assert_no_secret(&fetched, "GET /v1/users/{id}");
    assert_eq!(fetched["username"], json!(name));

    // A wrong password is refused; the right one still works.
    try_login(&server, &name, "Umbrella quartz lantern 7 ridge?")
        .await
        .err(401, "invalid_credentials");
    login(&server, &name, PASSWORD).await;
}

#[tokio::test]
async fn admin_password_comes_from_env() {
    let server = server();
    try_login(&server, "admin", ADMIN_PASSWORD).await.ok(200);
    try_login(&server, "admin", "Tangerine koala vault 3819 drift?")
        .await
        .err(401, "invalid_credentials");
    let me = server.admin().await.get("/v1/me").await.ok(200);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["roles"], json!(["platform_admin"]));
    assert_no_secret(&me, "admin /v1/me");
}
