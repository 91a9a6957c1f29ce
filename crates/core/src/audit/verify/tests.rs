//! `verify_store` on hand-built logs in a real SQLite store, one test per failure kind.

use strongroom_ledger::{NoteSigner, node_hash};
use strongroom_store::{AuditAppend, AuditEntryRow, CheckpointRow, NodeKey, SqliteStore};

use super::*;
use crate::audit::entry::{AuditRecord, encode};

pub(in crate::audit) const ORIGIN: &str = "test.local/audit";

pub(in crate::audit) fn entry(index: u64) -> AuditEntryRow {
    let mut r = AuditRecord::new("contact.read", &format!("req-{index}"));
    r.tenant_id = index.is_multiple_of(3).then(|| format!("t{}", index % 2));
    AuditEntryRow {
        idx: i64::try_from(index).unwrap(),
        tenant_id: r.tenant_id.clone(),
        entry: encode(&r, index, "2026-01-01T00:00:00.000Z").unwrap(),
    }
}

/// A log as the server writes it: entries, every completed node, and the roots at each size.
pub(in crate::audit) struct Log {
    pub(in crate::audit) entries: Vec<AuditEntryRow>,
    pub(in crate::audit) nodes: Vec<(NodeKey, Hash)>,
    pub(in crate::audit) roots: Vec<Hash>,
}

pub(in crate::audit) fn log_of(entries: Vec<AuditEntryRow>) -> Log {
    let mut f = Frontier::new();
    let mut nodes = Vec::new();
    let mut roots = vec![f.root()];
    for e in &entries {
        for (id, h) in f.append(leaf_hash(&e.entry)).unwrap() {
            nodes.push((
                NodeKey {
                    level: id.level,
                    index: id.index,
                },
                h,
            ));
        }
        roots.push(f.root());
    }
    Log {
        entries,
        nodes,
        roots,
    }
}

pub(in crate::audit) fn log(n: u64) -> Log {
    log_of((0..n).map(entry).collect())
}

pub(in crate::audit) fn signer() -> NoteSigner {
    NoteSigner::from_bytes(ORIGIN, &[7; 32]).unwrap()
}

fn note(signer: &NoteSigner, origin: &str, size: u64, root: Hash) -> String {
    let body = Checkpoint {
        origin: origin.into(),
        size,
        root,
    }
    .body();
    signer.sign(&body).unwrap()
}

pub(in crate::audit) async fn store_of(
    entries: &[AuditEntryRow],
    nodes: &[(NodeKey, Hash)],
    checkpoints: &[(u64, String)],
) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
        .await
        .unwrap();
    // Nodes are kept in the rows of the entries that complete them: those of absent entries
    // have nowhere to go.
    let present: std::collections::HashSet<i64> = entries.iter().map(|e| e.idx).collect();
    let audit = AuditAppend {
        entries: entries.to_vec(),
        nodes: nodes
            .iter()
            .filter(|(key, _)| present.contains(&completing_leaf(*key)))
            .copied()
            .collect(),
    };
    store
        .commit(&[], &audit, &strongroom_store::no_replan)
        .await
        .unwrap();
    for (size, note) in checkpoints {
        let row = CheckpointRow {
            size: i64::try_from(*size).unwrap(),
            note: note.clone(),
            created_at: 0,
        };
        store.save_checkpoint(&row).await.unwrap();
    }
    (dir, store)
}

/// The entry whose leaf completes node `key`.
fn completing_leaf(key: NodeKey) -> i64 {
    i64::try_from(((key.index + 1) << key.level) - 1).unwrap()
}

/// Removes node `key` (level 1 or above) from a store's file, as tampering would: an entry row
/// keeps the roots its leaf completes in level order, so those above the node go with it.
async fn remove_node(dir: &tempfile::TempDir, key: NodeKey) {
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "UPDATE audit_entries SET subtree_roots = substr(subtree_roots, 1, ?1) WHERE idx = ?2",
    )
    .bind((i64::from(key.level) - 1) * 32)
    .bind(completing_leaf(key))
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
}

fn checkpoints(log: &Log, sizes: &[u64]) -> Vec<(u64, String)> {
    let s = signer();
    sizes
        .iter()
        .map(|&n| {
            (
                n,
                note(&s, ORIGIN, n, log.roots[usize::try_from(n).unwrap()]),
            )
        })
        .collect()
}

