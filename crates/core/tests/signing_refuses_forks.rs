//! The log never signs a checkpoint that no consistency proof joins to the last one it signed.
//! Here the tree behind the log is rewritten above the signed part only: the nodes covering the
//! signed leaves still fold to the signed root, but the node covering old and new leaves (and
//! with it the new root) was replaced, and the checkpoint that had covered it removed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use strongroom_core::audit::{AuditLog, AuditRecord};
use strongroom_core::clock::SystemClock;
use strongroom_ledger::NoteSigner;
use strongroom_store::{SqliteStore, Store};

const ORIGIN: &str = "test/forks";

async fn open_log(store: &Arc<SqliteStore>) -> Result<Arc<AuditLog>, String> {
    let signer = NoteSigner::from_bytes(ORIGIN, &[5; 32]).unwrap();
    AuditLog::open(
        Arc::clone(store) as Arc<dyn Store>,
        signer,
        ORIGIN.into(),
        Arc::new(SystemClock::default()),
        64,
        "instance".into(),
        None,
    )
    .await
    .map_err(|e| e.to_string())
}

async fn append_until(log: &AuditLog, size: u64) {
    while log.head().size < size {
        log.append(AuditRecord::new("test.append", "r"))
            .await
            .unwrap();
    }
    let (_, signed) = log
        .checkpoint_covering(size - 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(signed.size, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_rewritten_above_the_signed_part_is_never_signed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Arc::new(
        SqliteStore::open(&path, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let log = open_log(&store).await.unwrap();
    append_until(&log, 6).await;
    append_until(&log, 8).await;
    drop(log);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Row 7 holds the nodes its leaf completes: (1,3), (2,1) and (3,0), the root of 8 leaves.
    // Replace (3,0) and forget the checkpoint of size 8; the one of size 6 stays.
    let other = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let rewritten = sqlx::query(
        "UPDATE audit_entries SET subtree_roots = \
         CAST(substr(subtree_roots, 1, 64) || zeroblob(32) AS BLOB) WHERE idx = 7",
    )
    .execute(&other)
    .await
    .unwrap();
    assert_eq!(rewritten.rows_affected(), 1);
    sqlx::query("DELETE FROM audit_checkpoints WHERE size > 6")
        .execute(&other)
        .await
        .unwrap();
    let kept: (i64,) = sqlx::query_as("SELECT MAX(size) FROM audit_checkpoints")
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!(kept.0, 6);
    other.close().await;

    // The nodes below size 6 still give the signed root; only a consistency proof from 6 to 8
    // shows that the stored root of 8 does not extend it.
    let refused = open_log(&store)
        .await
        .err()
        .expect("opened on a forked tree");
    assert!(refused.contains("internal"), "{refused}");
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(
        latest.size, 6,
        "a checkpoint was signed over the rewritten tree"
    );
}
