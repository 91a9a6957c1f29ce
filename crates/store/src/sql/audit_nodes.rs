//! The audit tree's nodes, read where they are kept: in the rows of the entries that completed
//! them (see `audit_scan`).

use super::{Conn, Db};
use crate::StoreError;
use crate::audit_scan::node_location;
use crate::rows::NodeKey;

/// Node ids per `nodes_by_id` statement (three bound values each): a proof needs at most ~128.
const NODES_PER_QUERY: usize = 256;

/// Tree nodes by id, `None` where absent, in `ids` order. A proof or a frontier needs O(log n)
/// scattered nodes: one statement for all of them rather than one round trip each. Each node is
/// read from the row of the entry that completed it (see `audit_scan`).
pub(super) async fn nodes_by_id(
    conn: &mut Conn,
    ids: &[NodeKey],
) -> Result<Vec<Option<[u8; 32]>>, StoreError> {
    let mut found = vec![None; ids.len()];
    for (chunk_at, chunk) in ids.chunks(NODES_PER_QUERY).enumerate() {
        let first = chunk_at.saturating_mul(NODES_PER_QUERY);
        // A join from the id list: a key lookup per id, on SQLite and PostgreSQL alike.
        let mut qb: sqlx::QueryBuilder<Db> =
            sqlx::QueryBuilder::new("WITH wanted (at, entry, byte) AS (VALUES ");
        let mut separated = qb.separated(", ");
        for (at, id) in chunk.iter().enumerate() {
            let (entry, byte) =
                node_location(*id).ok_or_else(|| StoreError::Corrupt("node index".into()))?;
            let at = i64::try_from(first.saturating_add(at))
                .map_err(|_| StoreError::Corrupt("node count".into()))?;
            separated.push("(");
            separated.push_bind_unseparated(at);
            separated.push_unseparated(", ");
            separated.push_bind_unseparated(entry);
            separated.push_unseparated(", ");
            separated.push_bind_unseparated(byte);
            separated.push_unseparated(")");
        }
        qb.push(
            ") SELECT wanted.at, CASE WHEN wanted.byte = 0 THEN e.leaf_hash \
             ELSE substr(e.subtree_roots, wanted.byte, 32) END \
             FROM wanted JOIN audit_entries e ON e.idx = wanted.entry",
        );
        let rows: Vec<(i64, Option<Vec<u8>>)> = qb.build_query_as().fetch_all(&mut *conn).await?;
        for (at, hash) in rows {
            // Past the end of the row's roots, `substr` gives no bytes: the node is absent.
            let Some(hash) = hash.filter(|hash| !hash.is_empty()) else {
                continue;
            };
            let hash = <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| StoreError::Corrupt("audit node hash length".into()))?;
            if let Some(slot) = usize::try_from(at).ok().and_then(|at| found.get_mut(at)) {
                *slot = Some(hash);
            }
        }
    }
    Ok(found)
}
