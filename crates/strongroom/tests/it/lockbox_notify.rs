//! Lockbox notifications: signed webhooks with retries, break-glass notices and review, and the
//! notice before a grant ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kit::*;
use crate::lockbox::{
    ENV, SERVER, World, access_log, ask, request, request_action, requests_path, world,
};

/// One accepted webhook: lower-cased headers and the body.
type Hook = (HashMap<String, String>, Vec<u8>);

/// A plain-HTTP receiver on loopback: answers 500 to the first `fail_first` deliveries, then 200,
/// and keeps what it accepted.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Hook>>>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(AtomicUsize::new(0));
    let g = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (g, a) = (Arc::clone(&g), Arc::clone(&attempts));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, headers) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&buf[..pos]).into_owned();
                        let headers: HashMap<String, String> = text
                            .lines()
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                            .collect();
                        break (pos + 4, headers);
                    }
                };
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..head_end + len].to_vec();
                let n = a.fetch_add(1, Ordering::SeqCst);
                let status = if n < fail_first {
                    "500 Internal Server Error"
                } else {
                    g.lock().unwrap().push((headers, body));
                    "200 OK"
                };
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    Receiver { url, got }
}

impl Receiver {
    /// Waits (with a deadline) for an accepted webhook whose body has `type` = `kind`.
    async fn wait_for(&self, kind: &str) -> Hook {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .got
                .lock()
                .unwrap()
                .iter()
                .find(|(_, body)| {
                    serde_json::from_slice::<Value>(body).is_ok_and(|v| v["type"] == kind)
                })
                .cloned();
            if let Some(hit) = found {
                return hit;
            }
            assert!(Instant::now() < deadline, "no {kind} webhook arrived");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The Standard Webhooks check, written independently of the server.
fn verify(secret: &str, headers: &HashMap<String, String>, body: &[u8]) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let signed = format!(
        "{}.{}.{}",
        headers["webhook-id"],
        headers["webhook-timestamp"],
        String::from_utf8_lossy(body)
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let expected = format!(
        "v1,{}",
        b64.encode(aws_lc_rs::hmac::sign(&key, signed.as_bytes()).as_ref())
    );
    headers["webhook-signature"]
        .split(' ')
        .any(|s| s == expected)
}

async fn webhook_world(server: &Server, rx: &Receiver) -> (World, String) {
    let w = world(server, json!({"webhook_url": rx.url})).await;
    let secret = w
        .admin
        .post(
            &format!("/v1/tenants/{}/webhook-secret", w.tenant),
            json!({}),
        )
        .await
        .ok(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // Shown again to the tenant's admin, identical.
    let again = w
        .admin
        .get(&format!("/v1/tenants/{}/webhook-secret", w.tenant))
        .await
        .ok(200);
    assert_eq!(again["secret"], secret.as_str());
    (w, secret)
}

#[tokio::test]
async fn webhooks_are_signed_and_retried() {
    let server = shared(&SERVER, ENV);
    let rx = receiver(2).await;
    let (w, secret) = webhook_world(&server, &rx).await;
    let t = &w.tenant;
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 30)).await);
    let (headers, body) = rx.wait_for("access_request.created").await;
    assert!(
        verify(&secret, &headers, &body),
        "bad signature: {headers:?}"
    );
    assert!(!verify(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        &headers,
        &body
    ));
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["data"]["access_request_id"], rid.as_str());
    // Ids and codes only: no free text, no personal data.
    let text = String::from_utf8_lossy(&body);
    for secret_text in ["ticket 4711", "Ada", "Printer", "burning"] {
        assert!(!text.contains(secret_text), "{text}");
    }
    let notes = list_items(&w.admin, &format!("/v1/tenants/{t}/notifications")).await;
    let note = notes
        .iter()
        .find(|n| n["access_request_id"] == rid.as_str())
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert_eq!(note["id"], headers["webhook-id"].as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notes = list_items(&w.admin, &format!("/v1/tenants/{t}/notifications")).await;
        let n = notes.iter().find(|n| n["id"] == note["id"]).unwrap();
        if n["delivery"]["state"] == "delivered" {
            assert_eq!(n["delivery"]["attempts"], 3, "{n}");
            break;
        }
        assert!(Instant::now() < deadline, "never marked delivered: {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Staff do not read the tenant's notifications or its secret.
    w.engineer
        .get(&format!("/v1/tenants/{t}/notifications"))
        .await
        .err(403, "forbidden");
    server
        .admin()
        .await
        .get(&format!("/v1/tenants/{t}/webhook-secret"))
        .await
        .err(403, "forbidden");
}

#[tokio::test]
async fn break_glass_notifies_and_requires_review() {
    let server = shared(&SERVER, ENV);
    let rx = receiver(0).await;
    let (w, secret) = webhook_world(&server, &rx).await;
    let t = &w.tenant;
    let platform = server.admin().await;
    let officer = staff_session(&server, &platform, "security_officer").await;
    let officer = Session {
        api: officer.api.with_purpose(Some("security-investigation")),
        ..officer
    };
    let second = staff_session(&server, &platform, "security_officer").await;
    let glass = |minutes: u32| {
        json!({
            "case_id": w.case_b,
            "purpose": "security-investigation",
            "justification": "incident 99: suspected account takeover",
            "field_classes": ["case_content"],
            "duration_minutes": minutes,
            "break_glass": true,
        })
    };
    officer
        .get(&case_path(t, &w.case_b))
        .await
        .err(403, "access_grant_required");
    officer
        .post(&requests_path(t), glass(61))
        .await
        .err(422, "validation_failed");
    // Only a security officer, only for an investigation.
    let mut by_engineer = glass(30);
    by_engineer["purpose"] = json!("case-resolution");
    w.engineer
        .post(&requests_path(t), by_engineer)
        .await
        .err(403, "forbidden");

    let g = request(&officer, t, glass(30)).await;
    let gid = id_of(&g);
    assert_eq!(g["state"], "approved", "{g}");
    assert_eq!(g["review_required"], true);
    let case = officer.get(&case_path(t, &w.case_b)).await.ok(200);
    assert_eq!(case["title"], "Other secret");

    // The tenant's admins are told at once.
    let (headers, body) = rx.wait_for("grant.break_glass").await;
    assert!(verify(&secret, &headers, &body));
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["data"]["access_request_id"], gid.as_str());
    assert_eq!(payload["data"]["break_glass"], true);

    // Four eyes: the officer who broke the glass does not review it.
    let review = request_action(t, &gid, "review");
    officer.post(&review, json!({})).await.err(403, "forbidden");
    w.engineer
        .post(&review, json!({}))
        .await
        .err(403, "forbidden");
    let reviewed = second.post(&review, json!({})).await.ok(200);
    assert_eq!(reviewed["review_required"], false);
    assert_eq!(reviewed["reviewed_by"], second.id.as_str());
    second.post(&review, json!({})).await.err(409, "conflict");

    // The access under it is in the tenant's log with the grant id.
    let log = access_log(&w.admin, t).await;
    assert!(
        log.iter().any(|e| e["entry"]["action"] == "case.read"
            && e["entry"]["actor"]["user_id"] == officer.id.as_str()
            && e["entry"]["grant_id"] == gid.as_str()
            && e["entry"]["decision"] == "allow"),
        "{log:?}"
    );
}

#[tokio::test]
async fn grants_nearing_their_end_are_announced_once() {
    // Every grant of an hour is "ending soon" under a two-hour warning window.
    let server = Server::start_with(
        &[
            ("STRONGROOM_WEBHOOK_POLL_INTERVAL_MS", "200"),
            ("STRONGROOM_GRANT_EXPIRY_WARNING_SECS", "7200"),
        ],
        &[],
    );
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let rid = id_of(&request(&w.engineer, t, ask(&w.case_a, &["case_content"], 60)).await);
    w.admin
        .post(&request_action(t, &rid, "approve"), json!({}))
        .await
        .ok(200);
    let expiring = |items: &[Value]| -> usize {
        items
            .iter()
            .filter(|n| n["type"] == "grant.expiring" && n["access_request_id"] == rid.as_str())
            .count()
    };
    let path = format!("/v1/tenants/{t}/notifications?limit=500");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = list_items(&w.admin, &path).await;
        if expiring(&items) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no grant.expiring notice within 20 s: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several more job runs later, still exactly one notice for this grant.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(expiring(&list_items(&w.admin, &path).await), 1);
}
