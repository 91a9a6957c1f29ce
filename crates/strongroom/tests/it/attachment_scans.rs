//! The malware scan of files: refusals recorded and nothing stored, no verdict fails closed, and
//! a real ClamAV daemon judging uploads and downloads (a signature learnt after an upload stops
//! the file's next download).

use std::time::{Duration, Instant};

use crate::attachments::{eicar, stored_files, upload, world};
use crate::kit::*;

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
