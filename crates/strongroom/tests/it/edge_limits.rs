//! Limits at the edge: failed logins counted by client address (a password spray over many
//! usernames meets no per-username backoff), `X-Forwarded-For` believed only from trusted
//! proxies, and a cap on open connections.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::kit::*;

const WRONG: &str = "Wrong horse lantern 7 ridge!";

/// A login attempt sent with `X-Forwarded-For: forwarded`.
async fn login_forwarded(api: &Api, username: &str, password: &str, forwarded: &str) -> Resp {
    api.send(
        Method::POST,
        "/v1/auth/login",
        Body::Json(json!({"username": username, "password": password})),
        &[("X-Forwarded-For", forwarded)],
    )
    .await
}

#[track_caller]
fn assert_refused_by_source(r: &Resp) {
    r.err(429, "too_many_attempts");
    assert!(
        matches!(r.retry_after(), Some(s) if (1..=900).contains(&s)),
        "{}: Retry-After {:?}",
        r.what,
        r.headers.get("retry-after")
    );
}

#[tokio::test]
async fn a_password_spray_from_one_address_is_refused_whatever_it_forwards() {
    let server = Server::start_with(&[("STRONGROOM_LOGIN_SOURCE_MAX_FAILURES", "4")], &[]);
    let admin = server.admin().await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    let victim = create_user(&admin, "support_engineer", None).await;
    let anon = server.anon();

    // Four usernames, one password each: no username reaches its own backoff. The forwarded
    // address changes every time, and no proxy is trusted, so it is not believed.
    for n in 0..4 {
        login_forwarded(&anon, &unique("sprayed"), WRONG, &format!("198.51.100.{n}"))
            .await
            .err(401, "invalid_credentials");
    }
    // The fifth attempt is refused before any password is checked, a right one included.
    assert_refused_by_source(
        &login_forwarded(&anon, &victim.username, PASSWORD, "198.51.100.99").await,
    );
    for _ in 0..5 {
        assert_refused_by_source(&login_attempt(&anon, &victim.username, PASSWORD).await);
    }

    // Recorded once a window, naming neither the address nor a username tried.
    let logins = entries_with_action(&auditor.api, "auth.login").await;
    let refused: Vec<_> = logins
        .iter()
        .filter(|e| e["reason"] == "too_many_attempts_from_source")
        .collect();
    assert_eq!(refused.len(), 1, "{logins:?}");
    // The refusal is the address's: it names no account, not even the one the right password
    // was tried for.
    assert!(refused[0]["actor"].is_null(), "{logins:?}");
    let text = serde_json::to_string(&logins).unwrap();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("198.51.100."),
        "{text}"
    );
    assert!(!text.contains(&victim.username), "{text}");

    // Sessions already open are untouched; the account itself is not locked.
    auditor.api.get("/v1/me").await.ok(200);
    let locked = admin
        .api
        .get(&format!("/v1/users/{}", victim.id))
        .await
        .ok(200);
    assert_eq!(locked["status"], "active", "{locked}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_counted_apart() {
    let server = Server::start_with(
        &[
            ("STRONGROOM_LOGIN_SOURCE_MAX_FAILURES", "2"),
            ("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
        ],
        &[],
    );
    let admin = server.admin().await;
    let user = create_user(&admin, "support_engineer", None).await;
    let anon = server.anon();

    // A client that claims an address before the proxy's hop is judged by what the proxy saw.
    let behind = |client: &str| format!("203.0.113.250, {client}, 10.9.9.9");
    for _ in 0..2 {
        login_forwarded(&anon, &unique("sprayed"), WRONG, &behind("198.51.100.7"))
            .await
            .err(401, "invalid_credentials");
    }
    assert_refused_by_source(
        &login_forwarded(&anon, &user.username, PASSWORD, &behind("198.51.100.7")).await,
    );
    // Another client behind the same proxy, with its own claim at the left changed too.
    let other = login_forwarded(&anon, &user.username, PASSWORD, &behind("198.51.100.8")).await;
    other.ok(200);
    // The proxy itself, forwarding nothing, is a client of its own.
    login_attempt(&anon, &user.username, PASSWORD).await.ok(200);
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Whether a request on `tls` is answered `200`.
async fn answers(tls: &mut Tls) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if tls
        .write_all(b"GET /v1/audit/checkpoint HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut answer = vec![0u8; 4096];
    matches!(tls.read(&mut answer).await, Ok(n) if answer[..n].starts_with(b"HTTP/1.1 200"))
}

/// Whether a new connection from `from` is closed as it arrives: its handshake fails, or at the
/// latest its first request goes unanswered.
async fn closed_on_arrival(server: &Server, from: Option<std::net::IpAddr>) -> bool {
    match try_raw_tls_from(server, from).await {
        Err(_) => true,
        Ok(mut tls) => !answers(&mut tls).await,
    }
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_until_one_ends() {
    let server = Server::start_with(&[("STRONGROOM_MAX_CONNECTIONS", "2")], &[]);
    let mut first = try_raw_tls(&server).await.expect("first connection");
    let _second = try_raw_tls(&server).await.expect("second connection");
    assert!(
        closed_on_arrival(&server, None).await,
        "a third connection was served with a cap of two"
    );

    // The open ones still work, and once one ends there is room again.
    assert!(answers(&mut first).await);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    while closed_on_arrival(&server, None).await {
        assert!(
            Instant::now() < deadline,
            "no room after a connection ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The refusals are counted for the operator.
    let (status, metrics) = plain_get(server.ops, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("strongroom_connections_refused_total"),
        "{metrics}"
    );
}

/// One client takes at most its share of the connections: the others still get in.
#[tokio::test]
async fn one_client_cannot_take_every_connection() {
    let server = Server::start_with(
        &[
            ("STRONGROOM_MAX_CONNECTIONS", "8"),
            ("STRONGROOM_MAX_CONNECTIONS_PER_CLIENT", "2"),
        ],
        &[],
    );
    let _first = try_raw_tls(&server).await.expect("first connection");
    let _second = try_raw_tls(&server).await.expect("second connection");
    assert!(
        closed_on_arrival(&server, None).await,
        "a client was served a third connection with a share of two"
    );
    // Another client (another loopback address) is served.
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let mut tls = try_raw_tls_from(&server, Some(other))
        .await
        .expect("another client's connection");
    assert!(answers(&mut tls).await);
}
