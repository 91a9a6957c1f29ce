//! Files attached to cases: scanned before they are stored and before each download, sealed under
//! the tenant's attachment key, reached like the case's content, recorded in the log, moved by
//! key rotation.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::kit::*;

/// The EICAR test file, built at run time so that the test binary never holds it whole.
pub(crate) fn eicar() -> Vec<u8> {
    [
        &br"X5O!P%@AP[4\PZX54(P^)7CC)7}$"[..],
        b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ]
    .concat()
}

/// A tenant (no approval needed), its admin and one case.
pub(crate) struct World {
    pub(crate) admin: Session,
    pub(crate) tenant: String,
    pub(crate) boss: Session,
    pub(crate) case: String,
}

pub(crate) async fn world(server: &Server) -> World {
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
    pub(crate) fn files(&self) -> String {
        attachments_path(&self.tenant, &self.case)
    }
    pub(crate) fn file(&self, id: &str) -> String {
        format!("{}/{id}", self.files())
    }
    pub(crate) fn content(&self, id: &str) -> String {
        format!("{}/{id}/content", self.files())
    }
}

pub(crate) async fn stored_files(server: &Server, tenant: &str) -> i64 {
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

pub(crate) fn upload(name: &str, content: &[u8]) -> Value {
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

#[tokio::test]
async fn only_the_tenant_admin_deletes_a_file_and_only_that_file_goes() {
    let server = Server::start();
    let w = world(&server).await;
    let gone = id_of(&add_attachment(&w.boss, &w.tenant, &w.case, "wrong.dump", b"oops").await);
    let kept = id_of(&add_attachment(&w.boss, &w.tenant, &w.case, "right.log", b"keep").await);

    // Reading a case's files is not deleting them: the tenant's users and assigned staff may not.
    let user = tenant_session(&server, &w.admin, "tenant_user", &w.tenant).await;
    user.delete(&w.file(&gone)).await.err(403, "forbidden");
    let engineer = staff_session(&server, &w.admin, "support_engineer").await;
    engineer
        .delete(&w.file(&gone))
        .await
        .err(403, "access_grant_required");
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    assign(&supervisor, &w.tenant, &w.case, &engineer.id).await;
    engineer.delete(&w.file(&gone)).await.err(403, "forbidden");
    // Another tenant's admin, the file under another case, an unknown id: not found.
    let other = world(&server).await;
    other
        .boss
        .delete(&w.file(&gone))
        .await
        .err(404, "not_found");
    let second_case = id_of(&create_case(&w.boss, &w.tenant, json!({"title": "Another"})).await);
    let wrong_case = format!("{}/{gone}", attachments_path(&w.tenant, &second_case));
    w.boss.delete(&wrong_case).await.err(404, "not_found");
    w.boss
        .delete(&w.file(&new_looking_id()))
        .await
        .err(404, "not_found");
    assert_eq!(stored_files(&server, &w.tenant).await, 2);

    let deleted = w.boss.delete(&w.file(&gone)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for path in [w.file(&gone), w.content(&gone)] {
        w.boss.get(&path).await.err(404, "not_found");
    }
    w.boss.delete(&w.file(&gone)).await.err(404, "not_found");
    let listed = list_items(&w.boss, &w.files()).await;
    let listed: Vec<_> = listed.iter().filter_map(|f| f["id"].as_str()).collect();
    assert_eq!(listed, [kept.as_str()]);
    let (status, _, body) = w.boss.get_bytes(&w.content(&kept)).await;
    assert_eq!((status.as_u16(), body.as_slice()), (200, &b"keep"[..]));
    assert_eq!(stored_files(&server, &w.tenant).await, 1);

    // One allowed deletion, by the admin, naming the file; every refusal recorded too.
    let auditor = staff_session(&server, &w.admin, "auditor").await;
    let entries = entries_with_action(&auditor, "attachment.delete").await;
    let allowed: Vec<_> = entries
        .iter()
        .filter(|e| e["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 1, "{entries:?}");
    assert_eq!(
        allowed[0]["actor"]["user_id"],
        w.boss.id.as_str(),
        "{}",
        allowed[0]
    );
    assert_eq!(strings(&allowed[0]["records"]), std::slice::from_ref(&gone));
    let refused = entries.iter().filter(|e| e["decision"] == "deny").count();
    assert_eq!(refused, 7, "{entries:?}");
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

/// What the server has answered on `stream` once it contains `needle`; fails after `within`.
async fn answer_containing(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    needle: &str,
    within: Duration,
) -> String {
    use tokio::io::AsyncReadExt as _;
    let deadline = Instant::now() + within;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {needle:?} within {within:?}: {}",
                    String::from_utf8_lossy(&answer)
                )
            })
            .unwrap();
        assert!(
            read > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_that_trickles_in_loses_its_turn() {
    use tokio::io::AsyncWriteExt as _;
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
    let text = answer_containing(&mut stream, "invalid_request", Duration::from_secs(20)).await;
    let waited = started.elapsed();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        waited >= Duration::from_millis(400),
        "answered after {waited:?}"
    );
    // Nothing stored, and the turn is free for the next upload.
    assert_eq!(stored_files(&server, &w.tenant).await, 0);
    add_attachment(&w.boss, &w.tenant, &w.case, "fast.log", b"fast").await;
}

/// An upload is authenticated before it takes one of the few turns or its body is read: senders
/// without credentials, however many and however slow, are refused at once and hold no turn.
#[tokio::test]
async fn uploads_without_credentials_are_refused_before_their_bodies() {
    use tokio::io::AsyncWriteExt as _;
    let server = Server::start();
    let w = world(&server).await;
    // More than the turns an instance gives at once (eight), each promising a body it never sends.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut stream = raw_tls(&server).await;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAccess-Purpose: customer-self-service\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"name\": \"",
            w.files(),
            server.api,
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        // The body would have 30 s to arrive; the refusal comes first.
        let text = answer_containing(&mut stream, "unauthenticated", Duration::from_secs(10)).await;
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        held.push(stream);
    }
    // With those connections still open, an upload with credentials gets its turn.
    add_attachment(&w.boss, &w.tenant, &w.case, "after.log", b"after").await;
    assert_eq!(stored_files(&server, &w.tenant).await, 1);
    drop(held);
}

/// The caller checked before an upload's turn and body may be gone once they arrive: the upload
/// is authenticated again before it runs, so a session ended meanwhile stores nothing.
#[tokio::test]
async fn an_upload_whose_session_ends_while_its_body_arrives_is_refused() {
    use tokio::io::AsyncWriteExt as _;
    let server = Server::start();
    let w = world(&server).await;
    let body = r#"{"name": "late.log", "content": "bGF0ZQ=="}"#;
    let (first, rest) = body.split_at(12);
    let mut stream = raw_tls(&server).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Access-Purpose: customer-self-service\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{first}",
        w.files(),
        server.api,
        w.boss.token().unwrap(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    // Let the server authenticate the head and start reading the body, then end the session.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logout = w.boss.post("/v1/auth/logout", json!({})).await;
    assert!(matches!(logout.status.as_u16(), 200 | 204), "logout");
    stream.write_all(rest.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let text = answer_containing(&mut stream, "unauthenticated", Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert_eq!(stored_files(&server, &w.tenant).await, 0);
}
