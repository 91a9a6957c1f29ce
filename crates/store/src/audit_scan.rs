//! Pages of the audit log as whole-log verification reads them: packed entries and the stored
//! nodes they complete.

use std::ops::Range;

use crate::rows::AuditEntryRow;

/// The stored nodes of one tree level with `first <= index <= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeRange {
    pub level: u8,
    pub first: u64,
    pub last: u64,
}

/// A run of the audit log read for verifying the whole log: consecutive entries, and the stored
/// nodes of each requested [`NodeRange`] (one list per range, in the same order, by index;
/// absent nodes are simply not in their list).
#[derive(Clone, Debug, Default)]
pub struct AuditScan {
    pub entries: AuditEntryPage,
    pub nodes: Vec<RangeNodes>,
}

/// The stored nodes of one [`NodeRange`]: `(index, hash)` by index.
pub type RangeNodes = Vec<(u64, [u8; 32])>;

/// Audit entries packed into two buffers: a verifier reads millions, and two allocations per
/// entry cost as much as reading it.
#[derive(Clone, Debug, Default)]
pub struct AuditEntryPage {
    tenants: String,
    entries: Vec<u8>,
    rows: Vec<PackedEntry>,
}

#[derive(Clone, Debug)]
struct PackedEntry {
    idx: i64,
    tenant: Option<Range<usize>>,
    entry: Range<usize>,
}

/// One stored audit entry, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditEntryRef<'a> {
    pub idx: i64,
    pub tenant_id: Option<&'a str>,
    pub entry: &'a [u8],
}

impl AuditEntryPage {
    /// Room for `rows` entries of `entry_bytes` in all.
    #[must_use]
    pub fn with_capacity(rows: usize, entry_bytes: usize) -> Self {
        Self {
            tenants: String::with_capacity(rows.saturating_mul(36)),
            entries: Vec::with_capacity(entry_bytes),
            rows: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, row: AuditEntryRef<'_>) {
        let tenant = row.tenant_id.map(|tenant| {
            let start = self.tenants.len();
            self.tenants.push_str(tenant);
            start..self.tenants.len()
        });
        let start = self.entries.len();
        self.entries.extend_from_slice(row.entry);
        self.rows.push(PackedEntry {
            idx: row.idx,
            tenant,
            entry: start..self.entries.len(),
        });
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = AuditEntryRef<'_>> {
        // The ranges were cut at `push`, so both lookups always succeed.
        self.rows.iter().map(|row| AuditEntryRef {
            idx: row.idx,
            tenant_id: row.tenant.clone().and_then(|range| self.tenants.get(range)),
            entry: self.entries.get(row.entry.clone()).unwrap_or_default(),
        })
    }
}

impl FromIterator<AuditEntryRow> for AuditEntryPage {
    fn from_iter<I: IntoIterator<Item = AuditEntryRow>>(rows: I) -> Self {
        let mut page = Self::default();
        for row in rows {
            page.push(row.as_entry_ref());
        }
        page
    }
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
