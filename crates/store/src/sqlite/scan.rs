//! Bulk reads of the audit log for verifying it whole, on read-only rusqlite connections.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every row across a channel:
//! a few microseconds a row, against a fraction of one here, where a blocking task steps the
//! statement itself. A verifier reads millions of rows, so it is the only reader that bypasses
//! sqlx; it never writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::audit_scan::{
    AuditEntryRef, AuditScan, EntryDigest, NodeRange, RangeNodes, ScannedEntry, index_bounds,
};

/// Maps the file so a scan reads pages without a system call each (SQLite caps it at its
/// compile-time limit).
const MMAP_BYTES: i64 = 1 << 32;

/// Rows reserved up front per list: a caller's `limit` or range bounds the rows read, not the
/// memory set aside before reading.
const RESERVE_ROWS: usize = 8192;

/// Below this many entries a scan reads them on one connection rather than two.
const SPLIT_AT: u32 = 512;

/// Reads the two halves of a scan's entries and its nodes at once, on three connections opened
/// at the first scan and kept: reading and digesting the entries is most of a verifier's work,
/// and two halves keep two cores busy. Scans in flight together queue for each connection, so
/// one goes on to its part of the next scan without waiting for the others.
pub(super) struct Scanner {
    path: PathBuf,
    busy_timeout: Duration,
    entries: [LazyConnection; 2],
    nodes: LazyConnection,
}

type LazyConnection = Arc<Mutex<Option<Connection>>>;

/// What one entry read returns: the entries, their bytes in all, and the leaf hashes they hold.
type EntryRun = (Vec<ScannedEntry>, u64, RangeNodes);

impl Scanner {
    pub(super) fn new(path: &Path, busy_timeout: Duration) -> Self {
        Self {
            path: path.to_path_buf(),
            busy_timeout,
            entries: Default::default(),
            nodes: LazyConnection::default(),
        }
    }

    /// The reads may see different snapshots: the caller bounds the scan by a size read before
    /// it, so every entry and node it asks for is already committed.
    pub(super) async fn scan(
        &self,
        start: u64,
        limit: u32,
        ranges: &[NodeRange],
        digest: EntryDigest,
    ) -> Result<AuditScan, StoreError> {
        let (first, end) = index_bounds(start, limit)?;
        // Leaf hashes live in the entry rows: the entry reads pick up a level-0 range that lies
        // within the entries they read, and the node read takes every other range.
        let fused = ranges.iter().position(|range| {
            range.level == 0
                && range.first >= start
                && range.last < start.saturating_add(u64::from(limit))
        });
        let leaves = match fused.and_then(|at| ranges.get(at)) {
            Some(range) => Some((index(range.first)?, index(range.last)?)),
            None => None,
        };
        let others: Vec<NodeRange> = ranges
            .iter()
            .enumerate()
            .filter(|(at, _)| Some(*at) != fused)
            .map(|(_, range)| *range)
            .collect();
        let middle = if limit < SPLIT_AT {
            end
        } else {
            first.saturating_add(i64::from(limit / 2))
        };
        let [low, high] = &self.entries;
        let (low, high, found) = tokio::try_join!(
            self.on(low, move |conn| read_entries(
                conn, first, middle, leaves, digest
            )),
            self.on(high, move |conn| read_entries(
                conn, middle, end, leaves, digest
            )),
            self.on(&self.nodes, move |conn| read_nodes(conn, &others)),
        )?;
        let (mut entries, low_bytes, mut leaf_nodes) = low;
        let (high_entries, high_bytes, high_leaves) = high;
        entries.extend(high_entries);
        leaf_nodes.extend(high_leaves);
        let mut leaf_nodes = Some(leaf_nodes);
        let mut found = found.into_iter();
        let nodes = (0..ranges.len())
            .map(|at| {
                let nodes = if Some(at) == fused {
                    leaf_nodes.take()
                } else {
                    found.next()
                };
                nodes.unwrap_or_default()
            })
            .collect();
        Ok(AuditScan {
            entries,
            entry_bytes: low_bytes.saturating_add(high_bytes),
            nodes,
        })
    }

    /// Runs `read` on a blocking thread with `conn`, opening it first if needed.
    async fn on<T: Send + 'static>(
        &self,
        conn: &LazyConnection,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(conn);
        let path = self.path.clone();
        let busy_timeout = self.busy_timeout;
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Unavailable("audit scan connection poisoned".into()))?;
            if conn.is_none() {
                *conn = Some(open(&path, busy_timeout)?);
            }
            match conn.as_ref() {
                Some(conn) => read(conn),
                None => Err(StoreError::Unavailable("audit scan connection".into())),
            }
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("audit scan task: {e}")))?
    }
}

fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(unavailable)?;
    conn.busy_timeout(busy_timeout).map_err(unavailable)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)
        .map_err(unavailable)?;
    Ok(conn)
}

