//! The second factor (TOTP) with the requirement ON: enrolment-only sessions, enrolment and
//! confirmation, login with a code, replay protection, recovery codes, throttling, encryption at
//! rest, and the password length rule that depends on it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};

use crate::kit::*;

const MFA_ON: &[(&str, &str)] = &[
    ("STRONGROOM_MFA_REQUIRED_FOR_STAFF", "true"),
    ("STRONGROOM_MFA_REQUIRED_FOR_TENANT_ADMINS", "true"),
    // Three consecutive failures lock the account, so the throttle test needs no timing.
    ("STRONGROOM_LOGIN_LOCKOUT_THRESHOLD", "3"),
];

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The code an authenticator app shows at `time` (RFC 6238, SHA-1, 6 digits, 30 s).
fn code_at(secret: &[u8], time: u64) -> String {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
        .build()
        .expect("totp parameters")
        .generate(time)
        .to_string()
}

/// A code for the next step: within the server's ±1 step window, and later than any step a
/// code computed "now" (e.g. at confirmation) could have used.
pub(crate) fn next_code(secret: &[u8]) -> String {
    code_at(secret, now_secs() + 30)
}

/// Six digits that are none of the codes around now (so certainly wrong).
fn wrong_code(secret: &[u8]) -> String {
    let now = now_secs();
    let near: Vec<String> = (0..7).map(|i| code_at(secret, now + i * 30 - 90)).collect();
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .expect("a wrong code")
}

async fn login_totp(server: &Server, username: &str, password: &str, totp: &str) -> Resp {
    server
        .anon()
        .post(
            "/v1/auth/login",
            json!({"username": username, "password": password, "totp": totp}),
        )
        .await
}

fn token_of(body: &Value) -> String {
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login answer without token: {body}"))
        .to_owned()
}

/// Enrols and confirms TOTP through `api`; returns the seed and the recovery codes.
pub(crate) async fn enrol(api: &Api, username: &str) -> (Vec<u8>, Vec<String>) {
    let start = api.post("/v1/me/mfa/totp", json!({})).await.ok(200);
    let b32 = start["secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        start["otpauth_uri"].as_str(),
        Some(
            format!(
                "otpauth://totp/Strongroom:{username}?secret={b32}&issuer=Strongroom&algorithm=SHA1&digits=6&period=30"
            )
            .as_str()
        ),
        "{start}"
    );
    assert!(
        start["qr_svg"].as_str().is_some_and(|s| s.contains("<svg")),
        "no QR code: {start}"
    );
    let secret = Secret::try_from_base32(&b32).expect("base32 secret");
    let secret = secret.as_bytes().to_vec();
    assert_eq!(secret.len(), 20);
    let confirmed = api
        .post(
            "/v1/me/mfa/totp/confirm",
            json!({"code": code_at(&secret, now_secs())}),
        )
        .await
        .ok(200);
    let codes = strings(&confirmed["recovery_codes"]);
    assert_eq!(codes.len(), 10, "{confirmed}");
    (secret, codes)
}

/// Logs in a user who must enrol, enrols, and returns the (now full) session with the seed.
async fn enrolled_session(
    server: &Server,
    username: &str,
    password: &str,
) -> (Api, Vec<u8>, Vec<String>) {
    let body = try_login(server, username, password).await.ok(200);
    assert_eq!(body["mfa_enrolment_required"], json!(true), "{body}");
    let api = server.anon().with_token(Some(&token_of(&body)));
    let (secret, codes) = enrol(&api, username).await;
    (api, secret, codes)
}

