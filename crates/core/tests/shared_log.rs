//! Two audit logs (two "instances") on one store: one gap-free sequence, one signer at a time,
//! and a verifiable tree. A shared SQLite store exercises the same re-planning as PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use strongroom_core::audit::{AuditLog, AuditRecord, verify_store};
use strongroom_core::clock::SystemClock;
use strongroom_ledger::NoteSigner;
use strongroom_store::{SqliteStore, Store};

async fn open_log(store: &Arc<SqliteStore>, instance: &str) -> Arc<AuditLog> {
    let signer = NoteSigner::from_bytes("test/shared", &[9; 32]).unwrap();
    AuditLog::open(
        Arc::clone(store) as Arc<dyn Store>,
        signer,
        "test/shared".into(),
        Arc::new(SystemClock::default()),
        64,
        instance.into(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_logs_on_one_store_append_one_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let first = open_log(&store, "instance-a").await;
    let second = open_log(&store, "instance-b").await;

    let mut tasks = Vec::new();
    for w in 0..16 {
        let log = Arc::clone(if w % 2 == 0 { &first } else { &second });
        tasks.push(tokio::spawn(async move {
            let mut indexes = Vec::new();
            for i in 0..25 {
                let record = AuditRecord::new("test.append", &format!("w{w}-{i}"));
                indexes.push(log.append(record).await.unwrap());
            }
            indexes
        }));
    }
    let mut indexes = Vec::new();
    for task in tasks {
        indexes.extend(task.await.unwrap());
    }
    indexes.sort_unstable();
    let expected: Vec<u64> = (0..400).collect();
    assert_eq!(indexes, expected, "indexes must be unique and gap-free");
    assert_eq!(store.audit_size().await.unwrap(), 400);

    // The signer (whichever holds the lease) covers every append within a few seconds, and
    // both logs end up showing a checkpoint of the whole tree.
    let (_, checkpoint) = first
        .checkpoint_covering(399, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(checkpoint.size, 400);
    let (_, seen) = second
        .checkpoint_covering(399, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(seen.root, checkpoint.root);

    let verifier = NoteSigner::from_bytes("test/shared", &[9; 32])
        .unwrap()
        .verifier();
    let report = verify_store(store.as_ref(), &verifier).await.unwrap();
    assert_eq!(report.entries, 400);
    assert_eq!(report.root, checkpoint.root);
}
