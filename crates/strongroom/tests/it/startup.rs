//! Start-up, listeners, files on disk, the data-dir lock and graceful stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kit::*;

#[tokio::test]
async fn listen_json_healthz_and_metrics() {
    let server = Server::start();
    let listen: Value = serde_json::from_str(
        &std::fs::read_to_string(server.data_dir.join("run/listen.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(listen["api"], json!(server.api.to_string()));
    assert_eq!(listen["ops"], json!(server.ops.to_string()));
    assert_eq!(listen["pid"], json!(server.pid));
    assert_ne!(server.api.port(), server.ops.port());
    assert!(server.api.ip().is_loopback() && server.ops.ip().is_loopback());

    // Some API traffic first, so that metrics have something to say.
    server.admin().await;

    let ops = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = ops.get(server.ops_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap().trim(), "ok");

    let metrics = ops.get(server.ops_url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    for line in &samples {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "not a Prometheus sample line: {line:?}"
        );
    }
    assert!(
        samples.iter().any(|l| {
            l.starts_with("strongroom_http_requests_total{")
                && l.contains("route=\"/v1/auth/login\"")
                && l.contains("status=\"200\"")
        }),
        "the admin's login is not counted:\n{text}"
    );
}

#[tokio::test]
async fn ops_listener_serves_nothing_else() {
    let server = Server::start();
    let ops = reqwest::Client::builder().no_proxy().build().unwrap();
    for path in [
        "/v1/me",
        "/v1/audit/checkpoint",
        "/v1/audit/verifier-key",
        "/v1/confidentiality",
        "/v1/openapi.json",
        "/",
        "/healthz/x",
    ] {
        let r = ops.get(server.ops_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "ops GET {path}");
    }
    let r = ops
        .post(server.ops_url("/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "ops POST /v1/auth/login");
    let body = r.text().await.unwrap();
    assert!(!body.contains("token"), "ops login answered: {body}");
}

#[tokio::test]
async fn api_port_speaks_tls_only() {
    let server = Server::start();
    // Plaintext HTTP to the API port never gets an HTTP answer.
    let mut stream = TcpStream::connect(server.api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext request got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // And the server is still fine after it.
    let r = server.anon().get("/v1/me").await;
    r.err(401, "unauthenticated");

    // http:// URL through reqwest: a transport error, not a response.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://{}/v1/me", server.api))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP got a response: {r:?}");

    // A client that does not trust the server's certificate fails.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = untrusting.get(server.url("/v1/me")).send().await;
    assert!(r.is_err(), "untrusted certificate accepted: {r:?}");

    // The certificate also names localhost.
    let r = server
        .http_client()
        .get(format!("https://localhost:{}/v1/me", server.api.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn unknown_api_route_is_404_not_found() {
    let server = Server::start();
    let admin = server.admin().await;
    admin.get("/v1/no-such-route").await.err(404, "not_found");
    server
        .anon()
        .get("/nothing-here")
        .await
        .err(404, "not_found");
}

#[tokio::test]
async fn data_dir_layout_and_key_modes() {
    let server = Server::start();
    let d = &server.data_dir;
    for key in ["keys/root.key", "keys/log-signing.key"] {
        let meta = std::fs::metadata(d.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(meta.is_file(), "{key} is not a file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{key} mode");
        assert!(meta.len() > 0, "{key} is empty");
    }
    let cert = std::fs::read_to_string(d.join("tls/cert.pem")).unwrap();
    assert!(
        cert.contains("-----BEGIN CERTIFICATE-----"),
        "cert.pem: {cert}"
    );
    let key = std::fs::read_to_string(d.join("tls/key.pem")).unwrap();
    assert!(
        key.contains("PRIVATE KEY-----"),
        "key.pem is not a PEM private key"
    );
    let key_mode = std::fs::metadata(d.join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o077, 0, "tls/key.pem readable by group/others");
    // On PostgreSQL the data lives in the server's schema: no database file in the data dir.
    assert_eq!(
        d.join("strongroom.db").is_file(),
        !on_postgres(),
        "strongroom.db in the data dir on {:?}",
        backend()
    );
    assert!(d.join("run/lock").exists(), "no run/lock");

    // JSON log lines in logs/strongroom.log.
    server.admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(d.join("logs/strongroom.log")).unwrap_or_default();
        if !log.trim().is_empty() || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!log.trim().is_empty(), "logs/strongroom.log is empty");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "log line is not JSON: {line}"
        );
    }
}

#[tokio::test]
async fn second_serve_on_same_dir_fails_already_in_use() {
    let server = Server::start();
    let (err, out) = refused_serve(&server.data_dir, &[]);
    assert!(
        err.contains("already in use") || out.contains("already in use"),
        "no 'already in use' message: stderr={err:?} stdout={out:?}"
    );
    // The first server is unaffected.
    assert!(server.is_running());
    server
        .anon()
        .get("/v1/me")
        .await
        .err(401, "unauthenticated");
}

/// A start that would not open the stored keys is refused: a missing key file is not replaced
/// by a new key, and a wrong key is found at start, not by every request after it.
#[tokio::test]
async fn a_missing_or_wrong_root_key_refuses_to_start() {
    let server = Server::start();
    let admin = server.admin().await;
    create_tenant(&admin, None).await;
    drop(admin);
    let status = server.stop().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let key = server.data_dir.join("keys/root.key");
    let kept = server.data_dir.join("root.key.kept");
    std::fs::rename(&key, &kept).unwrap();

    let err = server.refused_restart();
    assert!(err.contains("keys/root.key is missing"), "stderr: {err}");
    assert!(
        !key.exists(),
        "a new root key was made in place of the missing one"
    );

    use base64::Engine as _;
    let wrong = format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    std::fs::write(&key, wrong).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = server.refused_restart();
    assert!(err.contains("does not open the keys"), "stderr: {err}");

    std::fs::rename(&kept, &key).unwrap();
    let server = server.restart().await;
    server.admin().await;
}

/// A data dir made beforehand open to others (a plain `mkdir`, a systemd `StateDirectory`) is
/// closed to them at start, so that the database inside is not readable by other users.
#[tokio::test]
async fn a_data_dir_open_to_others_is_closed_at_start() {
    let server = Server::start();
    let status = server.stop().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    for sub in ["", "run"] {
        let dir = server.data_dir.join(sub);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let server = server.restart().await;
    for sub in ["", "run"] {
        let mode = std::fs::metadata(server.data_dir.join(sub))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{sub:?}: {mode:o}");
    }
}

#[tokio::test]
async fn sigterm_exits_zero_and_data_survives_restart() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contact = create_contact(&boss, &tenant, json!({"name": "Grace Hopper"})).await;
    let before = boss
        .get(&contact_path(&tenant, &id_of(&contact)))
        .await
        .ok(200);
    let username = boss.username.clone();
    drop((boss, admin));

    let status = server.stop().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_eq!(status.code(), Some(0));
    assert!(!server.is_running());

    let server = server.restart().await;
    let (api, _) = login(&server, &username, PASSWORD).await;
    let after = api
        .with_purpose(Some("customer-self-service"))
        .get(&contact_path(&tenant, &id_of(&contact)))
        .await
        .ok(200);
    assert_eq!(before, after, "contact changed across a restart");
    drop(api);
    let status = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigterm_with_idle_http2_client_exits_promptly() {
    // A client keeps its (HTTP/2, keep-alive) connection open and idle, as
    // load balancers and browsers do: shutdown must not wait for it.
    let server = Server::start();
    let client = server.http_client();
    let r = client.get(server.url("/v1/me")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 401);
    let started = Instant::now();
    let status = server.stop().await;
    let took = started.elapsed();
    drop(client);
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM took {took:?} with one idle HTTP/2 connection open"
    );
}

/// A connection silent past `connection_idle_secs` is closed by the server: after its first
/// request, only hyper's header deadline (20 s, HTTP/1 only) bounded it, and an HTTP/2 client
/// whose stack answers pings held it for ever.
#[tokio::test]
async fn a_silent_connection_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = Server::start_with(&[("STRONGROOM_CONNECTION_IDLE_SECS", "2")], &[]);
    let mut tls = raw_tls(&server).await;
    tls.write_all(b"GET /v1/audit/checkpoint HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tls.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    let answered = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match tls.read(&mut answer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    let took = answered.elapsed();
    assert!(closed.is_ok(), "still open after {took:?}");
    assert!(took < Duration::from_secs(8), "closed only after {took:?}");
}

/// The configuration file takes every documented key, optional ones included; the environment
/// still reaches the `[service]` keys the file leaves out; what cannot be meant is refused.
#[tokio::test]
async fn the_configuration_file_and_the_environment_layer_key_by_key() {
    let server = Server::start();
    assert!(server.stop().await.success());
    let dir = server.data_dir.clone();
    let file = dir.join("strongroom.toml");
    let cert = dir.join("tls/cert.pem");
    let key = dir.join("tls/key.pem");
    std::fs::write(
        &file,
        format!(
            "tls_cert = {cert:?}\ntls_key = {key:?}\n\n[service]\nconfidentiality_version = \"2031-07\"\n"
        ),
    )
    .unwrap();
    let server = server
        .restart_with_env(&[(
            "STRONGROOM_CONFIDENTIALITY_TEXT",
            "Text from the environment.",
        )])
        .await;
    let admin = server.admin().await;
    let agreement = admin.get("/v1/confidentiality").await.ok(200);
    assert_eq!(agreement["version"], "2031-07", "{agreement}");
    assert_eq!(
        agreement["text"], "Text from the environment.",
        "{agreement}"
    );
    assert!(server.stop().await.success());

    for (text, expected) in [
        (
            format!("tls_cert = {cert:?}\n"),
            "tls_cert and tls_key go together",
        ),
        (
            "[service]\nlogin_lockout_secs = 0\n".to_owned(),
            "login_lockout_secs must be greater than 0",
        ),
        (
            "max_body_bytes = 0\n".to_owned(),
            "max_body_bytes must be greater than 0",
        ),
        (
            "[service]\nsession_idle_timeout_secs = 7200\nsession_absolute_timeout_secs = 3600\n"
                .to_owned(),
            "session_absolute_timeout_secs must be at least",
        ),
        (
            "listen_here = 1\n".to_owned(),
            "unknown field `listen_here`",
        ),
        (
            "[service]\nlockout = 1\n".to_owned(),
            "unknown field `lockout`",
        ),
    ] {
        std::fs::write(&file, &text).unwrap();
        let err = server.refused_restart();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    std::fs::remove_file(&file).unwrap();
    server.restart().await.admin().await;
}

/// A certificate or key that does not load stops a first start before anything is made: no
/// database, so no administrator whose password would be printed for a server that never ran.
#[tokio::test]
async fn a_bad_certificate_stops_the_start_before_anything_is_made() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (cert, key) = (root.path().join("cert.pem"), root.path().join("key.pem"));
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    std::fs::write(
        data.join("strongroom.toml"),
        format!("tls_cert = {cert:?}\ntls_key = {key:?}\n"),
    )
    .unwrap();
    let (err, _) = refused_serve(&data, &[]);
    assert!(err.contains("the TLS certificate and key"), "{err}");
    assert!(
        !data.join("strongroom.db").exists(),
        "the store was opened first"
    );
}
