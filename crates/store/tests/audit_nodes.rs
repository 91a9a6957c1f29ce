//! Reading the audit tree's nodes back, as proofs (`audit_nodes`) and whole-log verification
//! (`audit_scan`) do: on SQLite, and on PostgreSQL when it is reachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use strongroom_store::*;

/// Leaves in the test log: level 0 holds 600 nodes, level 3 holds 75, level 9 holds 1.
const LEAVES: u64 = 600;

/// A hash that names its node, so that a lookup returning another node's hash is caught.
fn hash_of(level: u8, index: u64) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash[0] = level;
    hash[1..9].copy_from_slice(&index.to_be_bytes());
    hash
}

/// Entries `0..LEAVES` and every node they complete.
fn log() -> AuditAppend {
    let mut nodes = Vec::new();
    for size in 1..=LEAVES {
        for level in 0u8..63 {
            if size % (1 << level) != 0 {
                break;
            }
            let index = (size >> level) - 1;
            nodes.push((NodeKey { level, index }, hash_of(level, index)));
        }
    }
    AuditAppend {
        entries: (0..LEAVES)
            .map(|idx| AuditEntryRow {
                idx: i64::try_from(idx).unwrap(),
                tenant_id: (idx % 3 == 0).then(|| format!("tenant-{}", idx % 2)),
                entry: format!("entry-{idx}").into_bytes(),
            })
            .collect(),
        nodes,
    }
}

/// Names the entry it was given by its index, tenant and bytes, and declines some, as a verifier
/// does with entries it must read whole.
fn digest(entry: AuditEntryRef<'_>) -> Option<[u8; 32]> {
    if entry.tenant_id == Some("tenant-1") {
        return None;
    }
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&entry.idx.to_be_bytes());
    digest[8] = u8::from(entry.tenant_id.is_some());
    let bytes = entry.entry.len().min(23);
    digest[9..9 + bytes].copy_from_slice(&entry.entry[..bytes]);
    Some(digest)
}

/// What a scan of `rows` should list.
fn scanned(rows: &[AuditEntryRow]) -> (Vec<ScannedEntry>, u64) {
    let entries = rows
        .iter()
        .map(|row| ScannedEntry {
            idx: row.idx,
            digest: digest(row.as_entry_ref()),
        })
        .collect();
    let bytes = rows.iter().map(|row| row.entry.len() as u64).sum();
    (entries, bytes)
}

fn stored(level: u8, index: u64) -> bool {
    (index + 1) << level <= LEAVES
}

async fn check(store: &dyn Store) {
    let results = store.commit(&[], &log(), &no_replan).await.unwrap();
    assert!(results.is_empty());

    // More ids than one statement takes, out of order, with repeats and with absent nodes (past
    // the tree's edge, and at a level the tree has not reached).
    let mut ids: Vec<NodeKey> = (0..LEAVES)
        .rev()
        .step_by(2)
        .map(|index| NodeKey { level: 0, index })
        .collect();
    ids.extend([
        NodeKey {
            level: 3,
            index: 74,
        },
        NodeKey {
            level: 3,
            index: 75,
        },
        NodeKey { level: 9, index: 0 },
        NodeKey {
            level: 10,
            index: 0,
        },
        NodeKey {
            level: 0,
            index: 599,
        },
        NodeKey {
            level: 0,
            index: 1 << 40,
        },
    ]);
    assert!(ids.len() > 256);
    let found = store.audit_nodes(&ids).await.unwrap();
    assert_eq!(found.len(), ids.len());
    for (id, hash) in ids.iter().zip(&found) {
        let want = stored(id.level, id.index).then(|| hash_of(id.level, id.index));
        assert_eq!(*hash, want, "node ({}, {})", id.level, id.index);
    }
    assert!(store.audit_nodes(&[]).await.unwrap().is_empty());

    // Ranges, in index order, bounded on both sides; absent nodes are simply not listed.
    let range = |level, first, last| NodeRange { level, first, last };
    let ranges = [
        range(0, 10, 20),
        range(3, 70, 1_000),
        range(10, 0, 5),
        range(0, 20, 10),
    ];
    let scan = store.audit_scan(0, 0, &ranges, digest).await.unwrap();
    assert!(scan.entries.is_empty());
    let want: Vec<(u64, [u8; 32])> = (10..=20).map(|i| (i, hash_of(0, i))).collect();
    assert_eq!(scan.nodes[0], want);
    let want: Vec<(u64, [u8; 32])> = (70..75).map(|i| (i, hash_of(3, i))).collect();
    assert_eq!(scan.nodes[1], want);
    assert!(scan.nodes[2].is_empty());
    assert!(scan.nodes[3].is_empty());
    assert_eq!(scan.nodes.len(), 4);

    // A scan: entries with their tenants from an offset, and each range's nodes in its own list.
    let ranges = [range(0, 100, 109), range(3, 70, 80), range(10, 0, 0)];
    let scan = store.audit_scan(100, 10, &ranges, digest).await.unwrap();
    let rows = log().entries;
    let (want, bytes) = scanned(&rows[100..110]);
    assert_eq!(scan.entries, want);
    assert_eq!(scan.entry_bytes, bytes);
    assert!(scan.entries.iter().any(|entry| entry.digest.is_none()));
    assert_eq!(
        scan.nodes,
        vec![
            (100..=109).map(|i| (i, hash_of(0, i))).collect::<Vec<_>>(),
            (70..75).map(|i| (i, hash_of(3, i))).collect(),
            Vec::new(),
        ]
    );
    let tail = store.audit_scan(595, 10, &[], digest).await.unwrap();
    assert_eq!(tail.entries, scanned(&rows[595..]).0);
    assert!(tail.nodes.is_empty());

    // Long enough to be read in two halves: every entry once, in order, and the leaf hashes of
    // both halves; a level-0 range reaching past the entries read is read apart, whole.
    let ranges = [range(0, 0, 599), range(0, 550, 650), range(2, 0, 1_000)];
    let scan = store.audit_scan(0, 600, &ranges, digest).await.unwrap();
    assert_eq!((scan.entries, scan.entry_bytes), scanned(&rows));
    assert_eq!(
        scan.nodes,
        vec![
            (0..LEAVES).map(|i| (i, hash_of(0, i))).collect::<Vec<_>>(),
            (550..LEAVES).map(|i| (i, hash_of(0, i))).collect(),
            (0..150).map(|i| (i, hash_of(2, i))).collect(),
        ]
    );
    let scan = store.audit_scan(1, 598, &[], digest).await.unwrap();
    assert_eq!(scan.entries, scanned(&rows[1..599]).0);
    assert!(
        store
            .audit_scan(LEAVES, 10, &[], digest)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

async fn open_sqlite(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, Duration::from_secs(5))
        .await
        .unwrap()
}

/// The same database beside the store, for what its API does not do (rewinding a migration).
async fn raw_sqlite(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn nodes_are_read_back_by_id_and_by_range_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sqlite(&dir.path().join("db")).await;
    check(&store).await;
    store.close().await;
}

#[tokio::test]
async fn nodes_are_read_back_by_id_and_by_range_on_postgres() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let store = common::open(&schema).await;
    check(&store).await;
    common::drop_schema(&admin, &schema).await;
}

