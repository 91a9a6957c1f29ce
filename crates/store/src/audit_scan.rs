//! Runs of the audit log as whole-log verification reads them: a digest of each entry, computed
//! where the entry is read, and the stored nodes the run completes.

use crate::rows::AuditEntryRow;

/// The stored nodes of one tree level with `first <= index <= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeRange {
    pub level: u8,
    pub first: u64,
    pub last: u64,
}

/// What the reader of a scan computes of each entry, on the thread that reads it and over bytes
/// the database still holds: a verifier reads millions, and copying each out costs about as much
/// as hashing it. `None` marks an entry the caller must read whole to judge.
pub type EntryDigest = fn(AuditEntryRef<'_>) -> Option<[u8; 32]>;

/// One entry of a scan: its index and the [`EntryDigest`] of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedEntry {
    pub idx: i64,
    pub digest: Option<[u8; 32]>,
}

/// A run of the audit log read for verifying the whole log: the entries of an index range, and
/// the stored nodes of each requested [`NodeRange`] (one list per range, in the same order, by
/// index; absent nodes are simply not in their list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditScan {
    /// By index; entries absent from the store are simply not listed.
    pub entries: Vec<ScannedEntry>,
    /// The entries' bytes in all.
    pub entry_bytes: u64,
    pub nodes: Vec<RangeNodes>,
}

/// The stored nodes of one [`NodeRange`]: `(index, hash)` by index.
pub type RangeNodes = Vec<(u64, [u8; 32])>;

/// One stored audit entry, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditEntryRef<'a> {
    pub idx: i64,
    pub tenant_id: Option<&'a str>,
    pub entry: &'a [u8],
}

impl AuditEntryRow {
    #[must_use]
    pub fn as_entry_ref(&self) -> AuditEntryRef<'_> {
        AuditEntryRef {
            idx: self.idx,
            tenant_id: self.tenant_id.as_deref(),
            entry: &self.entry,
        }
    }
}

/// `[start, start + limit)` as the `i64` bounds SQL compares with.
pub(crate) fn index_bounds(start: u64, limit: u32) -> Result<(i64, i64), crate::StoreError> {
    let end = start.saturating_add(u64::from(limit));
    let bound = |i: u64| {
        i64::try_from(i).map_err(|_| crate::StoreError::Corrupt("audit index out of range".into()))
    };
    Ok((bound(start)?, bound(end)?))
}
