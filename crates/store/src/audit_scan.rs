//! Runs of the audit log as whole-log verification reads them: a digest of each entry, computed
//! where the entry is read, and the tree nodes stored in the entries' rows.
//!
//! Each entry's row holds its leaf hash (level 0) and the roots of the perfect subtrees its leaf
//! completes (`subtree_roots`): node `(l, i)` with `l >= 1` is completed by leaf
//! `(i + 1) * 2^l - 1`, whose row keeps levels `1..=t` in order, 32 bytes each, where `t` is the
//! number of trailing one bits of its index. Reading the entries in order reads the tree.

use crate::StoreError;
use crate::rows::{AuditEntryRow, NodeKey};

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
/// the tree nodes stored in their rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditScan {
    /// By index; entries absent from the store are simply not listed.
    pub entries: Vec<ScannedEntry>,
    /// The entries' bytes in all.
    pub entry_bytes: u64,
    /// By level: the nodes stored in the scanned rows (level 0: their leaf hashes), each list by
    /// index. A node the rows should hold but do not is simply not listed.
    pub nodes: Vec<LevelNodes>,
    /// Indexes of rows whose node columns are malformed (a hash not 32 bytes long, roots beyond
    /// those the leaf completes): evidence of tampering, for the verifier to name in order.
    pub malformed: Vec<i64>,
}

/// Stored nodes of one tree level: `(index, hash)` by index.
pub type LevelNodes = Vec<(u64, [u8; 32])>;

impl AuditScan {
    /// Appends a scan of the entries that follow this one's.
    pub(crate) fn extend(&mut self, next: Self) {
        self.entries.extend(next.entries);
        self.malformed.extend(next.malformed);
        self.entry_bytes = self.entry_bytes.saturating_add(next.entry_bytes);
        self.nodes
            .resize_with(self.nodes.len().max(next.nodes.len()), Vec::new);
        for (level, nodes) in self.nodes.iter_mut().zip(next.nodes) {
            level.extend(nodes);
        }
    }

    /// Files the nodes stored in the row of entry `idx` under their levels; a row whose node
    /// columns are malformed files none of them and is listed in `malformed`.
    pub(crate) fn add_nodes(
        &mut self,
        idx: i64,
        leaf_hash: Option<&[u8]>,
        subtree_roots: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let index = u64::try_from(idx).map_err(|_| corrupt("audit index"))?;
        let leaf = leaf_hash.map(<[u8; 32]>::try_from).transpose();
        // Whole 32-byte hashes, no more than the leaf completes (`index` < 2^63, so fewer
        // than 64 and every shift below is in range).
        let roots_well_formed = subtree_roots.is_none_or(|roots| {
            roots.len().is_multiple_of(32)
                && roots.len() / 32 <= usize::try_from(index.trailing_ones()).unwrap_or(0)
        });
        let (Ok(leaf), true) = (leaf, roots_well_formed) else {
            self.malformed.push(idx);
            return Ok(());
        };
        if let Some(leaf) = leaf {
            self.level(0).push((index, leaf));
        }
        for (level, root) in (1u8..).zip(subtree_roots.unwrap_or_default().chunks_exact(32)) {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(root);
            // Leaf `(i + 1) * 2^l - 1` is `i` shifted up `l` places with ones below.
            self.level(level).push((index >> level, hash));
        }
        Ok(())
    }

    fn level(&mut self, level: u8) -> &mut LevelNodes {
        let at = usize::from(level);
        if self.nodes.len() <= at {
            self.nodes.resize_with(at + 1, Vec::new);
        }
        &mut self.nodes[at]
    }
}

/// Where a node is stored: the index of the entry whose row holds it, and for a node above the
/// leaves its 1-based byte offset in that row's `subtree_roots`, as SQL's `substr` counts (0 for
/// a leaf hash, kept in `leaf_hash`). `None` for a node beyond any index the store can hold.
#[must_use]
pub(crate) fn node_location(key: NodeKey) -> Option<(i64, i32)> {
    let leaf = key
        .index
        .checked_add(1)?
        .checked_mul(1u64.checked_shl(u32::from(key.level))?)?
        .checked_sub(1)?;
    let offset = match key.level {
        0 => 0,
        level => (i32::from(level) - 1) * 32 + 1,
    };
    Some((i64::try_from(leaf).ok()?, offset))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}

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
