//! The audit log's signer after a crash: entries appended but not yet under a signed checkpoint
//! when the process died are signed once it is back, without any new append.

use std::time::{Duration, Instant};

use strongroom_ledger::NoteVerifier;

use crate::audit_log::verify_store;
use crate::kit::*;

#[tokio::test]
async fn entries_a_crash_left_unsigned_are_signed_after_a_restart() {
    let mut server = Server::start();
    // Killed before the signer's next checkpoint (it waits 200 ms after an append), and started
    // again while the dead process still holds the signer's lease (on PostgreSQL; on SQLite the
    // sole instance's name is fixed, and the restart takes the lease back at once). A kill that comes too late on
    // a loaded machine (the entry already signed) exercises nothing: append and kill again.
    for attempt in 1.. {
        let admin = server.admin().await;
        create_tenant(&admin, None).await;
        server.kill();
        let mut db = server.db().await;
        let signed_at_kill: i64 = db
            .one(
                "SELECT CAST(COALESCE(MAX(size), 0) AS BIGINT) FROM audit_checkpoints",
                &[],
            )
            .await;
        let stored_at_kill: i64 = db
            .one("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries", &[])
            .await;
        db.close().await;
        if signed_at_kill < stored_at_kill {
            break;
        }
        assert!(
            attempt < 5,
            "five kills all came after the checkpoint ({signed_at_kill} of {stored_at_kill})"
        );
        server = server.restart().await;
    }
    let server = server.restart().await;
    let vkey = server.anon().get("/v1/audit/verifier-key").await.text;
    let verifier = NoteVerifier::parse(vkey.trim()).unwrap();
    let mut db = server.db().await;
    let stored: i64 = db
        .one("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries", &[])
        .await;
    db.close().await;
    let stored = u64::try_from(stored).unwrap();
    // Nothing is appended from here on (the checkpoint is read without a credential).
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let note = server.anon().get("/v1/audit/checkpoint").await.text;
        let signed = verifier.verify_checkpoint(&note).unwrap().size;
        if signed == stored {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the checkpoint stays at {signed} of {stored} entries"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The whole log verifies, every entry under the new checkpoint.
    let report = verify_store(&server);
    assert_eq!(report.entries_verified(), stored);
}

/// Entries are appended but no checkpoint can be saved (a trigger refuses them): the instance
/// says it is not ready within seconds, and ready again once checkpoints are saved.
#[tokio::test]
async fn stalled_checkpoints_make_the_instance_unready() {
    let server = Server::start();
    let admin = server.admin().await;
    let ops = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = || async {
        let r = ops.get(server.ops_url("/healthz")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(health().await.0, 200);

    let mut db = server.db().await;
    if on_postgres() {
        db.execute(
            "CREATE FUNCTION refuse_checkpoint() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'checkpoints refused by the test'; END $$ LANGUAGE plpgsql",
            &[],
        )
        .await;
        db.execute(
            "CREATE TRIGGER refuse_checkpoint BEFORE INSERT ON audit_checkpoints \
             FOR EACH ROW EXECUTE FUNCTION refuse_checkpoint()",
            &[],
        )
        .await;
    } else {
        db.execute(
            "CREATE TRIGGER refuse_checkpoint BEFORE INSERT ON audit_checkpoints \
             BEGIN SELECT RAISE(ABORT, 'checkpoints refused by the test'); END",
            &[],
        )
        .await;
    }
    // Appends still work; their checkpoint never comes.
    create_tenant(&admin, None).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stalled = loop {
        let (status, body) = health().await;
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "still ready: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(stalled.contains("audit checkpoints stalled"), "{stalled}");

    let drop = if on_postgres() {
        "DROP TRIGGER refuse_checkpoint ON audit_checkpoints"
    } else {
        "DROP TRIGGER refuse_checkpoint"
    };
    db.execute(drop, &[]).await;
    db.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while health().await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An older copy of the database put back extends its own latest checkpoint, but not the one
/// already published from the data dir: the server refuses to start on it rather than sign a
/// fork, and says how to go on once the fork has been announced.
#[tokio::test]
async fn a_database_copied_back_over_a_newer_one_is_refused_at_start() {
    if skip_on_postgres("copies the SQLite database file back") {
        return;
    }
    let server = Server::start();
    let admin = server.admin().await;
    create_tenant(&admin, None).await;
    drop(admin);
    assert!(server.stop().await.success());
    let db_path = server.data_dir.join("strongroom.db");
    let old_copy = server.data_dir.join("run/old-copy.db");
    let mut db = Db::sqlite(&server.data_dir).await;
    db.execute(&format!("VACUUM INTO '{}'", old_copy.display()), &[])
        .await;
    db.close().await;

    let server = server.restart().await;
    let admin = server.admin().await;
    create_tenant(&admin, None).await;
    let published = server.data_dir.join("keys/published-checkpoint.note");
    // Wait until the checkpoint published from here covers every entry.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let note = std::fs::read_to_string(&published).unwrap_or_default();
        let size: Option<i64> = note.lines().nth(1).and_then(|l| l.parse().ok());
        let mut db = server.db().await;
        let entries = db
            .int("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries", &[])
            .await;
        db.close().await;
        if size == Some(entries) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the published checkpoint ({size:?}) never reached {entries} entries"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(admin);
    assert!(server.stop().await.success());

    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    std::fs::rename(&old_copy, &db_path).unwrap();
    let err = server.refused_restart();
    assert!(
        err.contains("does not extend the checkpoint last published"),
        "stderr: {err}"
    );
    // The way on, once the fork is announced: the file moved aside.
    std::fs::rename(&published, server.data_dir.join("run/published.old")).unwrap();
    let server = server.restart().await;
    server.admin().await;
}
