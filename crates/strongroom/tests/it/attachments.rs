//! Files attached to cases: scanned before they are stored and before each download, sealed under
//! the tenant's attachment key, reached like the case's content, recorded in the log, moved by
//! key rotation.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::kit::*;

/// The EICAR test file, built at run time so that the test binary never holds it whole.
fn eicar() -> Vec<u8> {
    [
        &br"X5O!P%@AP[4\PZX54(P^)7CC)7}$"[..],
        b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ]
    .concat()
}

/// A tenant (no approval needed), its admin and one case.
struct World {
    admin: Session,
    tenant: String,
    boss: Session,
    case: String,
}

async fn world(server: &Server) -> World {
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(server, &admin, "tenant_admin", &tenant).await;
    let case = id_of(
        &create_case(
            &boss,
            &tenant,
            json!({"title": "Crash on start", "severity": "high"}),
        )
        .await,
    );
    World {
        admin,
        tenant,
        boss,
        case,
    }
}

impl World {
    fn files(&self) -> String {
        attachments_path(&self.tenant, &self.case)
    }
    fn file(&self, id: &str) -> String {
        format!("{}/{id}", self.files())
    }
    fn content(&self, id: &str) -> String {
        format!("{}/{id}/content", self.files())
    }
}

async fn stored_files(server: &Server, tenant: &str) -> i64 {
    let mut db = server.db().await;
    let n = db
        .int(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM attachments WHERE tenant_id = $1",
            &[tenant.into()],
        )
        .await;
    db.close().await;
    n
}

fn upload(name: &str, content: &[u8]) -> Value {
    json!({"name": name, "media_type": "text/plain", "content": STANDARD.encode(content)})
}

#[tokio::test]
async fn a_clean_file_round_trips_sealed_and_recorded() {
    let server = Server::start();
    let w = world(&server).await;
    let tag = rand_hex(8);
    let name = format!("CANARY-{tag}-crash.log");
    let content_canary = format!("CANARY-{tag}-stack-trace");
    // Binary content around the canary: every byte value must come back as it went.
    let mut content: Vec<u8> = (0..=255u8).collect();
    content.extend(content_canary.as_bytes());
    content.extend((0..=255u8).rev());

    let made = w
        .boss
        .post(&w.files(), upload(&name, &content))
        .await
        .ok(201);
    let id = id_of(&made);
    assert_eq!(made["name"], name.as_str(), "{made}");
    assert_eq!(made["media_type"], "text/plain");
    assert_eq!(made["size"], content.len());
    assert_eq!(made["case_id"], w.case.as_str());
    assert_eq!(made["uploaded_by"], w.boss.id.as_str());
    assert_eq!(made["scan"]["verdict"], "clean");
    assert_eq!(made["scan"]["scanner"], "builtin");
    assert!(
        made.get("content").is_none(),
        "records never carry the bytes"
    );

    let listed = list_items(&w.boss, &w.files()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], name.as_str());
    let one = w.boss.get(&w.file(&id)).await.ok(200);
    assert_eq!(one["size"], content.len());

    let (status, headers, body) = w.boss.get_bytes(&w.content(&id)).await;
    assert_eq!(status, 200);
    assert_eq!(body, content);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["content-disposition"], "attachment");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");

    // Each step is in the log, by id; the name and the bytes never are.
    let auditor = staff_session(&server, &w.admin, "auditor").await;
    for action in [
        "attachment.create",
        "attachment.list",
        "attachment.read",
        "attachment.download",
    ] {
        let entries = entries_with_action(&auditor, action).await;
        assert_eq!(entries.len(), 1, "{action}: {entries:?}");
        assert!(
            strings(&entries[0]["records"]).contains(&id),
            "{action}: {}",
            entries[0]
        );
    }
    let download = &entries_with_action(&auditor, "attachment.download").await[0];
    assert_eq!(
        download["fields_disclosed"],
        json!(["content"]),
        "{download}"
    );

    // At rest (database, WAL, PostgreSQL's rows) and in the server's output: neither canary.
    let needles: Vec<(String, Vec<u8>)> = [&name, &content_canary]
        .iter()
        .map(|c| ((*c).clone(), c.as_bytes().to_vec()))
        .collect();
    let hits = crate::lifecycle_shred::find_in_files(&server.at_rest_files().await, &needles);
    assert!(hits.is_empty(), "plaintext at rest: {hits:?}");
    let log = server.stderr();
    assert!(!log.contains(&tag), "a canary in the server log");
    let all = auditor
        .get("/v1/audit/entries?start=0&limit=500")
        .await
        .ok(200);
    assert!(!all.to_string().contains(&tag), "a canary in the audit log");
}