/// The entries with `first <= idx < end`, digested over the bytes in SQLite's pages, and the
/// leaf hashes of those within `leaves` (inclusive bounds).
fn read_entries(
    conn: &Connection,
    first: i64,
    end: i64,
    leaves: Option<(i64, i64)>,
    digest: EntryDigest,
) -> Result<EntryRun, StoreError> {
    if first >= end {
        return Ok(Default::default());
    }
    let mut statement = conn
        .prepare(
            "SELECT idx, tenant_id, entry, leaf_hash FROM audit_entries \
             WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query((first, end)).map_err(unavailable)?;
    let rows_wanted =
        usize::try_from(end.saturating_sub(first)).map_or(RESERVE_ROWS, |n| n.min(RESERVE_ROWS));
    let mut entries = Vec::with_capacity(rows_wanted);
    let mut leaf_nodes = RangeNodes::with_capacity(if leaves.is_some() { rows_wanted } else { 0 });
    let mut bytes = 0u64;
    while let Some(row) = rows.next().map_err(unavailable)? {
        let idx: i64 = row.get(0).map_err(corrupt("audit entry index"))?;
        let tenant_id = row
            .get_ref(1)
            .and_then(|value| Ok(value.as_str_or_null()?))
            .map_err(corrupt("audit entry tenant"))?;
        let entry = row
            .get_ref(2)
            .and_then(|value| Ok(value.as_blob()?))
            .map_err(corrupt("audit entry bytes"))?;
        bytes = bytes.saturating_add(u64::try_from(entry.len()).unwrap_or(u64::MAX));
        entries.push(ScannedEntry {
            idx,
            digest: digest(AuditEntryRef {
                idx,
                tenant_id,
                entry,
            }),
        });
        if let Some((low, high)) = leaves
            && (low..=high).contains(&idx)
            && let Some(hash) = leaf_hash(row.get_ref(3).map_err(corrupt("audit leaf hash"))?)?
        {
            let idx = u64::try_from(idx).map_err(|_| StoreError::Corrupt("audit index".into()))?;
            leaf_nodes.push((idx, hash));
        }
    }
    Ok((entries, bytes, leaf_nodes))
}

/// A stored leaf hash: NULL is a missing node, anything but 32 bytes is corruption.
fn leaf_hash(value: ValueRef<'_>) -> Result<Option<[u8; 32]>, StoreError> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(bytes) => <[u8; 32]>::try_from(bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("audit node hash length".into())),
        _ => Err(StoreError::Corrupt("audit leaf hash type".into())),
    }
}

/// One range scan per level, in one read transaction.
fn read_nodes(conn: &Connection, ranges: &[NodeRange]) -> Result<Vec<RangeNodes>, StoreError> {
    let tx = conn.unchecked_transaction().map_err(unavailable)?;
    let mut upper = tx
        .prepare(
            "SELECT idx, hash FROM audit_nodes WHERE level = ?1 AND idx >= ?2 AND idx <= ?3 \
             ORDER BY idx",
        )
        .map_err(unavailable)?;
    // Level 0 lives in the entry rows; `?1` is always 0 there and only keeps one parameter list.
    let mut leaves = tx
        .prepare(
            "SELECT idx, leaf_hash FROM audit_entries WHERE ?1 = 0 AND idx >= ?2 AND idx <= ?3 \
             AND leaf_hash IS NOT NULL ORDER BY idx",
        )
        .map_err(unavailable)?;
    let mut found = Vec::with_capacity(ranges.len());
    for range in ranges {
        let capacity = range.last.saturating_sub(range.first).saturating_add(1);
        let mut nodes = Vec::with_capacity(
            usize::try_from(capacity).map_or(RESERVE_ROWS, |n| n.min(RESERVE_ROWS)),
        );
        let statement = if range.level == 0 {
            &mut leaves
        } else {
            &mut upper
        };
        let mut rows = statement
            .query((
                i64::from(range.level),
                index(range.first)?,
                index(range.last)?,
            ))
            .map_err(unavailable)?;
        while let Some(row) = rows.next().map_err(unavailable)? {
            let idx: i64 = row.get(0).map_err(corrupt("audit node index"))?;
            let idx =
                u64::try_from(idx).map_err(|_| StoreError::Corrupt("audit node index".into()))?;
            let hash = row
                .get_ref(1)
                .and_then(|value| Ok(value.as_blob()?))
                .map_err(corrupt("audit node hash"))?;
            let hash = <[u8; 32]>::try_from(hash)
                .map_err(|_| StoreError::Corrupt("audit node hash length".into()))?;
            nodes.push((idx, hash));
        }
        found.push(nodes);
    }
    drop(upper);
    drop(leaves);
    tx.finish().map_err(unavailable)?;
    Ok(found)
}

fn index(i: u64) -> Result<i64, StoreError> {
    i64::try_from(i).map_err(|_| StoreError::Corrupt("audit index out of range".into()))
}

/// rusqlite's messages may quote values; keep only SQLite's result code, as `From<sqlx::Error>`.
fn unavailable(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(code) => StoreError::Unavailable(format!("database error {code:?}")),
        None => StoreError::Unavailable("audit scan failed".into()),
    }
}

fn corrupt(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |_| StoreError::Corrupt(what.into())
}
