//! Login throttling: exponential backoff after 3 failures, lockout after 10,
//! and unknown usernames indistinguishable from wrong passwords.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::kit::*;

// A full second: on a loaded 2-core machine one Argon2 check can take half of it,
// and a "still throttled" assertion must not race the window.
const BASE_MS: u64 = 1000;
const LOCKOUT_SECS: u64 = 1800;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(
        &SERVER,
        &[
            ("STRONGROOM_LOGIN_BACKOFF_BASE_MS", "1000"),
            ("STRONGROOM_LOGIN_LOCKOUT_THRESHOLD", "10"),
            ("STRONGROOM_LOGIN_LOCKOUT_SECS", "1800"),
        ],
    )
}

const WRONG: &str = "Wrong horse lantern 7 ridge!";

/// The backoff window after `failures` consecutive failures (≥ 3).
fn window(failures: u32) -> Duration {
    Duration::from_millis(BASE_MS << (failures - 3))
}

/// Waits out the window plus a margin for scheduling.
async fn wait_out(failures: u32) {
    tokio::time::sleep(window(failures) + Duration::from_millis(120)).await;
}

#[track_caller]
fn assert_throttled(r: &Resp) {
    r.err(429, "too_many_attempts");
    let after = r.retry_after();
    assert!(
        matches!(after, Some(s) if s >= 1),
        "{}: Retry-After missing or < 1: {:?}",
        r.what,
        r.headers.get("retry-after")
    );
}

async fn make_user(server: &Server) -> NewUser {
    let admin = server.admin().await;
    create_user(&admin, "support_engineer", None).await
}

#[tokio::test]
async fn backoff_after_three_failures() {
    let server = server();
    let anon = server.anon();
    let user = make_user(&server).await;
    let name = &user.username;
    for _ in 0..3 {
        login_attempt(&anon, name, WRONG)
            .await
            .err(401, "invalid_credentials");
    }
    // Refused at once, and the right password is not even checked.
    assert_throttled(&login_attempt(&anon, name, WRONG).await);
    let r = login_attempt(&anon, name, PASSWORD).await;
    assert_throttled(&r);
    assert_eq!(r.retry_after(), Some(1), "Retry-After for a 1 s window");

    // After the window: checked again, and the window doubles. A failure is
    // counted when it arrives, so time points are measured from the send.
    wait_out(3).await;
    let fourth_sent = Instant::now();
    login_attempt(&anon, name, WRONG)
        .await
        .err(401, "invalid_credentials");
    assert_throttled(&login_attempt(&anon, name, WRONG).await);
    // Past the old 1 s window, well inside the new 2 s one.
    tokio::time::sleep_until((fourth_sent + window(3) * 6 / 5).into()).await;
    assert_throttled(&login_attempt(&anon, name, WRONG).await);
    wait_out(4).await;
    login_attempt(&anon, name, WRONG)
        .await
        .err(401, "invalid_credentials");

    // Success after waiting resets the count.
    wait_out(5).await;
    login(&server, name, PASSWORD).await;
    for _ in 0..3 {
        login_attempt(&anon, name, WRONG)
            .await
            .err(401, "invalid_credentials");
    }
    assert_throttled(&login_attempt(&anon, name, WRONG).await);
}