#[tokio::test]
async fn malware_is_refused_recorded_and_never_stored() {
    let server = Server::start();
    let w = world(&server).await;
    let mut infected = b"2026-12-07 01:02:03 worker crashed\n".to_vec();
    infected.extend(eicar());
    for file in [eicar(), infected] {
        let refused = w.boss.post(&w.files(), upload("dump.bin", &file)).await;
        refused.err(422, "malware_detected");
        assert_eq!(
            refused.body["error"]["details"]["signature"], "Eicar-Test-Signature",
            "{}",
            refused.text
        );
    }
    assert_eq!(stored_files(&server, &w.tenant).await, 0);
    assert!(list_items(&w.boss, &w.files()).await.is_empty());
    let auditor = staff_session(&server, &w.admin, "auditor").await;
    let entries = entries_with_action(&auditor, "attachment.create_refused").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["decision"], "deny");
    assert_eq!(entries[0]["reason"], "malware_detected");
    assert!(
        entries_with_action(&auditor, "attachment.create")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn without_a_verdict_nothing_is_stored_or_served() {
    let server = Server::start();
    let w = world(&server).await;
    let kept = id_of(&add_attachment(&w.boss, &w.tenant, &w.case, "kept.log", b"fine").await);
    // A clamd address nothing listens on: no verdict, so no upload and no download.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("clamd:{}", closed.local_addr().unwrap());
    drop(closed);
    let server = server
        .restart_with_env(&[("STRONGROOM_ATTACHMENT_SCANNER", &address)])
        .await;
    let boss = open_session(&server, &w.boss.username, PASSWORD, "tenant_admin").await;
    boss.post(&w.files(), upload("new.log", b"new"))
        .await
        .err(503, "scanner_unavailable");
    boss.get(&w.content(&kept))
        .await
        .err(503, "scanner_unavailable");
    assert_eq!(stored_files(&server, &w.tenant).await, 1);
    // The record is still readable: only the bytes need a verdict.
    boss.get(&w.file(&kept)).await.ok(200);
    let auditor = staff_session(&server, &server.admin().await.api, "auditor").await;
    for action in ["attachment.create_refused", "attachment.download_refused"] {
        let entries = entries_with_action(&auditor, action).await;
        assert_eq!(entries.len(), 1, "{action}: {entries:?}");
        assert_eq!(entries[0]["reason"], "scanner_unavailable");
    }
}

#[tokio::test]
async fn staff_reach_files_only_through_the_case() {
    let server = Server::start();
    let w = world(&server).await;
    let id = id_of(&add_attachment(&w.boss, &w.tenant, &w.case, "trace.txt", b"trace").await);
    let engineer = staff_session(&server, &w.admin, "support_engineer").await;
    for path in [w.files(), w.file(&id), w.content(&id)] {
        engineer.get(&path).await.err(403, "access_grant_required");
    }
    engineer
        .post(&w.files(), upload("mine.txt", b"x"))
        .await
        .err(403, "access_grant_required");
    // The case's gate comes before the body is looked at: nothing about the upload is judged
    // for a caller who may not add to the case.
    engineer
        .post(&w.files(), json!({"name": "..", "content": "not base64!"}))
        .await
        .err(403, "access_grant_required");
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    assign(&supervisor, &w.tenant, &w.case, &engineer.id).await;
    let (status, _, body) = engineer.get_bytes(&w.content(&id)).await;
    assert_eq!((status.as_u16(), body.as_slice()), (200, &b"trace"[..]));
    let theirs = add_attachment(&engineer, &w.tenant, &w.case, "repro.sh", b"echo hi").await;
    assert_eq!(theirs["uploaded_by"], engineer.id.as_str());
    assert_eq!(list_items(&w.boss, &w.files()).await.len(), 2);

    // Roles that never see content, and purposes the case may not be read for.
    for role in ["auditor", "platform_admin", "marketing"] {
        let staff = staff_session(&server, &w.admin, role).await;
        let refused = staff.get(&w.content(&id)).await;
        assert!(
            refused.status == 403,
            "{role}: {} {}",
            refused.status,
            refused.text
        );
    }
    engineer
        .with_purpose(Some("marketing"))
        .get(&w.content(&id))
        .await
        .err(403, "purpose_not_permitted");
    engineer
        .with_purpose(None)
        .get(&w.content(&id))
        .await
        .err(400, "purpose_required");

    // Another tenant's admin, another case's path, an unknown id: not found.
    let other = world(&server).await;
    other.boss.get(&w.content(&id)).await.err(404, "not_found");
    let elsewhere = format!("{}/{id}/content", attachments_path(&w.tenant, &other.case));
    w.boss.get(&elsewhere).await.err(404, "not_found");
    let second_case = id_of(&create_case(&w.boss, &w.tenant, json!({"title": "Another"})).await);
    let wrong_case = format!("{}/{id}/content", attachments_path(&w.tenant, &second_case));
    w.boss.get(&wrong_case).await.err(404, "not_found");
    w.boss
        .get(&w.content(&new_looking_id()))
        .await
        .err(404, "not_found");
}

/// An id shaped like the vault's own, which no file has.
fn new_looking_id() -> String {
    format!("{}{}", rand_hex(16), rand_hex(16))
}

#[tokio::test]
async fn bad_uploads_get_precise_errors_and_change_nothing() {
    let server = Server::start_with(&[("STRONGROOM_ATTACHMENT_MAX_BYTES", "2097152")], &[]);
    let w = world(&server).await;
    let cases = [
        (json!({"name": "a", "content": "not base64!"}), "content"),
        (json!({"name": "a", "content": ""}), "content"),
        (
            json!({"name": "../../etc/passwd", "content": "aGk="}),
            "name",
        ),
        (json!({"name": " ", "content": "aGk="}), "name"),
        (
            json!({"name": "a", "media_type": "text/html; charset=utf-8", "content": "aGk="}),
            "media_type",
        ),
    ];
    for (body, field) in cases {
        let refused = w.boss.post(&w.files(), body).await;
        refused.err(422, "validation_failed");
        assert_eq!(refused.fields(), [field], "{}", refused.text);
    }
    w.boss
        .post(
            &w.files(),
            json!({"name": "a", "content": "aGk=", "owner": "me"}),
        )
        .await
        .err(400, "invalid_request");
    w.boss
        .with_purpose(None)
        .post(&w.files(), upload("a", b"hi"))
        .await
        .err(400, "purpose_required");
    // Over the file limit: refused whole, whether the body or the decoded file is too big.
    let too_big = vec![7u8; 2 * 1024 * 1024 + 1];
    w.boss
        .post(&w.files(), upload("big.bin", &too_big))
        .await
        .err(413, "payload_too_large");
    w.boss
        .post(&w.files(), upload("huge.bin", &vec![7u8; 4 * 1024 * 1024]))
        .await
        .err(413, "payload_too_large");
    assert_eq!(stored_files(&server, &w.tenant).await, 0);
    // Bodies refused once the case's gate let the caller in are in the log, with their reason.
    let auditor = staff_session(&server, &w.admin, "auditor").await;
    let refused = entries_with_action(&auditor, "attachment.create_refused").await;
    let reasons: Vec<&str> = refused
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == "validation_failed")
            .count(),
        5,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"payload_too_large"), "{reasons:?}");
    // At the limit it is stored, though the body is above the API's 1 MiB default.
    let at_limit = vec![7u8; 2 * 1024 * 1024];
    let made = w
        .boss
        .post(&w.files(), upload("big.bin", &at_limit))
        .await
        .ok(201);
    let (status, _, body) = w.boss.get_bytes(&w.content(&id_of(&made))).await;
    assert_eq!(status, 200);
    assert!(body == at_limit, "the file came back altered");
}

