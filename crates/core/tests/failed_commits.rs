//! A commit that fails stores nothing, and the batch that gathered behind it (planned on the tree
//! the failed batch would have made) is planned again where the log really ends: no gap, no
//! index given twice, and the tree verifies. The failure is real: a trigger, added and dropped
//! from another connection while writers append, makes SQLite refuse every audit row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use strongroom_core::audit::{AuditLog, AuditRecord, verify_store};
use strongroom_core::clock::SystemClock;
use strongroom_ledger::NoteSigner;
use strongroom_store::{SqliteStore, Store};

const WRITERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_behind_a_failed_commit_land_where_the_log_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Arc::new(
        SqliteStore::open(&path, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let signer = NoteSigner::from_bytes("test/failed", &[7; 32]).unwrap();
    let verifier = signer.verifier();
    let log = AuditLog::open(
        Arc::clone(&store) as Arc<dyn Store>,
        signer,
        "test/failed".into(),
        Arc::new(SystemClock::default()),
        64,
        "instance".into(),
        None,
    )
    .await
    .unwrap();
    let other = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();

    // Writers append until the refusal has come and gone and each has landed a few more.
    let recovered = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (log, recovered) = (Arc::clone(&log), Arc::clone(&recovered));
        tasks.push(tokio::spawn(async move {
            let (mut landed, mut refused, mut after) = (Vec::new(), 0, 0);
            for i in 0.. {
                let record = AuditRecord::new("test.append", &format!("w{w}-{i}"));
                match log.append(record).await {
                    Ok(index) => {
                        landed.push(index);
                        if recovered.load(Ordering::SeqCst) {
                            after += 1;
                        }
                    }
                    Err(_) => refused += 1,
                }
                if after >= 20 {
                    break;
                }
            }
            (landed, refused)
        }));
    }
    while log.head().size < 200 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sqlx::query(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&other)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sqlx::query("DROP TRIGGER refuse_audit")
        .execute(&other)
        .await
        .unwrap();
    recovered.store(true, Ordering::SeqCst);

    let (mut landed, mut refused) = (Vec::new(), 0);
    for task in tasks {
        let (indexes, failures) = task.await.unwrap();
        landed.extend(indexes);
        refused += failures;
    }
    assert!(refused > 0, "the trigger refused nothing");
    landed.sort_unstable();
    let size = store.audit_size().await.unwrap();
    let first_wrong = (0..).zip(&landed).find(|&(want, got)| want != *got);
    assert_eq!(
        first_wrong, None,
        "indexes must be unique and gap-free (expected, given)"
    );
    assert_eq!(
        landed.len() as u64,
        size,
        "every stored entry was acknowledged"
    );

    let (_, checkpoint) = log
        .checkpoint_covering(size - 1, Duration::from_secs(5))
        .await
        .unwrap();
    let report = verify_store(store.as_ref(), &verifier).await.unwrap();
    assert_eq!(report.entries, size);
    assert_eq!(checkpoint.size, size);
    assert_eq!(report.root, checkpoint.root);
    other.close().await;
}