async fn failure(
    entries: &[AuditEntryRow],
    nodes: &[(NodeKey, Hash)],
    cps: &[(u64, String)],
) -> Failure {
    let (_dir, store) = store_of(entries, nodes, cps).await;
    match verify_store(&store, &signer().verifier()).await {
        Err(VerifyError::Invalid(f)) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn intact_log_verifies() {
    let log = log(2500);
    let cps = checkpoints(&log, &[0, 1, 10, 1000, 2047, 2048, 2500]);
    let (_dir, store) = store_of(&log.entries[..2400], &log.nodes, &cps[..6]).await;
    // A tail not yet signed is fine; it is still checked against the stored nodes.
    let report = verify_store(&store, &signer().verifier()).await.unwrap();
    assert_eq!((report.entries, report.checkpoints), (2400, 6));
    assert_eq!(report.latest.as_ref().map(|c| c.size), Some(2048));
    assert_eq!(report.unsigned_tail(), 352);
    assert_eq!(report.root, log.roots[2400]);
    let bytes: usize = log.entries[..2400].iter().map(|e| e.entry.len()).sum();
    assert_eq!(report.bytes_hashed, u64::try_from(bytes).unwrap());

    let (_dir, empty) = store_of(&[], &[], &checkpoints(&log, &[0])).await;
    let report = verify_store(&empty, &signer().verifier()).await.unwrap();
    assert_eq!((report.entries, report.checkpoints), (0, 1));
}

#[tokio::test]
async fn modified_entry_is_named() {
    let log = log(40);
    let mut entries = log.entries.clone();
    let pos = entries[17].entry.len() - 5;
    entries[17].entry[pos] ^= 1;
    let f = failure(&entries, &log.nodes, &checkpoints(&log, &[40])).await;
    assert_eq!((f.index, f.kind), (17, FailureKind::LeafMismatch));
    assert_eq!(f.entries_verified, 17);
}

#[tokio::test]
async fn gap_swap_and_truncation_are_named() {
    let log = log(40);
    let cps = checkpoints(&log, &[20, 40]);
    let mut gap = log.entries.clone();
    gap.remove(9);
    let f = failure(&gap, &log.nodes, &cps).await;
    assert_eq!((f.index, f.kind), (9, FailureKind::Gap));

    let mut swapped = log.entries.clone();
    let (a, b) = (swapped[25].entry.clone(), swapped[31].entry.clone());
    swapped[25].entry = b;
    swapped[31].entry = a;
    let f = failure(&swapped, &log.nodes, &cps).await;
    assert_eq!(
        (f.index, f.kind),
        (25, FailureKind::IndexMismatch { claimed: 31 })
    );

    let f = failure(&log.entries[..33], &log.nodes, &cps).await;
    assert_eq!(
        (f.index, f.kind),
        (
            33,
            FailureKind::Truncated {
                checkpoint_size: 40
            }
        )
    );

    let mut moved = log.entries.clone();
    moved[3].tenant_id = Some("other".into());
    let f = failure(&moved, &log.nodes, &cps).await;
    assert_eq!((f.index, f.kind), (3, FailureKind::TenantMismatch));
}

#[tokio::test]
async fn stored_nodes_are_checked() {
    let log = log(16);
    let cps = checkpoints(&log, &[16]);
    let mut nodes = log.nodes.clone();
    let at = nodes
        .iter()
        .position(|(k, _)| k.level == 2 && k.index == 1)
        .unwrap();
    nodes[at].1[0] ^= 1;
    let f = failure(&log.entries, &nodes, &cps).await;
    // Node (2, 1) covers entries 4..=7: the first of them is named.
    assert_eq!(
        (f.index, f.kind),
        (
            4,
            FailureKind::NodeMismatch {
                level: 2,
                node_index: 1
            }
        )
    );

    let (dir, store) = store_of(&log.entries, &log.nodes, &cps).await;
    remove_node(&dir, nodes[at].0).await;
    let f = match verify_store(&store, &signer().verifier()).await {
        Err(VerifyError::Invalid(f)) => f,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(
        (f.index, f.kind),
        (
            7,
            FailureKind::NodeMissing {
                level: 2,
                node_index: 1
            }
        )
    );
}

#[tokio::test]
async fn nodes_past_the_first_page_are_checked() {
    // In pages of 1,000 entries, node (10, 1) covers leaves 1024..2047 and is kept in the row
    // of leaf 2047, in the third page.
    let log = log(2100);
    let cps = checkpoints(&log, &[2100]);
    let (dir, store) = store_of(&log.entries, &log.nodes, &cps).await;
    remove_node(
        &dir,
        NodeKey {
            level: 10,
            index: 1,
        },
    )
    .await;
    let f = match verify_in_pages(&store, &signer().verifier(), &[], 1000).await {
        Err(VerifyError::Invalid(f)) => f,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(
        (f.index, f.kind),
        (
            2047,
            FailureKind::NodeMissing {
                level: 10,
                node_index: 1
            }
        )
    );
}

#[tokio::test]
async fn a_deleted_page_is_a_gap_where_it_starts() {
    // With pages of 1,000 entries, entries 1000..2000 make up the second page whole: the read
    // of that page finds nothing, and the walk must go on to the entries after it.
    let log = log(2100);
    let mut entries = log.entries.clone();
    entries.drain(1000..2000);
    for signed in [vec![1000, 2100], vec![1000]] {
        let cps = checkpoints(&log, &signed);
        let (_dir, store) = store_of(&entries, &log.nodes, &cps).await;
        let f = match verify_in_pages(&store, &signer().verifier(), &[], 1000).await {
            Err(VerifyError::Invalid(f)) => f,
            other => panic!("expected a failure, got {other:?}"),
        };
        assert_eq!((f.index, f.kind), (1000, FailureKind::Gap));
        assert_eq!(f.entries_verified, 1000);
    }
}

/// The entry at `index` re-encoded with the same members in another layout: still an audit entry,
/// but not in the canonical form the store-side digest takes.
fn relaid(index: u64, claimed: u64) -> AuditEntryRow {
    let canonical = entry(claimed);
    let value: serde_json::Value = serde_json::from_slice(&canonical.entry).unwrap();
    AuditEntryRow {
        idx: i64::try_from(index).unwrap(),
        entry: serde_json::to_vec_pretty(&value).unwrap(),
        ..canonical
    }
}

#[tokio::test]
async fn entries_out_of_canonical_form_are_read_whole_and_judged() {
    // Across pages and page halves: a valid entry in another layout is accepted and hashed.
    let mut entries: Vec<AuditEntryRow> = (0..1500).map(entry).collect();
    for index in [3, 999, 1000, 1499] {
        entries[usize::try_from(index).unwrap()] = relaid(index, index);
    }
    let log = log_of(entries);
    let cps = checkpoints(&log, &[1000, 1500]);
    let (_dir, store) = store_of(&log.entries, &log.nodes, &cps).await;
    let report = verify_in_pages(&store, &signer().verifier(), &[], 1000)
        .await
        .unwrap();
    assert_eq!((report.entries, report.checkpoints), (1500, 2));
    assert_eq!(report.root, log.roots[1500]);
    let bytes: usize = log.entries.iter().map(|e| e.entry.len()).sum();
    assert_eq!(report.bytes_hashed, u64::try_from(bytes).unwrap());

    // One that claims another index is named, even with the tree rebuilt over it.
    let mut entries: Vec<AuditEntryRow> = (0..1500).map(entry).collect();
    entries[1200] = relaid(1200, 1201);
    entries[1300] = relaid(1300, 7);
    let log = log_of(entries);
    let (_dir, store) = store_of(&log.entries, &log.nodes, &[]).await;
    let f = match verify_in_pages(&store, &signer().verifier(), &[], 1000).await {
        Err(VerifyError::Invalid(f)) => f,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(
        (f.index, f.kind, f.entries_verified),
        (1200, FailureKind::IndexMismatch { claimed: 1201 }, 1200)
    );
}

#[tokio::test]
async fn consistent_rewrite_is_caught_by_checkpoints() {
    let old = log(30);
    let cps = checkpoints(&old, &[5, 12, 30]);
    let mut entries = old.entries.clone();
    let mut r = AuditRecord::new("contact.read", "forged");
    r.tenant_id = entries[14].tenant_id.clone();
    entries[14].entry = encode(&r, 14, "2026-01-01T00:00:00.000Z").unwrap();
    let new = log_of(entries);
    let f = failure(&new.entries, &new.nodes, &cps).await;
    assert_eq!(
        (f.index, f.kind),
        (
            12,
            FailureKind::CheckpointRoot {
                size: 30,
                since: 12
            }
        )
    );
    assert_eq!(f.checkpoints_verified, 2);
}

#[tokio::test]
async fn bad_checkpoints_are_named() {
    let log = log(30);
    let mut cps = checkpoints(&log, &[10, 30]);
    let other = NoteSigner::from_bytes(ORIGIN, &[8; 32]).unwrap();
    cps[0].1 = note(&other, ORIGIN, 10, log.roots[10]);
    let f = failure(&log.entries, &log.nodes, &cps).await;
    assert_eq!(f.index, 10);
    assert!(
        matches!(f.kind, FailureKind::CheckpointSignature { size: 10, .. }),
        "{f}"
    );

    // Validly signed, but for another log.
    let mut cps = checkpoints(&log, &[10, 30]);
    cps[0].1 = note(&signer(), "elsewhere", 10, log.roots[10]);
    let f = failure(&log.entries, &log.nodes, &cps).await;
    assert!(
        matches!(f.kind, FailureKind::CheckpointMismatch { size: 10, .. }),
        "{f}"
    );

    // A row filed under another size than it signs.
    let mut cps = checkpoints(&log, &[10, 30]);
    cps[0].1 = note(&signer(), ORIGIN, 11, log.roots[11]);
    let f = failure(&log.entries, &log.nodes, &cps).await;
    assert!(
        matches!(f.kind, FailureKind::CheckpointMismatch { size: 10, .. }),
        "{f}"
    );

    // The empty tree's checkpoint must carry the empty root.
    let cps = vec![(0, note(&signer(), ORIGIN, 0, node_hash(&[0; 32], &[0; 32])))];
    let f = failure(&log.entries, &log.nodes, &cps).await;
    assert_eq!(
        (f.index, f.kind),
        (0, FailureKind::CheckpointRoot { size: 0, since: 0 })
    );
}

#[tokio::test]
async fn one_stray_entry_far_beyond_the_log_is_a_gap_where_the_log_ends() {
    let log = log(20);
    let cps = checkpoints(&log, &[20]);
    let (dir, store) = store_of(&log.entries, &log.nodes, &cps).await;
    let stray = entry(1 << 40);
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO audit_entries (idx, tenant_id, entry) VALUES (?1, ?2, ?3)")
        .bind(stray.idx)
        .bind(stray.tenant_id)
        .bind(stray.entry)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    // Without stopping at the first short page, this reads 2^40 / page size empty pages.
    let verdict = tokio::time::timeout(
        Duration::from_secs(20),
        verify_store(&store, &signer().verifier()),
    )
    .await
    .expect("verification ends");
    match verdict {
        Err(VerifyError::Invalid(f)) => assert_eq!((f.index, f.kind), (20, FailureKind::Gap)),
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_tree_hashes_are_named_as_tampering() {
    let log = log(16);
    let cps = checkpoints(&log, &[16]);
    for (idx, change) in [
        (
            5,
            "UPDATE audit_entries SET leaf_hash = substr(leaf_hash, 1, 31) WHERE idx = ?1",
        ),
        (
            6,
            "UPDATE audit_entries SET subtree_roots = leaf_hash WHERE idx = ?1",
        ),
        (
            7,
            "UPDATE audit_entries SET subtree_roots = CAST(subtree_roots || leaf_hash AS BLOB) \
             WHERE idx = ?1",
        ),
    ] {
        let (dir, store) = store_of(&log.entries, &log.nodes, &cps).await;
        let url = format!("sqlite://{}", dir.path().join("db").display());
        let db = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(change).bind(idx).execute(&db).await.unwrap();
        db.close().await;
        match verify_store(&store, &signer().verifier()).await {
            Err(VerifyError::Invalid(f)) => assert_eq!(
                (f.index, f.kind),
                (u64::try_from(idx).unwrap(), FailureKind::NodesMalformed),
                "{change}"
            ),
            other => panic!("{change}: expected a failure, got {other:?}"),
        }
    }
}