#[tokio::test]
async fn rotation_moves_files_to_the_new_key() {
    let server = Server::start_with(
        &[
            ("STRONGROOM_KEY_JOB_INTERVAL_SECS", "1"),
            ("STRONGROOM_KEY_RETIRE_GRACE_SECS", "1"),
        ],
        &[],
    );
    let w = world(&server).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        let file = format!("log {n}: {}", rand_hex(8)).into_bytes();
        ids.push((
            id_of(&add_attachment(&w.boss, &w.tenant, &w.case, "x.log", &file).await),
            file,
        ));
    }
    let keys = format!("/v1/tenants/{}/keys", w.tenant);
    w.admin
        .post(&format!("{keys}/rotate"), json!({}))
        .await
        .ok(201);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = w.admin.get(&keys).await.ok(200);
        let old = status["versions"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["version"] == 1))
            .map(|v| v["state"].clone());
        if status["reencryption_pending"] == 0 && old == Some(json!("retired")) {
            break;
        }
        assert!(Instant::now() < deadline, "never re-encrypted: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every name and content now under version 2, and each file reads back as it was.
    let mut db = server.db().await;
    let versions: Vec<Vec<u8>> = db
        .column(
            "SELECT substr(content, 2, 4) FROM attachments WHERE tenant_id = $1 \
             UNION ALL SELECT substr(name, 2, 4) FROM attachments WHERE tenant_id = $1",
            &[(&w.tenant).into()],
        )
        .await;
    db.close().await;
    assert_eq!(versions.len(), 12);
    assert!(
        versions.iter().all(|v| v == &2u32.to_be_bytes()),
        "{versions:?}"
    );
    for (id, file) in &ids {
        let (status, _, body) = w.boss.get_bytes(&w.content(id)).await;
        assert_eq!((status.as_u16(), &body), (200, file));
    }
}

