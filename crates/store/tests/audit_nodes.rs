//! Reading the audit tree's nodes back, as proofs (`audit_nodes`) and whole-log verification
//! (`audit_scan`) do, from the rows of the entries that complete them: on SQLite, and on
//! PostgreSQL when it is reachable.
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

    // An empty scan, and scans from an offset: entries with their tenants, and by level the
    // nodes their rows hold (those their leaves complete).
    let scan = store.audit_scan(0, 0, digest).await.unwrap();
    assert_eq!(scan, AuditScan::default());
    let rows = log().entries;
    for (start, limit) in [(100, 10), (595, 10), (0, 600), (1, 598), (255, 2), (8, 8)] {
        let scan = store.audit_scan(start, limit, digest).await.unwrap();
        let end = (start + u64::from(limit)).min(LEAVES);
        let read = &rows[start as usize..end as usize];
        assert_eq!(
            (scan.entries, scan.entry_bytes),
            scanned(read),
            "{start}+{limit}"
        );
        assert_eq!(scan.nodes, completed_by(start..end), "{start}+{limit}");
    }
    let scan = store.audit_scan(100, 10, digest).await.unwrap();
    assert!(scan.entries.iter().any(|entry| entry.digest.is_none()));
    assert_eq!(
        store.audit_scan(LEAVES, 10, digest).await.unwrap(),
        AuditScan::default()
    );
}

/// By level, the nodes the leaves `leaves` complete: node `(l, i)` is completed by leaf
/// `(i + 1) * 2^l - 1`.
fn completed_by(leaves: std::ops::Range<u64>) -> Vec<LevelNodes> {
    let mut levels: Vec<LevelNodes> = Vec::new();
    for leaf in leaves {
        for level in 0..=leaf.trailing_ones() as u8 {
            if levels.len() <= usize::from(level) {
                levels.resize_with(usize::from(level) + 1, Vec::new);
            }
            let index = leaf >> level;
            levels[usize::from(level)].push((index, hash_of(level, index)));
        }
    }
    levels
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
async fn nodes_are_read_back_by_id_and_in_scans_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sqlite(&dir.path().join("db")).await;
    check(&store).await;
    store.close().await;
}

#[tokio::test]
async fn nodes_are_read_back_by_id_and_in_scans_on_postgres() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let store = common::open(&schema).await;
    check(&store).await;
    common::drop_schema(&admin, &schema).await;
}

/// Rewinds a store to the layout before migration 11 (every node a row of `audit_nodes`, leaf
/// hashes as level 0), so that re-opening it runs migrations 11 and 12 on real data.
const BEFORE_LEAF_HASH_MIGRATION: [&str; 4] = [
    "ALTER TABLE audit_entries DROP COLUMN leaf_hash",
    "ALTER TABLE audit_entries DROP COLUMN subtree_roots",
    "CREATE TABLE audit_nodes (level BIGINT NOT NULL, idx BIGINT NOT NULL, \
     hash BYTEA NOT NULL, PRIMARY KEY (level, idx))",
    "DELETE FROM _sqlx_migrations WHERE version IN (11, 12)",
];

/// The rows of `audit_nodes` as they were before migration 11, as one statement.
fn old_node_rows() -> String {
    let rows: Vec<String> = log()
        .nodes
        .iter()
        .map(|(key, hash)| {
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            format!("({}, {}, decode('{hex}', 'hex'))", key.level, key.index)
        })
        .collect();
    format!(
        "INSERT INTO audit_nodes (level, idx, hash) VALUES {}",
        rows.join(", ")
    )
}

/// After the migrations: every node is back, now in the row of the entry that completes it, and
/// the old table is gone.
async fn check_migrated(store: &dyn Store) {
    let ids: Vec<NodeKey> = log().nodes.iter().map(|(key, _)| *key).collect();
    let found = store.audit_nodes(&ids).await.unwrap();
    for (id, hash) in ids.iter().zip(found) {
        assert_eq!(
            hash,
            Some(hash_of(id.level, id.index)),
            "node ({}, {})",
            id.level,
            id.index
        );
    }
    let scan = store.audit_scan(0, 700, digest).await.unwrap();
    assert_eq!(scan.entries.len(), 600);
    assert_eq!(scan.nodes, completed_by(0..LEAVES));
}

#[tokio::test]
async fn tree_nodes_move_into_their_entries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open_sqlite(&path).await;
    store.commit(&[], &log(), &no_replan).await.unwrap();
    store.close().await;

    let raw = raw_sqlite(&path).await;
    for sql in BEFORE_LEAF_HASH_MIGRATION {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    // SQLite has no `decode`; its blob literals say the same.
    let insert = old_node_rows();
    let insert = insert.replace("decode('", "X'").replace("', 'hex')", "'");
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    let store = open_sqlite(&path).await;
    check_migrated(&store).await;
    store.close().await;
    let raw = raw_sqlite(&path).await;
    let (left,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'audit_nodes'")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(left, 0);
    raw.close().await;
}

#[tokio::test]
async fn tree_nodes_move_into_their_entries_on_postgres() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let store = common::open(&schema).await;
    store.commit(&[], &log(), &no_replan).await.unwrap();
    drop(store);

    // As the administrator, whom row-level security does not bind; the table goes back to the
    // application role, which owns the schema and runs the migrations.
    let in_schema = |sql: &str| {
        sql.replace("audit_nodes", &format!("{schema}.audit_nodes"))
            .replace("audit_entries", &format!("{schema}.audit_entries"))
            .replace("_sqlx_migrations", &format!("{schema}._sqlx_migrations"))
    };
    let owner = format!("ALTER TABLE audit_nodes OWNER TO {}", common::APP_ROLE);
    for sql in BEFORE_LEAF_HASH_MIGRATION
        .iter()
        .map(|sql| sql.to_string())
        .chain([old_node_rows(), owner])
    {
        sqlx::query(sqlx::AssertSqlSafe(in_schema(&sql)))
            .execute(&admin)
            .await
            .unwrap();
    }
    let store = common::open(&schema).await;
    check_migrated(&store).await;
    let (left,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'audit_nodes'",
    )
    .bind(&schema)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(left, 0);
    drop(store);
    common::drop_schema(&admin, &schema).await;
}

/// The nodes live in the entry rows: an append whose entries and nodes do not pair up is refused
/// whole, and nothing of it is stored.
#[tokio::test]
async fn appends_whose_leaves_and_entries_differ_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sqlite(&dir.path().join("db")).await;
    let mut no_leaf = log();
    no_leaf
        .nodes
        .retain(|(key, _)| !(key.level == 0 && key.index == 17));
    let mut no_root = log();
    no_root
        .nodes
        .retain(|(key, _)| !(key.level == 2 && key.index == 9));
    let mut no_entry = log();
    no_entry.entries.truncate(599);
    let mut stray_node = log();
    stray_node.nodes.push((
        NodeKey {
            level: 1,
            index: 300,
        },
        hash_of(1, 300),
    ));
    for append in [no_leaf, no_root, no_entry, stray_node] {
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