/// Rewinds a store to the layout before migration 11 (leaf hashes as level-0 rows of
/// `audit_nodes`), so that re-opening it runs that migration on real data.
const BEFORE_LEAF_HASH_MIGRATION: [&str; 3] = [
    "INSERT INTO audit_nodes (level, idx, hash) SELECT 0, idx, leaf_hash FROM audit_entries",
    "ALTER TABLE audit_entries DROP COLUMN leaf_hash",
    "DELETE FROM _sqlx_migrations WHERE version = 11",
];

/// After the migration: every leaf hash is back, now in its entry's row, and none is left behind.
async fn check_migrated(store: &dyn Store) {
    let ids: Vec<NodeKey> = (0..LEAVES)
        .map(|index| NodeKey { level: 0, index })
        .collect();
    let found = store.audit_nodes(&ids).await.unwrap();
    for (id, hash) in ids.iter().zip(found) {
        assert_eq!(hash, Some(hash_of(0, id.index)), "leaf {}", id.index);
    }
    let upper = store
        .audit_nodes(&[NodeKey { level: 9, index: 0 }])
        .await
        .unwrap();
    assert_eq!(upper, vec![Some(hash_of(9, 0))]);
    let scan = store
        .audit_scan(
            0,
            700,
            &[NodeRange {
                level: 0,
                first: 0,
                last: 699,
            }],
            digest,
        )
        .await
        .unwrap();
    assert_eq!(scan.entries.len(), 600);
    let want: Vec<(u64, [u8; 32])> = (0..LEAVES).map(|i| (i, hash_of(0, i))).collect();
    assert_eq!(scan.nodes, vec![want]);
}

#[tokio::test]
async fn leaf_hashes_move_into_their_entries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open_sqlite(&path).await;
    store.commit(&[], &log(), &no_replan).await.unwrap();
    store.close().await;

    let raw = raw_sqlite(&path).await;
    for sql in BEFORE_LEAF_HASH_MIGRATION {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    let (old_leaves,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_nodes WHERE level = 0")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(old_leaves, 600);
    raw.close().await;

    let store = open_sqlite(&path).await;
    check_migrated(&store).await;
    store.close().await;
    let raw = raw_sqlite(&path).await;
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_nodes WHERE level = 0")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(left, 0);
    raw.close().await;
}

#[tokio::test]
async fn leaf_hashes_move_into_their_entries_on_postgres() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let store = common::open(&schema).await;
    store.commit(&[], &log(), &no_replan).await.unwrap();
    drop(store);

    // As the administrator, whom row-level security does not bind.
    for sql in BEFORE_LEAF_HASH_MIGRATION {
        let sql = sql
            .replace("audit_nodes", &format!("{schema}.audit_nodes"))
            .replace("audit_entries", &format!("{schema}.audit_entries"))
            .replace("_sqlx_migrations", &format!("{schema}._sqlx_migrations"));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    let store = common::open(&schema).await;
    check_migrated(&store).await;
    let (left,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {schema}.audit_nodes WHERE level = 0"
    )))
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(left, 0);
    drop(store);
    common::drop_schema(&admin, &schema).await;
}

/// Level 0 has no table of its own: an append whose entries and leaf hashes do not pair up is
/// refused whole, and nothing of it is stored.
#[tokio::test]
async fn appends_whose_leaves_and_entries_differ_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sqlite(&dir.path().join("db")).await;
    let mut no_leaf = log();
    no_leaf
        .nodes
        .retain(|(key, _)| !(key.level == 0 && key.index == 17));
    let mut no_entry = log();
    no_entry.entries.truncate(599);
    for append in [no_leaf, no_entry] {
        let refused = store.commit(&[], &append, &no_replan).await;
        assert!(
            matches!(refused, Err(StoreError::Corrupt(_))),
            "{refused:?}"
        );
        assert_eq!(store.audit_size().await.unwrap(), 0);
    }
    store.commit(&[], &log(), &no_replan).await.unwrap();
    assert_eq!(store.audit_size().await.unwrap(), LEAVES);
    store.close().await;
}