/// ClamAV's daemon on a socket of its own, with one signature: the EICAR file's bytes.
struct Clamd {
    child: std::process::Child,
    socket: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Clamd {
    /// `None` when `clamd` is not installed (`STRONGROOM_REQUIRE_CLAMD=1` makes that a failure).
    fn start() -> Option<Clamd> {
        let installed = std::process::Command::new("clamd")
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        if !installed {
            assert!(
                std::env::var("STRONGROOM_REQUIRE_CLAMD").as_deref() != Ok("1"),
                "clamd is required (STRONGROOM_REQUIRE_CLAMD=1) but not installed"
            );
            tell("attachments: clamd is not installed; its test is skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("clamd.sock");
        // An unofficial signature database in the daemon's own format: name, any file type, any
        // offset, the bytes in hex.
        std::fs::write(
            dir.path().join("strongroom.ndb"),
            format!("Strongroom.Test.EICAR:0:*:{}\n", hex::encode(eicar())),
        )
        .unwrap();
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "DatabaseDirectory {dir}\nLocalSocket {sock}\nTemporaryDirectory {dir}\n\
                 Foreground yes\nLogFile {dir}/clamd.log\n",
                dir = dir.path().display(),
                sock = socket.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("clamd")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers_ping(&socket) {
            assert!(Instant::now() < deadline, "clamd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Clamd { child, socket, dir })
    }

    /// One command on a fresh connection, and the daemon's reply.
    fn command(&self, command: &[u8]) -> Vec<u8> {
        send(&self.socket, command).unwrap_or_default()
    }
}

fn send(socket: &std::path::Path, command: &[u8]) -> Option<Vec<u8>> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    let mut reply = Vec::new();
    stream.write_all(command).ok()?;
    stream.read_to_end(&mut reply).ok()?;
    Some(reply)
}

fn answers_ping(socket: &std::path::Path) -> bool {
    send(socket, b"zPING\0").is_some_and(|reply| reply.starts_with(b"PONG"))
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn clamav_judges_uploads_and_downloads() {
    let Some(mut clamd) = Clamd::start() else {
        return;
    };
    let scanner = format!("clamd:{}", clamd.socket.display());
    let server = Server::start_with(&[("STRONGROOM_ATTACHMENT_SCANNER", &scanner)], &[]);
    let w = world(&server).await;
    let made = add_attachment(&w.boss, &w.tenant, &w.case, "ok.log", b"all is well").await;
    assert_eq!(made["scan"]["scanner"], "clamd", "{made}");
    let (status, _, body) = w.boss.get_bytes(&w.content(&id_of(&made))).await;
    assert_eq!(
        (status.as_u16(), body.as_slice()),
        (200, &b"all is well"[..])
    );

    let refused = w.boss.post(&w.files(), upload("dump.bin", &eicar())).await;
    refused.err(422, "malware_detected");
    let signature = refused.body["error"]["details"]["signature"]
        .as_str()
        .unwrap_or_default();
    assert!(
        signature.starts_with("Strongroom.Test.EICAR"),
        "{}",
        refused.text
    );
    assert_eq!(stored_files(&server, &w.tenant).await, 1);

    // A signature learnt after the upload stops the stored file at its next download.
    std::fs::write(
        clamd.dir.path().join("learnt.ndb"),
        format!(
            "Strongroom.Test.Learnt:0:*:{}\n",
            hex::encode(b"all is well")
        ),
    )
    .unwrap();
    assert!(clamd.command(b"zRELOAD\0").starts_with(b"RELOADING"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = w.boss.get(&w.content(&id_of(&made))).await;
        if answer.status == 422 {
            answer.err(422, "malware_detected");
            assert_eq!(
                answer.body["error"]["details"]["signature"]
                    .as_str()
                    .map(|s| s.starts_with("Strongroom.Test.Learnt")),
                Some(true),
                "{}",
                answer.text
            );
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert!(
            Instant::now() < deadline,
            "clamd never learnt the signature"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let auditor = staff_session(&server, &w.admin, "auditor").await;
    let refused = entries_with_action(&auditor, "attachment.download_refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["reason"], "malware_detected");

    // The daemon gone: no verdict, so nothing more goes in or out.
    let _ = clamd.child.kill();
    let _ = clamd.child.wait();
    w.boss
        .get(&w.content(&id_of(&made)))
        .await
        .err(503, "scanner_unavailable");
    w.boss
        .post(&w.files(), upload("late.log", b"late"))
        .await
        .err(503, "scanner_unavailable");
    assert_eq!(stored_files(&server, &w.tenant).await, 1);
}

/// A TLS connection to the server's API trusting only its certificate, for writing a request by
/// hand.
async fn raw_tls(server: &Server) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(server.cert_pem()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.api).await.unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(server.api.ip().into());
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_that_trickles_in_loses_its_turn() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Server::start_with(&[("STRONGROOM_ATTACHMENT_BODY_TIMEOUT_MS", "500")], &[]);
    let w = world(&server).await;
    let mut stream = raw_tls(&server).await;
    // Headers promising 1,000 bytes, then only the start of the JSON.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Access-Purpose: customer-self-service\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"name\": \"slow.log\", \"content\": \"",
        w.files(),
        server.api,
        w.boss.token().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("invalid_request") {
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk))
            .await
            .expect("no answer within 20 s")
            .unwrap();
        assert!(
            read > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
    }
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        waited >= Duration::from_millis(400),
        "answered after {waited:?}"
    );
    // Nothing stored, and the turn is free for the next upload.
    assert_eq!(stored_files(&server, &w.tenant).await, 0);
    add_attachment(&w.boss, &w.tenant, &w.case, "fast.log", b"fast").await;
}
