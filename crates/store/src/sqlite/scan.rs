//! Bulk reads of the audit log for verifying it whole, on read-only rusqlite connections.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every row across a channel:
//! a few microseconds a row, against a fraction of one here, where a blocking task steps the
//! statement itself. A verifier reads millions of rows, so it is the only reader that bypasses
//! sqlx; it never writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{FromSqlError, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::unavailable;
use crate::StoreError;
use crate::audit_scan::{AuditEntryRef, AuditScan, EntryDigest, ScannedEntry, index_bounds};
use crate::rows::WatchedEntryRow;

/// Maps the file so a scan reads pages without a system call each (SQLite caps it at its
/// compile-time limit).
const MMAP_BYTES: i64 = 1 << 32;

/// Entries reserved up front: a caller's `limit` bounds the rows read, not the memory set aside
/// before reading.
const RESERVE_ROWS: usize = 8192;

/// Below this many entries a scan reads them on one connection rather than two.
const SPLIT_AT: u32 = 512;

/// Reads the two halves of a scan at once, on two connections opened at the first scan and kept:
/// reading and digesting the entries is a verifier's work, and two halves keep two cores busy.
/// Scans in flight together queue for each connection, so one goes on to its half of the next
/// scan without waiting for the other.
pub(super) struct Scanner {
    path: PathBuf,
    busy_timeout: Duration,
    halves: [LazyConnection; 2],
}

type LazyConnection = Arc<Mutex<Option<Connection>>>;

impl Scanner {
    pub(super) fn new(path: &Path, busy_timeout: Duration) -> Self {
        Self {
            path: path.to_path_buf(),
            busy_timeout,
            halves: Default::default(),
        }
    }

    /// The halves may see different snapshots: the caller bounds the scan by a size read before
    /// it, so every entry it asks for is already committed.
    pub(super) async fn scan(
        &self,
        start: u64,
        limit: u32,
        digest: EntryDigest,
    ) -> Result<AuditScan, StoreError> {
        let (first, end) = index_bounds(start, limit)?;
        let middle = if limit < SPLIT_AT {
            end
        } else {
            first.saturating_add(i64::from(limit / 2))
        };
        let [low, high] = &self.halves;
        let (mut low, high) = tokio::try_join!(
            self.on(low, move |conn| read_entries(conn, first, middle, digest)),
            self.on(high, move |conn| read_entries(conn, middle, end, digest)),
        )?;
        low.extend(high);
        Ok(low)
    }

    /// Up to `limit` entries from `start` on, with their leaf hashes, for the breach watch, which
    /// reads every entry as the log grows: on the first connection, off sqlx's row channel. Not
    /// bounded above, so that entries missing at `start` do not hide those after them.
    pub(super) async fn watched(
        &self,
        start: u64,
        limit: u32,
    ) -> Result<Vec<WatchedEntryRow>, StoreError> {
        let (first, _) = index_bounds(start, limit)?;
        let [low, _] = &self.halves;
        self.on(low, move |conn| read_watched(conn, first, limit))
            .await
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
/// tree nodes in their rows.
fn read_entries(
    conn: &Connection,
    first: i64,
    end: i64,
    digest: EntryDigest,
) -> Result<AuditScan, StoreError> {
    let mut scan = AuditScan::default();
    if first >= end {
        return Ok(scan);
    }
    let mut statement = conn
        .prepare(
            "SELECT idx, tenant_id, entry, leaf_hash, subtree_roots FROM audit_entries \
             WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query((first, end)).map_err(unavailable)?;
    scan.entries.reserve(
        usize::try_from(end.saturating_sub(first)).map_or(RESERVE_ROWS, |n| n.min(RESERVE_ROWS)),
    );
    while let Some(row) = rows.next().map_err(unavailable)? {
        let idx: i64 = row.get(0).map_err(corrupt("audit entry index"))?;
        let tenant_id = row
            .get_ref(1)
            .and_then(|value| Ok(value.as_str_or_null()?))
            .map_err(corrupt("audit entry tenant"))?;
        let entry = row
            .get_ref(2)
            .and_then(|value| Ok(bytes_or_null(value)?))
            .map_err(corrupt("audit entry bytes"))?
            .ok_or_else(|| StoreError::Corrupt("audit entry bytes".into()))?;
        scan.entry_bytes = scan
            .entry_bytes
            .saturating_add(u64::try_from(entry.len()).unwrap_or(u64::MAX));
        scan.entries.push(ScannedEntry {
            idx,
            digest: digest(AuditEntryRef {
                idx,
                tenant_id,
                entry,
            }),
        });
        let leaf_hash = blob_or_null(row, 3, "audit leaf hash")?;
        let subtree_roots = blob_or_null(row, 4, "audit subtree roots")?;
        scan.add_nodes(idx, leaf_hash, subtree_roots)?;
    }
    Ok(scan)
}

fn read_watched(
    conn: &Connection,
    first: i64,
    limit: u32,
) -> Result<Vec<WatchedEntryRow>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT idx, tenant_id, entry, leaf_hash FROM audit_entries \
             WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query((first, limit)).map_err(unavailable)?;
    let mut watched = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        watched.push(WatchedEntryRow {
            idx: row.get(0).map_err(corrupt("audit entry index"))?,
            tenant_id: row.get(1).map_err(corrupt("audit entry tenant"))?,
            entry: row.get(2).map_err(corrupt("audit entry bytes"))?,
            leaf_hash: row.get(3).map_err(corrupt("audit leaf hash"))?,
        });
    }
    Ok(watched)
}

/// Column `at` of `row`: its bytes, or NULL.
fn blob_or_null<'r>(
    row: &'r rusqlite::Row<'_>,
    at: usize,
    what: &'static str,
) -> Result<Option<&'r [u8]>, StoreError> {
    row.get_ref(at)
        .and_then(|value| Ok(bytes_or_null(value)?))
        .map_err(corrupt(what))
}

/// A blob's bytes, or a text's: a value edited by hand with the `sqlite3` shell is stored as
/// text, and must be judged by its bytes (a mismatch at its index), not fail the whole scan.
fn bytes_or_null(value: ValueRef<'_>) -> Result<Option<&[u8]>, FromSqlError> {
    match value {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Ok(Some(bytes)),
        ValueRef::Null => Ok(None),
        _ => Err(FromSqlError::InvalidType),
    }
}

fn corrupt(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |_| StoreError::Corrupt(what.into())
}
