//! A batch planned on a stale audit head (another writer appended since): refused whole when its
//! writer cannot re-plan, re-planned at the true head when it can. On PostgreSQL the head row is
//! locked and read first; on SQLite the plan is tried as it is and the entries' key refuses it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{entries, tenant};
use strongroom_store::*;

async fn stale_head_is_planned_again(first: &dyn Store, second: &dyn Store) {
    first
        .commit(&[vec![tenant("ta")]], &entries(0, 3), &no_replan)
        .await
        .unwrap();
    assert_eq!(second.audit_size().await.unwrap(), 3);
    // The second writer still believes the log is empty; refusing to re-plan writes nothing.
    let stale = second
        .commit(&[vec![tenant("tb")]], &entries(0, 2), &no_replan)
        .await
        .expect_err("stale head must be refused");
    assert!(matches!(stale, StoreError::AuditHeadMoved(3)), "{stale:?}");
    assert!(
        second.tenant("tb").await.unwrap().is_none(),
        "the unit leaked"
    );
    assert_eq!(first.audit_size().await.unwrap(), 3);
    // Re-planned: the store hands over the size and the frontier (3 = 2 + 1: the roots of
    // leaves 0..2 and of leaf 2).
    let seen = std::sync::Mutex::new(None);
    let replan = |size: u64, frontier: &[[u8; 32]]| {
        *seen.lock().unwrap() = Some((size, frontier.to_vec()));
        Ok(entries(i64::try_from(size).unwrap(), 2))
    };
    second
        .commit(&[vec![tenant("tb")]], &entries(0, 2), &replan)
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), Some((3, vec![[1; 32], [0; 32]])));
    assert!(second.tenant("tb").await.unwrap().is_some());
    assert_eq!(first.audit_size().await.unwrap(), 5);
    let idx: Vec<i64> = first
        .audit_entries(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.idx)
        .collect();
    assert_eq!(idx, [0, 1, 2, 3, 4]);
    // A plan on the current head goes in as it is.
    second
        .commit(&[vec![tenant("tc")]], &entries(5, 1), &no_replan)
        .await
        .unwrap();
    assert_eq!(first.audit_size().await.unwrap(), 6);
}

/// Two stores on one file stand for two processes sharing the database.
#[tokio::test]
async fn a_batch_planned_on_a_stale_head_is_planned_again_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .unwrap();
    let second = SqliteStore::open(&path, Duration::from_secs(5))
        .await
        .unwrap();
    stale_head_is_planned_again(&first, &second).await;
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn a_batch_planned_on_a_stale_head_is_planned_again_on_postgres() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let first = common::open(&schema).await;
    let second = common::open(&schema).await;
    stale_head_is_planned_again(&first, &second).await;
    first.close().await;
    second.close().await;
    common::drop_schema(&admin, &schema).await;
}