/// Fails `n` logins for `name`, waiting out backoff windows as told by the
/// server (only 401s count).
async fn fail_times(anon: &Api, name: &str, n: u32) {
    let mut failures = 0;
    let mut refusals = 0;
    while failures < n {
        let r = login_attempt(anon, name, WRONG).await;
        match r.status.as_u16() {
            401 => {
                r.err(401, "invalid_credentials");
                failures += 1;
            }
            429 => {
                assert_throttled(&r);
                refusals += 1;
                assert!(refusals < 400, "still throttled after {refusals} tries");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("{}: unexpected {} {}", r.what, r.status, r.text),
        }
    }
}

/// A server whose backoff is tiny, so ten failures take about a second.
fn fast_backoff_server() -> Server {
    Server::start_with(
        &[
            ("STRONGROOM_LOGIN_BACKOFF_BASE_MS", "10"),
            ("STRONGROOM_LOGIN_LOCKOUT_THRESHOLD", "10"),
            ("STRONGROOM_LOGIN_LOCKOUT_SECS", "1800"),
        ],
        &[],
    )
}

#[tokio::test]
async fn lockout_after_ten_failures() {
    let server = fast_backoff_server();
    let anon = server.anon();
    let user = make_user(&server).await;
    let name = &user.username;
    fail_times(&anon, name, 10).await;

    // Locked: even the right password; Retry-After tells the lockout apart
    // from the (shorter) backoff window.
    for password in [PASSWORD, WRONG] {
        let r = login_attempt(&anon, name, password).await;
        assert_throttled(&r);
        let after = r.retry_after().unwrap();
        assert!(
            (LOCKOUT_SECS - 60..=LOCKOUT_SECS + 1).contains(&after),
            "Retry-After {after} is not near {LOCKOUT_SECS}"
        );
    }
    // Hammering the locked account is refused every time, but recorded once a minute, while
    // every checked attempt is.
    for _ in 0..20 {
        assert_throttled(&login_attempt(&anon, name, PASSWORD).await);
    }
    let admin = server.admin().await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    // (A refusal before the account is looked up names no actor: this server's only one.)
    let logins = entries_with_action(&auditor, "auth.login").await;
    let with = |reason: &str| logins.iter().filter(|e| e["reason"] == reason).count();
    assert_eq!(with("too_many_attempts"), 1, "{logins:?}");
    let checked = logins
        .iter()
        .filter(|e| e["actor"]["user_id"] == user.id.as_str() && e["reason"] != "too_many_attempts")
        .count();
    assert_eq!(checked, 10, "{logins:?}");
    // Other accounts are unaffected.
    let other = make_user(&server).await;
    login(&server, &other.username, PASSWORD).await;
}

#[tokio::test]
async fn unknown_user_looks_like_wrong_password() {
    let server = server();
    let anon = server.anon();
    let user = make_user(&server).await;
    let ghost = unique("ghost");
    let wrong = login_attempt(&anon, &user.username, WRONG).await;
    let unknown = login_attempt(&anon, &ghost, WRONG).await;
    wrong.err(401, "invalid_credentials");
    unknown.err(401, "invalid_credentials");
    let mut a = wrong.body.clone();
    let mut b = unknown.body.clone();
    a["error"]["request_id"] = serde_json::Value::Null;
    b["error"]["request_id"] = serde_json::Value::Null;
    assert_eq!(a, b, "unknown user and wrong password answer differently");
    let names = |r: &Resp| {
        let mut v: Vec<String> = r
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k != "date")
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&wrong), names(&unknown), "header sets differ");

    // Throttled the same way.
    for _ in 0..2 {
        login_attempt(&anon, &ghost, WRONG)
            .await
            .err(401, "invalid_credentials");
    }
    assert_throttled(&login_attempt(&anon, &ghost, WRONG).await);
    wait_out(3).await;
    login_attempt(&anon, &ghost, WRONG)
        .await
        .err(401, "invalid_credentials");
    assert_throttled(&login_attempt(&anon, &ghost, WRONG).await);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn unknown_user_timing_parity() {
    let server = server();
    let admin = server.admin().await;
    let mut users = Vec::new();
    for _ in 0..5 {
        users.push(
            create_user(
                &admin,
                "tenant_user",
                Some(&create_tenant(&admin, None).await),
            )
            .await,
        );
    }
    // Warm up one connection, used for every timed attempt.
    let anon = server.anon();
    login_attempt(&anon, &unique("warm"), WRONG).await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for u in &users {
        let r = login_attempt(&anon, &u.username, WRONG).await;
        r.err(401, "invalid_credentials");
        known.push(r.elapsed);
        let r = login_attempt(&anon, &unique("nobody"), WRONG).await;
        r.err(401, "invalid_credentials");
        unknown.push(r.elapsed);
    }
    let (k, u) = (median(known.clone()), median(unknown.clone()));
    let ratio = k.as_secs_f64().max(u.as_secs_f64()) / k.as_secs_f64().min(u.as_secs_f64());
    assert!(
        ratio <= 3.0,
        "median wrong-password {k:?} vs unknown-user {u:?} (ratio {ratio:.2}); \
         samples {known:?} / {unknown:?}"
    );
}

#[tokio::test]
async fn lockout_survives_a_restart() {
    let server = fast_backoff_server();
    let anon = server.anon();
    let user = make_user(&server).await;
    fail_times(&anon, &user.username, 10).await;
    assert_throttled(&login_attempt(&anon, &user.username, PASSWORD).await);

    let server = server.restart().await;
    let anon = server.anon();
    let r = login_attempt(&anon, &user.username, PASSWORD).await;
    assert_throttled(&r);
    let after = r.retry_after().unwrap();
    assert!(
        (LOCKOUT_SECS - 120..=LOCKOUT_SECS + 1).contains(&after),
        "Retry-After {after} after a restart"
    );
    // Other accounts log in normally.
    server.admin().await;
}

/// A locked account's password cannot be tried through a password change either, not even on
/// an instance (here: after a restart) that has not seen the failures itself.
#[tokio::test]
async fn a_lockout_holds_for_password_changes() {
    let server = fast_backoff_server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let user = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let (session, _) = login(&server, &user.username, PASSWORD).await;
    fail_times(&server.anon(), &user.username, 10).await;

    let server = server.restart().await;
    let session = server.anon().with_token(session.token());
    let change = serde_json::json!({
        "current_password": PASSWORD,
        "new_password": "Copper kettle winter 42 orchard!",
    });
    assert_throttled(&session.post("/v1/me/password", change).await);
    assert_throttled(&login_attempt(&server.anon(), &user.username, PASSWORD).await);
}

#[tokio::test]
async fn failures_before_a_restart_still_count() {
    let server = fast_backoff_server();
    let user = make_user(&server).await;
    fail_times(&server.anon(), &user.username, 6).await;

    // The store keeps the count (as it does for instances sharing it): four more lock.
    let server = server.restart().await;
    let anon = server.anon();
    fail_times(&anon, &user.username, 4).await;
    let r = login_attempt(&anon, &user.username, PASSWORD).await;
    assert_throttled(&r);
    let after = r.retry_after().unwrap();
    assert!(
        (LOCKOUT_SECS - 60..=LOCKOUT_SECS + 1).contains(&after),
        "Retry-After {after}: not the lockout"
    );
}
