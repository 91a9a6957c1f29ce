//! SQLite: a group commit's pages reach the database file shortly after it, copied by the
//! checkpointer the commit nudged, neither by the writer's own checkpoint (which waits for
//! `wal_autocheckpoint` pages) nor by the checkpointer's idle pass (every few seconds).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{entries, tenant};
use strongroom_store::*;

/// Well under the idle pass's interval, well over a nudged pass on a loaded machine.
const DEADLINE: Duration = Duration::from_millis(1500);

/// `n` entries of 1 KiB from `start`: about a quarter of a page each, so a batch of 400 adds
/// ~100 pages, far below the writer's own checkpoint threshold (1,000 pages).
fn kilobyte_entries(start: i64, n: i64) -> AuditAppend {
    let mut append = entries(start, n);
    for entry in &mut append.entries {
        entry.entry = vec![0x5a; 1024];
    }
    append
}

/// Waits until the database file (not its WAL) is at least `bytes` long.
async fn file_reaches(path: &Path, bytes: u64) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) >= bytes {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test]
async fn each_group_commit_is_checkpointed_soon_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .unwrap();
    let mut size = 0;
    for (round, tenant_id) in ["ta", "tb", "tc"].into_iter().enumerate() {
        let before = std::fs::metadata(&path).unwrap().len();
        store
            .commit(
                &[vec![tenant(tenant_id)]],
                &kilobyte_entries(size, 400),
                &no_replan,
            )
            .await
            .unwrap();
        size += 400;
        // 400 KiB of entries: the file grows by at least that once the pages are copied.
        let took = file_reaches(&path, before + 400 * 1024).await;
        assert!(
            took.is_some(),
            "round {round}: the commit's pages were not checkpointed within {DEADLINE:?}"
        );
    }
    assert_eq!(store.audit_size().await.unwrap(), 1200);
    store.close().await;
}
