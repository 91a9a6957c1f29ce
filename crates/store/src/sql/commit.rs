//! The write path: one transaction per batch of units plus their audit rows. The audit rows go
//! first, so that writers sharing the database queue on the audit head, not deadlock later, and a
//! batch planned on a stale head is re-planned before any data change is applied.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::store_impl::nodes_by_id;
use super::write::{INSERT_CHUNK, apply};
use super::{Backend, Conn, Db};
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
        let mut tx = self.begin_write().await?;
        if let Some(first) = planned.entries.first() {
            // Where the write lock already orders appends (SQLite), the plan is stale only if
            // another process appended since, and then the first entry's key is taken: try the
            // plan as it is, and read the head only after a conflict, in a fresh transaction.
            let appended = Self::WRITE_LOCK_ORDERS_APPENDS
                && match append_audit(&mut tx, planned).await {
                    Ok(()) => true,
                    Err(StoreError::Conflict(_)) => {
                        tx.rollback().await?;
                        tx = self.begin_write().await?;
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
                Err(err @ (StoreError::Conflict(_) | StoreError::MissingReference)) => {
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

/// Entries with their leaf hashes (level 0, kept in the entry's row), then the upper nodes.
async fn append_audit(conn: &mut Conn, audit: &AuditAppend) -> Result<(), StoreError> {
    let leaves = leaf_hashes(audit)?;
    for (entries, leaves) in audit
        .entries
        .chunks(INSERT_CHUNK)
        .zip(leaves.chunks(INSERT_CHUNK))
    {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("INSERT INTO audit_entries (idx, tenant_id, entry, leaf_hash) ");
        qb.push_values(entries.iter().zip(leaves), |mut row, (e, leaf)| {
            row.push_bind(e.idx)
                .push_bind(e.tenant_id.clone())
                .push_bind(e.entry.clone())
                .push_bind(leaf.to_vec());
        });
        qb.build().execute(&mut *conn).await?;
    }
    let upper: Vec<&(NodeKey, [u8; 32])> = audit
        .nodes
        .iter()
        .filter(|(key, _)| key.level > 0)
        .collect();
    for chunk in upper.chunks(INSERT_CHUNK) {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("INSERT INTO audit_nodes (level, idx, hash) ");
        let mut bad_index = false;
        qb.push_values(chunk, |mut row, (key, hash)| {
            let index = i64::try_from(key.index).unwrap_or_else(|_| {
                bad_index = true;
                -1
            });
            row.push_bind(i64::from(key.level))
                .push_bind(index)
                .push_bind(hash.to_vec());
        });
        if bad_index {
            return Err(StoreError::Corrupt("audit node index out of range".into()));
        }
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The level-0 node of each entry, in entry order. Level 0 has no table of its own, so an
/// append with an entry lacking its leaf hash, or a leaf hash lacking its entry, is refused.
fn leaf_hashes(audit: &AuditAppend) -> Result<Vec<[u8; 32]>, StoreError> {
    let mut leaves: HashMap<u64, [u8; 32]> = audit
        .nodes
        .iter()
        .filter(|(key, _)| key.level == 0)
        .map(|(key, hash)| (key.index, *hash))
        .collect();
    let in_order = audit
        .entries
        .iter()
        .map(|entry| {
            u64::try_from(entry.idx)
                .ok()
                .and_then(|idx| leaves.remove(&idx))
                .ok_or_else(|| StoreError::Corrupt("audit entry without its leaf hash".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if leaves.is_empty() {
        Ok(in_order)
    } else {
        Err(StoreError::Corrupt(
            "audit leaf hash without its entry".into(),
        ))
    }
}
