//! The write path: one transaction per batch of units plus their audit rows. The audit rows go
//! first, so that writers sharing the database queue on the audit head, not deadlock later, and a
//! batch planned on a stale head is re-planned before any data change is applied.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::audit_nodes::nodes_by_id;
use super::write::{INSERT_CHUNK, apply};
use super::{Backend, Conn, Db};
use crate::Mutation;
use crate::audit_scan::node_location;
use crate::rows::*;
use crate::{Replan, StoreError, UnitResult};

impl Backend {
    pub(super) async fn commit_batch(
        &self,
        units: &[Vec<Mutation>],
        planned: &AuditAppend,
        replan: Replan<'_>,
        isolate_units: bool,
    ) -> Result<Vec<UnitResult>, StoreError> {
        let mut writer = self.writer().await?;
        if Self::WRITE_LOCK_ORDERS_APPENDS
            && units.iter().all(Vec::is_empty)
            && (1..=INSERT_CHUNK).contains(&planned.entries.len())
        {
            // Entries alone (the audit of reads) fit one INSERT, which SQLite commits as its own
            // transaction: one statement, one round trip to the writer's thread, instead of three.
            // A stale plan is refused by the first entry's key, as below, and goes the long way.
            match append_audit(&mut writer, planned).await {
                Ok(()) => {
                    self.committed();
                    return Ok(units.iter().map(|_| Ok(())).collect());
                }
                Err(StoreError::Conflict(_)) => {}
                Err(other) => return Err(other),
            }
        }
        let mut tx = Self::begin_write(&mut writer).await?;
        if let Some(first) = planned.entries.first() {
            // Where the write lock already orders appends (SQLite), the plan is stale only if
            // another process appended since, and then the first entry's key is taken: try the
            // plan as it is, and read the head only after a conflict, in a fresh transaction.
            let appended = Self::WRITE_LOCK_ORDERS_APPENDS
                && match append_audit(&mut tx, planned).await {
                    Ok(()) => true,
                    Err(StoreError::Conflict(_)) => {
                        tx.rollback().await?;
                        tx = Self::begin_write(&mut writer).await?;
                        false
                    }
                    Err(other) => return Err(other),
                };
            if !appended {
                let size = Self::lock_audit_head(&mut tx).await?;
                let replanned;
                let audit = if size == first.idx {
                    planned
                } else {
                    let size = u64::try_from(size)
                        .map_err(|_| StoreError::Corrupt("audit size".into()))?;
                    let frontier = frontier_hashes(&mut tx, size).await?;
                    replanned = replan(size, &frontier)?;
                    &replanned
                };
                let end = audit
                    .entries
                    .last()
                    .map(|e| e.idx + 1)
                    .ok_or_else(|| StoreError::Corrupt("empty re-planned batch".into()))?;
                Self::set_audit_head(&mut tx, end).await?;
                append_audit(&mut tx, audit).await?;
            }
        }
        let mut results = Vec::with_capacity(units.len());
        for unit in units {
            if !isolate_units {
                for mutation in unit {
                    apply(&mut tx, mutation).await?;
                }
                results.push(Ok(()));
                continue;
            }
            if unit.is_empty() {
                results.push(Ok(()));
                continue;
            }
            sqlx::query("SAVEPOINT unit").execute(&mut *tx).await?;
            let mut outcome = Ok(());
            for mutation in unit {
                if let Err(err) = apply(&mut tx, mutation).await {
                    outcome = Err(err);
                    break;
                }
            }
            match outcome {
                Ok(()) => {
                    sqlx::query("RELEASE unit").execute(&mut *tx).await?;
                    results.push(Ok(()));
                }
                Err(err) if err.refuses_unit_only() => {
                    sqlx::query("ROLLBACK TO unit").execute(&mut *tx).await?;
                    sqlx::query("RELEASE unit").execute(&mut *tx).await?;
                    results.push(Err(err));
                }
                Err(other) => return Err(other),
            }
        }
        tx.commit().await?;
        self.committed();
        Ok(results)
    }
}

/// The hashes of the frontier of a tree of `size` leaves: for each set bit of `size`, largest
/// first, the root of that perfect subtree (`Frontier::node_ids_for_size` in the ledger crate).
async fn frontier_hashes(conn: &mut Conn, size: u64) -> Result<Vec<[u8; 32]>, StoreError> {
    let ids: Vec<NodeKey> = (0u8..64)
        .rev()
        .filter(|&level| (size >> level) & 1 == 1)
        .map(|level| NodeKey {
            level,
            index: (size >> level) - 1,
        })
        .collect();
    nodes_by_id(conn, &ids)
        .await?
        .into_iter()
        .map(|hash| hash.ok_or_else(|| StoreError::Corrupt("audit frontier node missing".into())))
        .collect()
}

/// Entries, each with the tree nodes its leaf completes (see `audit_scan`): one row per entry.
async fn append_audit(conn: &mut Conn, audit: &AuditAppend) -> Result<(), StoreError> {
    let tree = tree_columns(audit)?;
    for (entries, tree) in audit
        .entries
        .chunks(INSERT_CHUNK)
        .zip(tree.chunks(INSERT_CHUNK))
    {
        let mut qb: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO audit_entries (idx, tenant_id, entry, leaf_hash, subtree_roots) ",
        );
        qb.push_values(entries.iter().zip(tree), |mut row, (e, (leaf, roots))| {
            row.push_bind(e.idx)
                .push_bind(e.tenant_id.clone())
                .push_bind(e.entry.clone())
                .push_bind(leaf.to_vec())
                .push_bind(roots.clone());
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// An entry row's `leaf_hash` and `subtree_roots`.
type TreeColumns = ([u8; 32], Option<Vec<u8>>);

/// Each entry's leaf hash and the roots its leaf completes (levels 1, 2, … concatenated; `None`
/// if it completes none), in entry order. The nodes live in the entry rows, so an append whose
/// nodes do not pair up with its entries exactly (a leaf hash or a completed root missing, or a
/// node completed by no entry of the append) is refused.
fn tree_columns(audit: &AuditAppend) -> Result<Vec<TreeColumns>, StoreError> {
    let refuse = |what: &str| StoreError::Corrupt(what.into());
    let mut by_leaf: HashMap<(i64, u8), [u8; 32]> = HashMap::with_capacity(audit.nodes.len());
    for (key, hash) in &audit.nodes {
        let (leaf, _) =
            node_location(*key).ok_or_else(|| refuse("audit node index out of range"))?;
        by_leaf.insert((leaf, key.level), *hash);
    }
    let mut columns = Vec::with_capacity(audit.entries.len());
    for entry in &audit.entries {
        let leaf = by_leaf
            .remove(&(entry.idx, 0))
            .ok_or_else(|| refuse("audit entry without its leaf hash"))?;
        let completed = u8::try_from(entry.idx.trailing_ones()).unwrap_or(u8::MAX);
        let mut roots = Vec::with_capacity(32 * usize::from(completed));
        for level in 1..=completed {
            let root = by_leaf
                .remove(&(entry.idx, level))
                .ok_or_else(|| refuse("audit entry without a root its leaf completes"))?;
            roots.extend_from_slice(&root);
        }
        columns.push((leaf, (!roots.is_empty()).then_some(roots)));
    }
    if by_leaf.is_empty() {
        Ok(columns)
    } else {
        Err(refuse("audit node without the entry that completes it"))
    }
}