/// Files under the data dir (on PostgreSQL also a dump of the server's schema, bytea decoded)
/// and the process output that contain `needle`.
async fn files_containing(server: &Server, needle: &[u8]) -> Vec<String> {
    let mut files = vec![server.stderr_path.clone(), server.stdout_path.clone()];
    files.extend(server.at_rest_files().await);
    files
        .iter()
        .filter(|p| {
            std::fs::read(p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .map(|p| p.display().to_string())
        .collect()
}

#[tokio::test]
async fn enrolment_login_replay_and_recovery() {
    let server = Server::start_with(MFA_ON, &[]);

    // The password alone opens an enrolment-only session.
    let body = try_login(&server, "admin", ADMIN_PASSWORD).await.ok(200);
    assert_eq!(body["mfa_enrolment_required"], json!(true), "{body}");
    let admin = server.anon().with_token(Some(&token_of(&body)));
    let me = admin.get("/v1/me").await.ok(200);
    assert_eq!(me["mfa"], json!({"totp": false}), "{me}");
    admin
        .post(
            "/v1/users",
            json!({"username": unique("x"), "display_name": "X", "password": PASSWORD,
                   "roles": ["support_engineer"]}),
        )
        .await
        .err(403, "mfa_enrolment_required");
    admin
        .get("/v1/confidentiality")
        .await
        .err(403, "mfa_enrolment_required");
    admin
        .post("/v1/tenants", json!({"name": unique("t")}))
        .await
        .err(403, "mfa_enrolment_required");
    admin
        .get("/v1/audit/entries?start=0&limit=1")
        .await
        .err(403, "mfa_enrolment_required");

    // Restarting enrolment replaces the pending seed: a code of the first one no longer confirms.
    let first = admin.post("/v1/me/mfa/totp", json!({})).await.ok(200);
    let first_secret = Secret::try_from_base32(first["secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    let second = admin.post("/v1/me/mfa/totp", json!({})).await.ok(200);
    assert_ne!(first["secret"], second["secret"]);
    admin
        .post(
            "/v1/me/mfa/totp/confirm",
            json!({"code": code_at(&first_secret, now_secs())}),
        )
        .await
        .err(422, "validation_failed");

    let (secret, recovery) = enrol(&admin, "admin").await;
    let b32 = Secret::new(secret.clone().into_boxed_slice()).to_base32();

    // The same session is now a full one; the secret is never shown again.
    let me = admin.get("/v1/me").await.ok(200);
    assert_eq!(me["mfa"], json!({"totp": true}), "{me}");
    assert!(!me.to_string().contains(&b32));
    let staff = create_user(&admin, "support_engineer", None).await;
    assert!(staff.id.len() > 4);

    // The four refusals of the enrolment-only session are on record, once a minute per session.
    let auditor = create_user(&admin, "auditor", None).await;
    let (auditor, _, _) = enrolled_session(&server, &auditor.username, PASSWORD).await;
    let refusals: Vec<Value> = entries_with_action(&auditor, "auth.authenticate")
        .await
        .into_iter()
        .filter(|e| e["reason"] == "mfa_enrolment_required")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["decision"], "deny");
    assert_eq!(refusals[0]["actor"]["user_id"], me["id"]);
    assert_eq!(refusals[0]["resource"]["kind"], "session");
    admin
        .post("/v1/me/mfa/totp", json!({}))
        .await
        .err(409, "conflict");

    // Without the code: mfa_required (only with the right password).
    try_login(&server, "admin", ADMIN_PASSWORD)
        .await
        .err(401, "mfa_required");
    try_login(&server, "admin", "Wrong password for admin 9!")
        .await
        .err(401, "invalid_credentials");

    // With a valid code: a full session. The same code again: refused.
    let code = next_code(&secret);
    let body = login_totp(&server, "admin", ADMIN_PASSWORD, &code)
        .await
        .ok(200);
    assert_eq!(body["mfa_enrolment_required"], json!(false), "{body}");
    let again = server.anon().with_token(Some(&token_of(&body)));
    again.get("/v1/confidentiality").await.ok(200);
    login_totp(&server, "admin", ADMIN_PASSWORD, &code)
        .await
        .err(401, "invalid_credentials");
    login_totp(&server, "admin", ADMIN_PASSWORD, &wrong_code(&secret))
        .await
        .err(401, "invalid_credentials");

    // A recovery code works once (case and dashes do not matter), then never again.
    let body = login_totp(
        &server,
        "admin",
        ADMIN_PASSWORD,
        &recovery[0].to_uppercase(),
    )
    .await
    .ok(200);
    assert_eq!(body["mfa_enrolment_required"], json!(false), "{body}");
    login_totp(&server, "admin", ADMIN_PASSWORD, &recovery[0])
        .await
        .err(401, "invalid_credentials");
    login_totp(&server, "admin", ADMIN_PASSWORD, "not-a-code")
        .await
        .err(401, "invalid_credentials");
    login_totp(&server, "admin", ADMIN_PASSWORD, &recovery[1])
        .await
        .ok(200);

    // Logout works for an enrolment-only session too.
    let u = create_user(&admin, "support_engineer", None).await;
    let body = try_login(&server, &u.username, PASSWORD).await.ok(200);
    let pending = server.anon().with_token(Some(&token_of(&body)));
    assert_eq!(
        pending
            .post("/v1/auth/logout", json!({}))
            .await
            .status
            .as_u16(),
        204
    );
    pending.get("/v1/me").await.err(401, "unauthenticated");

    // Never in clear at rest, nor in the output: the base32 seed, its bytes, the recovery codes.
    assert!(!server.stderr().trim().is_empty());
    for (what, needle) in [
        ("base32 seed", b32.as_bytes().to_vec()),
        ("raw seed", secret.clone()),
        ("recovery code", recovery[2].as_bytes().to_vec()),
    ] {
        let hits = files_containing(&server, &needle).await;
        assert!(hits.is_empty(), "{what} found in {hits:?}");
    }
}

#[tokio::test]
async fn wrong_codes_count_toward_the_throttle() {
    let server = Server::start_with(MFA_ON, &[]);
    let (admin, _, _) = enrolled_session(&server, "admin", ADMIN_PASSWORD).await;
    let u = create_user(&admin, "support_engineer", None).await;
    let (_session, secret, _) = enrolled_session(&server, &u.username, PASSWORD).await;

    // Right password, wrong code, three times: the account locks (threshold 3).
    for _ in 0..3 {
        login_totp(&server, &u.username, PASSWORD, &wrong_code(&secret))
            .await
            .err(401, "invalid_credentials");
    }
    let r = login_totp(&server, &u.username, PASSWORD, &next_code(&secret)).await;
    r.err(429, "too_many_attempts");
    assert!(
        r.retry_after().is_some_and(|s| s > 60),
        "{:?}",
        r.retry_after()
    );
}

#[tokio::test]
async fn eight_character_passwords_need_a_second_factor() {
    let server = Server::start_with(MFA_ON, &[]);
    let (admin, _, _) = enrolled_session(&server, "admin", ADMIN_PASSWORD).await;
    let short = "Zr4&kT9w";

    // Staff must have a second factor: 8 characters are enough.
    let staff = admin
        .post(
            "/v1/users",
            json!({"username": unique("eng"), "display_name": "E", "password": short,
                   "roles": ["support_engineer"]}),
        )
        .await
        .ok(201);
    assert!(staff["id"].is_string());

    // A tenant user need not: 15.
    let tenant = create_tenant(&admin, None).await;
    let r = admin
        .post(
            "/v1/users",
            json!({"username": unique("cust"), "display_name": "C", "password": short,
                   "roles": ["tenant_user"], "tenant_id": tenant}),
        )
        .await;
    r.err(422, "weak_password");
    assert!(
        r.reasons().contains(&"too_short".to_owned()),
        "{:?}",
        r.reasons()
    );

    // ... until it enrols one; then it may change to 8 characters.
    let u = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let (api, _) = login(&server, &u.username, PASSWORD).await;
    let change = json!({"current_password": PASSWORD, "new_password": short});
    let r = api.post("/v1/me/password", change.clone()).await;
    r.err(422, "weak_password");
    assert!(r.reasons().contains(&"too_short".to_owned()));
    api.post(
        "/v1/me/password",
        json!({"current_password": "Not the password at all 1!", "new_password": short}),
    )
    .await
    .err(422, "validation_failed");
    // A second session, opened before the change, ends with it; the changing one goes on.
    let (other, _) = login(&server, &u.username, PASSWORD).await;
    let (secret, _) = enrol(&api, &u.username).await;
    other.get("/v1/me").await.ok(200);
    assert_eq!(
        api.post("/v1/me/password", change).await.status.as_u16(),
        204
    );
    other.get("/v1/me").await.err(401, "unauthenticated");
    api.get("/v1/me").await.ok(200);
    try_login(&server, &u.username, PASSWORD)
        .await
        .err(401, "invalid_credentials");
    try_login(&server, &u.username, short)
        .await
        .err(401, "mfa_required");
    login_totp(&server, &u.username, short, &next_code(&secret))
        .await
        .ok(200);
}

/// A recovery code given on a login that is then refused (the account is suspended) is spent for
/// good, and its use is in the log all the same.
#[tokio::test]
async fn a_recovery_code_spent_on_a_refused_login_is_recorded() {
    let server = Server::start();
    let admin = server.admin().await;
    let u = create_user(&admin, "support_engineer", None).await;
    let session = open_session(&server, &u.username, PASSWORD, "support_engineer").await;
    let (_, codes) = enrol(&session, &u.username).await;
    let suspend = json!({"reason": "other"});
    admin
        .post(&format!("/v1/users/{}/suspend", u.id), suspend)
        .await
        .ok(200);
    login_totp(&server, &u.username, PASSWORD, &codes[0])
        .await
        .err(403, "account_suspended");
    let auditor = staff_session(&server, &admin, "auditor").await;
    let used = entries_with_action(&auditor, "auth.mfa.recovery_code_used").await;
    assert!(
        used.iter().any(|e| e["actor"]["user_id"] == u.id.as_str()),
        "{used:?}"
    );
    // Spent: once the account is back, that code opens nothing and the next one does.
    admin
        .post(&format!("/v1/users/{}/reactivate", u.id), json!({}))
        .await
        .ok(200);
    login_totp(&server, &u.username, PASSWORD, &codes[0])
        .await
        .err(401, "invalid_credentials");
    login_totp(&server, &u.username, PASSWORD, &codes[1])
        .await
        .ok(200);
}

/// A lost device: an administrator removes the user's second factor. The user's sessions end,
/// the next login enrols a new factor, and the old seed and recovery codes open nothing. Nobody
/// resets their own factor, nor with an API key, nor a tenant admin a staff member's.
#[tokio::test]
async fn an_administrator_resets_a_lost_second_factor() {
    let server = Server::start_with(MFA_ON, &[]);
    let (admin, _, _) = enrolled_session(&server, "admin", ADMIN_PASSWORD).await;
    let eng = create_user(&admin, "support_engineer", None).await;
    let (eng_api, old_secret, old_codes) = enrolled_session(&server, &eng.username, PASSWORD).await;
    let reset = format!("/v1/users/{}/mfa/reset", eng.id);

    // Not one's own factor: a stolen session would drop it.
    eng_api.post(&reset, json!({})).await.err(403, "forbidden");
    let me = admin.get("/v1/me").await.ok(200);
    admin
        .post(
            &format!("/v1/users/{}/mfa/reset", me["id"].as_str().expect("id")),
            json!({}),
        )
        .await
        .err(403, "forbidden");

    // Not with an API key, even a platform administrator's.
    let key = admin
        .post(
            "/v1/api-keys",
            json!({"name": unique("key"), "roles": ["platform_admin"],
                   "expires_at": (time::OffsetDateTime::now_utc() + time::Duration::days(1))
                       .format(&time::format_description::well_known::Rfc3339)
                       .expect("a date")}),
        )
        .await
        .ok(201);
    server
        .anon()
        .with_token(key["key"].as_str())
        .post(&reset, json!({}))
        .await
        .err(403, "forbidden");

    // Not by a tenant admin: staff are the platform's.
    let tenant = create_tenant(&admin, None).await;
    let boss = create_user(&admin, "tenant_admin", Some(&tenant)).await;
    let (boss_api, _, _) = enrolled_session(&server, &boss.username, PASSWORD).await;
    let r = boss_api.post(&reset, json!({})).await;
    match r.status.as_u16() {
        404 => r.err(404, "not_found"),
        _ => r.err(403, "forbidden"),
    };
    eng_api.get("/v1/me").await.ok(200);

    // The platform administrator resets it: the engineer's sessions end.
    let user = admin.post(&reset, json!({})).await.ok(200);
    assert_eq!(user["id"], json!(eng.id), "{user}");
    eng_api.get("/v1/me").await.err(401, "unauthenticated");
    admin.post(&reset, json!({})).await.err(409, "conflict");

    // The password alone now opens an enrolment-only session; the old seed and codes are gone.
    let (fresh, new_secret, _) = enrolled_session(&server, &eng.username, PASSWORD).await;
    assert_ne!(new_secret, old_secret);
    fresh.get("/v1/me").await.ok(200);
    for stale in [next_code(&old_secret), old_codes[1].clone()] {
        login_totp(&server, &eng.username, PASSWORD, &stale)
            .await
            .err(401, "invalid_credentials");
    }
    login_totp(&server, &eng.username, PASSWORD, &next_code(&new_secret))
        .await
        .ok(200);

    // A tenant admin resets a user of its own tenant, and no other tenant's.
    let customer = create_user(&boss_api, "tenant_user", Some(&tenant)).await;
    let (customer_api, _) = login(&server, &customer.username, PASSWORD).await;
    enrol(&customer_api, &customer.username).await;
    let other = create_tenant(&admin, None).await;
    let other_boss = create_user(&admin, "tenant_admin", Some(&other)).await;
    let (other_boss, _, _) = enrolled_session(&server, &other_boss.username, PASSWORD).await;
    let customer_reset = format!("/v1/users/{}/mfa/reset", customer.id);
    other_boss
        .post(&customer_reset, json!({}))
        .await
        .err(404, "not_found");
    boss_api.post(&customer_reset, json!({})).await.ok(200);
    let body = try_login(&server, &customer.username, PASSWORD)
        .await
        .ok(200);
    assert_eq!(body["mfa_enrolment_required"], json!(false), "{body}");

    // Every attempt is on record, allowed or refused.
    let auditor = create_user(&admin, "auditor", None).await;
    let (auditor, _, _) = enrolled_session(&server, &auditor.username, PASSWORD).await;
    let entries = entries_with_action(&auditor, "user.mfa_reset").await;
    let decided = |decision: &str| entries.iter().filter(|e| e["decision"] == decision).count();
    assert_eq!(decided("allow"), 2, "{entries:?}");
    assert_eq!(decided("deny"), 6, "{entries:?}");
}

/// A second factor is put on an account only by a fresh login: not with an API key, and not with
/// a session whose login is older than the enrolment window (a token taken later cannot lock
/// the account's owner out behind a factor of its own).
#[tokio::test]
async fn enrolment_needs_a_fresh_login_and_never_an_api_key() {
    // Long enough for a fresh login's enrolment on a loaded machine, short enough to wait out.
    let server = Server::start_with(&[("STRONGROOM_MFA_ENROLMENT_WINDOW_SECS", "10")], &[]);
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let user = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let (session, _) = login(&server, &user.username, PASSWORD).await;

    // An API key, even a platform administrator's, enrols nothing.
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let admin_key = admin
        .post(
            "/v1/api-keys",
            json!({"name": unique("key"), "roles": ["auditor"], "expires_at": expires}),
        )
        .await
        .ok(201);
    let by_key = server
        .anon()
        .with_token(Some(admin_key["key"].as_str().unwrap()));
    by_key
        .post("/v1/me/mfa/totp", json!({}))
        .await
        .err(403, "forbidden");
    by_key
        .post("/v1/me/mfa/totp/confirm", json!({"code": "123456"}))
        .await
        .err(403, "forbidden");

    // Past the window the session still works, but enrols nothing.
    tokio::time::sleep(std::time::Duration::from_millis(10_500)).await;
    session.get("/v1/me").await.ok(200);
    let stale = session.post("/v1/me/mfa/totp", json!({})).await;
    stale.err(403, "forbidden");
    assert!(stale.text.contains("log in again"), "{}", stale.text);
    let me = session.get("/v1/me").await.ok(200);
    assert_eq!(me["mfa"], json!({"totp": false}), "{me}");

    // A fresh login enrols.
    let (fresh, _) = login(&server, &user.username, PASSWORD).await;
    enrol(&fresh, &user.username).await;

    let auditor = staff_session(&server, &admin, "auditor").await;
    let starts = entries_with_action(&auditor.api, "auth.mfa.totp_start").await;
    let refused = |reason: &str| starts.iter().filter(|e| e["reason"] == reason).count();
    assert_eq!(refused("login_too_old"), 1, "{starts:?}");
    assert_eq!(refused("forbidden"), 1, "{starts:?}");
}
