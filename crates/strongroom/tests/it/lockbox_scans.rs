//! Operator access ending while a file is scanned: what was judged on a grant commits only if the
//! grant still stands.

use serde_json::{Value, json};

use crate::kit::*;
use crate::lockbox::{ENV, access_log, ask, request, request_action, world};

/// A clamd that says when a file has reached it and answers "clean" only when released: a scan
/// held open for as long as a test needs to change something during it.
struct HeldClamd {
    address: String,
    arrived: tokio::sync::mpsc::UnboundedReceiver<()>,
    release: std::sync::Arc<tokio::sync::Semaphore>,
}

impl HeldClamd {
    async fn start() -> HeldClamd {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("clamd:{}", listener.local_addr().unwrap());
        let (tell, arrived) = tokio::sync::mpsc::unbounded_channel();
        let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let held = std::sync::Arc::clone(&release);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (tell, held) = (tell.clone(), std::sync::Arc::clone(&held));
                tokio::spawn(async move {
                    let mut command = [0u8; 10];
                    if stream.read_exact(&mut command).await.is_err() {
                        return;
                    }
                    loop {
                        let mut len = [0u8; 4];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let len = u32::from_be_bytes(len) as usize;
                        if len == 0 {
                            break;
                        }
                        let mut chunk = vec![0u8; len];
                        if stream.read_exact(&mut chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = tell.send(());
                    if let Ok(permit) = held.acquire().await {
                        permit.forget();
                        let _ = stream.write_all(b"stream: OK\0").await;
                    }
                });
            }
        });
        HeldClamd {
            address,
            arrived,
            release,
        }
    }

    /// Runs `request`; once its file is being scanned, runs `meanwhile`, then lets the scan end.
    async fn during_scan<T>(
        &mut self,
        request: impl std::future::Future<Output = T>,
        meanwhile: impl std::future::Future<Output = ()>,
    ) -> T {
        let (answer, ()) = tokio::join!(request, async {
            self.arrived.recv().await.unwrap();
            meanwhile.await;
            self.release.add_permits(1);
        });
        answer
    }
}

/// A server whose scans go to a held clamd, and the lockbox world on it.
async fn scanned_world() -> (HeldClamd, Server, crate::lockbox::World) {
    let clamd = HeldClamd::start().await;
    let mut env = ENV.to_vec();
    env.push(("STRONGROOM_ATTACHMENT_SCANNER", &clamd.address));
    let server = Server::start_with(&env, &[]);
    let w = world(&server, json!({})).await;
    (clamd, server, w)
}

/// A grant revoked while a file is being scanned ends that upload and that download: what was
/// judged on the grant commits only if the grant still stands.
#[tokio::test]
async fn a_grant_revoked_during_a_scan_ends_the_upload_and_the_download() {
    let (mut clamd, _server, w) = scanned_world().await;
    let t = w.tenant.clone();
    let files = attachments_path(&t, &w.case_a);
    let kept = clamd
        .during_scan(
            add_attachment(&w.admin, &t, &w.case_a, "kept.log", b"kept"),
            async {},
        )
        .await;
    let kept = id_of(&kept);

    let (admin, engineer, case) = (&w.admin, &w.engineer, w.case_a.as_str());
    let granted = async || {
        let rid = id_of(&request(engineer, &t, ask(case, &["case_content"], 60)).await);
        admin
            .post(&request_action(&t, &rid, "approve"), json!({}))
            .await
            .ok(200);
        rid
    };
    let revoke = async |rid: String| {
        admin
            .post(&request_action(&t, &rid, "revoke"), json!({}))
            .await
            .ok(200);
    };

    let rid = granted().await;
    let body = json!({"name": "late.log", "media_type": "text/plain", "content": "bGF0ZQ=="});
    let upload = clamd
        .during_scan(engineer.post(&files, body), revoke(rid))
        .await;
    upload.err(409, "conflict");

    let rid = granted().await;
    let content = format!("{files}/{kept}/content");
    let download = clamd
        .during_scan(engineer.get_bytes(&content), revoke(rid))
        .await;
    assert_eq!(
        download.0.as_u16(),
        409,
        "the file left after its grant ended"
    );

    let names: Vec<Value> = list_items(&w.admin, &files)
        .await
        .into_iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, [json!("kept.log")]);
    let log = access_log(&w.admin, &t).await;
    let not_applied = |action: &str| {
        log.iter()
            .filter(|e| e["entry"]["action"] == action && e["entry"]["decision"] == "deny")
            .count()
    };
    assert_eq!(not_applied("attachment.create_not_applied"), 1);
    assert_eq!(not_applied("attachment.download_not_applied"), 1);
}

/// A grant that reaches its end while a file is scanned ends that upload too: the commit checks
/// the grant open when it is assembled, after the scan, not only that nobody revoked it.
#[tokio::test]
async fn a_grant_that_ends_during_a_scan_ends_the_upload() {
    let (mut clamd, _server, w) = scanned_world().await;
    let t = w.tenant.clone();
    let files = attachments_path(&t, &w.case_a);

    // The shortest grant there is: one minute.
    let rid = id_of(&request(&w.engineer, &t, ask(&w.case_a, &["case_content"], 1)).await);
    let grant = w
        .admin
        .post(&request_action(&t, &rid, "approve"), json!({}))
        .await
        .ok(200);
    let ends_at = time::OffsetDateTime::parse(
        grant["ends_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until_end = || {
        std::time::Duration::try_from(ends_at - time::OffsetDateTime::now_utc()).unwrap_or_default()
    };
    // Sent with ten seconds of the grant left (time for the gate on a loaded machine), scanned
    // until it has ended.
    tokio::time::sleep(until_end().saturating_sub(std::time::Duration::from_secs(10))).await;
    let body = json!({"name": "late.log", "media_type": "text/plain", "content": "bGF0ZQ=="});
    let upload = clamd
        .during_scan(w.engineer.post(&files, body), async {
            tokio::time::sleep(until_end() + std::time::Duration::from_secs(1)).await;
        })
        .await;
    upload.err(409, "conflict");

    assert!(list_items(&w.admin, &files).await.is_empty());
    let log = access_log(&w.admin, &t).await;
    let not_applied: Vec<&Value> = log
        .iter()
        .filter(|e| e["entry"]["action"] == "attachment.create_not_applied")
        .collect();
    assert_eq!(not_applied.len(), 1, "{log:?}");
    assert_eq!(not_applied[0]["entry"]["grant_id"], rid.as_str());
}
