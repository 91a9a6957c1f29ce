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
        None,
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

/// An instance whose head lags the store (it follows the signer's checkpoints every half second)
/// still answers proofs up to the store's size: a client may hold a checkpoint another instance
/// has just signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_behind_the_store_answers_proofs_up_to_its_size() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use strongroom_ledger::{Hash, verify_consistency, verify_inclusion};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let writer = open_log(&store, "instance-a").await;
    let behind = open_log(&store, "instance-b").await;
    for i in 0..10 {
        let record = AuditRecord::new("test.append", &format!("r{i}"));
        writer.append(record).await.unwrap();
    }
    let size = store.audit_size().await.unwrap();
    let root = writer.head().root;
    // The signer waits 200 ms to gather appends, so nothing covers these yet.
    assert!(
        behind.head().size < size,
        "the second instance is not behind: {} of {size}",
        behind.head().size
    );
    let hash = |b64: &String| -> Hash { STANDARD.decode(b64).unwrap().try_into().unwrap() };
    let inclusion = behind.inclusion_proof(size - 1, size).await.unwrap();
    let path: Vec<Hash> = inclusion.hashes.iter().map(hash).collect();
    verify_inclusion(size - 1, size, &hash(&inclusion.leaf_hash), &path, &root).unwrap();
    let consistency = behind.consistency_proof(1, size).await.unwrap();
    let path: Vec<Hash> = consistency.hashes.iter().map(hash).collect();
    let first = writer.inclusion_proof(0, 1).await.unwrap();
    verify_consistency(1, size, &hash(&first.leaf_hash), &root, &path).unwrap();
    // Beyond the store's size is still refused.
    assert!(behind.inclusion_proof(0, size + 1).await.is_err());
}
