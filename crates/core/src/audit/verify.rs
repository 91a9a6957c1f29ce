//! Offline verification of a stored audit log: one streaming pass over the entries, in index order,
//! that recomputes every leaf and perfect-subtree hash and checks each signed checkpoint against the
//! tree recomputed at its size. Memory stays constant in the number of entries (the digests of the
//! pages being walked and read, plus the O(log n) frontier); only the checkpoint list is read
//! whole, as the store offers it.
//!
//! The first failure wins, in stream order, so the report names the lowest index where the stored
//! log stops being the log that was signed.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};

use strongroom_ledger::{Checkpoint, Frontier, Hash, NodeId, NoteVerifier, leaf_hash};
use strongroom_store::{LevelNodes, ScannedEntry, Store, StoreError};

mod head;

use head::{check_entry, digest_entry};

/// Entries read per store call. Only their digests and the page's nodes are held, ≈ 80 bytes an
/// entry; the page walked and those being read are in memory at once.
const PAGE: u32 = 16384;

/// Pages being read at once: the next to walk and two behind it. SQLite reads a page as two
/// halves on two connections; with reads queued behind it, each connection goes on to its half
/// of a following page when it finishes, instead of waiting for the slower half.
const PAGES_IN_FLIGHT: usize = 3;

/// What a successful verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries read, hashed and checked against the stored tree.
    pub entries: u64,
    /// Signed checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The largest signed checkpoint, if any.
    pub latest: Option<Checkpoint>,
    /// The root recomputed over all `entries`.
    pub root: Hash,
    /// Entry bytes fed to the leaf hash.
    pub bytes_hashed: u64,
    pub elapsed: Duration,
}

impl VerifyReport {
    /// Entries appended after the latest checkpoint: checked against the stored tree but not
    /// yet covered by a signature (the server signs within a second of an append).
    #[must_use]
    pub fn unsigned_tail(&self) -> u64 {
        self.entries
            .saturating_sub(self.latest.as_ref().map_or(0, |c| c.size))
    }
}

/// Why the log failed verification at [`Failure::index`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No entry is stored at this index although later ones are.
    Gap,
    /// The entry does not parse as a version-1 entry.
    Unreadable(String),
    /// The entry's own `index` member names another position (entries moved or swapped).
    IndexMismatch { claimed: u64 },
    /// The `tenant_id` column (used to serve tenants their access log) differs from the entry's.
    TenantMismatch,
    /// The stored leaf hash (level-0 node) differs from the hash of the entry bytes.
    LeafMismatch,
    /// A stored perfect-subtree node differs from the one recomputed from the entries.
    NodeMismatch { level: u8, node_index: u64 },
    /// A tree node that must exist is missing.
    NodeMissing { level: u8, node_index: u64 },
    /// The entry's row holds tree hashes of the wrong length, or more than its leaf completes.
    NodesMalformed,
    /// The checkpoint stored for this tree size does not verify under the log's key.
    CheckpointSignature { size: u64, error: String },
    /// The checkpoint row's size or origin does not match its signed body.
    CheckpointMismatch { size: u64, what: &'static str },
    /// A signed checkpoint's root differs from the root recomputed at its size: entries in
    /// `[since, size)` were changed after it was signed (earlier ones match an earlier one).
    CheckpointRoot { size: u64, since: u64 },
    /// The latest checkpoint covers more entries than are stored: the tail was removed.
    Truncated { checkpoint_size: u64 },
    /// An entry is stored past the log's end (PostgreSQL keeps the head apart from the entries):
    /// served to auditors and tenants, vouched for by nothing.
    BeyondEnd,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gap => write!(f, "entry missing (deleted?)"),
            Self::Unreadable(why) => write!(f, "entry unreadable: {why}"),
            Self::IndexMismatch { claimed } => {
                write!(f, "entry claims index {claimed} (entries moved or swapped)")
            }
            Self::TenantMismatch => {
                write!(f, "tenant_id column differs from the entry's tenant_id")
            }
            Self::LeafMismatch => write!(
                f,
                "entry bytes do not hash to the stored leaf hash (entry modified)"
            ),
            Self::NodeMismatch { level, node_index } => write!(
                f,
                "stored tree node (level {level}, index {node_index}) differs from the one \
                 recomputed from the {} entries it covers (one of them, or the node, modified)",
                1u64.checked_shl(u32::from(*level)).unwrap_or(u64::MAX)
            ),
            Self::NodeMissing { level, node_index } => {
                write!(f, "tree node (level {level}, index {node_index}) missing")
            }
            Self::NodesMalformed => write!(
                f,
                "the row's stored tree hashes are malformed (wrong length or too many)"
            ),
            Self::CheckpointSignature { size, error } => {
                write!(
                    f,
                    "checkpoint for tree size {size} does not verify: {error}"
                )
            }
            Self::CheckpointMismatch { size, what } => {
                write!(f, "checkpoint row for tree size {size}: {what}")
            }
            Self::CheckpointRoot { size, since } => write!(
                f,
                "checkpoint for tree size {size} does not match the entries: \
                 some entry in [{since}, {size}) was changed after it was signed"
            ),
            Self::Truncated { checkpoint_size } => write!(
                f,
                "a signed checkpoint covers {checkpoint_size} entries but the log ends here (tail removed)"
            ),
            Self::BeyondEnd => write!(
                f,
                "an entry is stored past the log's end (inserted behind the log's back?)"
            ),
        }
    }
}

/// The first place where the stored log is not the signed log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The first bad entry index; for checkpoint failures, the tree size the checkpoint claims.
    pub index: u64,
    pub kind: FailureKind,
    /// What had been verified before the failure.
    pub entries_verified: u64,
    pub checkpoints_verified: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "index {}: {}", self.index, self.kind)
    }
}

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log is not intact.
    #[error("audit log fails verification at {0}")]
    Invalid(Failure),
    /// The log could not be read (not evidence of tampering).
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
}

/// Checkpoints still ahead of the stream, smallest first.
struct Pending {
    queue: VecDeque<(u64, String)>,
    verified: u64,
    latest: Option<Checkpoint>,
    /// Size of the last checkpoint that matched, so a mismatch can bound where the change is.
    last_good: u64,
}

struct Walk<'a> {
    verifier: &'a NoteVerifier,
    frontier: Frontier,
    checkpoints: Pending,
    bytes: u64,
}

impl Walk<'_> {
    fn fail(&self, index: u64, kind: FailureKind) -> VerifyError {
        VerifyError::Invalid(Failure {
            index,
            kind,
            entries_verified: self.frontier.size(),
            checkpoints_verified: self.checkpoints.verified,
        })
    }

    /// Checks every checkpoint whose size equals the current tree size.
    fn check_checkpoints_here(&mut self) -> Result<(), VerifyError> {
        let size = self.frontier.size();
        while let Some((claimed, note)) = self.checkpoints.queue.front() {
            if *claimed != size {
                break;
            }
            let cp = match self.verifier.verify_checkpoint(note) {
                Ok(cp) => cp,
                Err(e) => {
                    let error = e.to_string();
                    return Err(self.fail(size, FailureKind::CheckpointSignature { size, error }));
                }
            };
            if cp.size != size {
                let what = "size column differs from the signed size";
                return Err(self.fail(size, FailureKind::CheckpointMismatch { size, what }));
            }
            if cp.origin != self.verifier.name() {
                let what = "origin differs from the log's key name";
                return Err(self.fail(size, FailureKind::CheckpointMismatch { size, what }));
            }
            if cp.root != self.frontier.root() {
                let since = self.checkpoints.last_good;
                return Err(self.fail(since, FailureKind::CheckpointRoot { size, since }));
            }
            self.checkpoints.queue.pop_front();
            self.checkpoints.verified += 1;
            self.checkpoints.last_good = size;
            self.checkpoints.latest = Some(cp);
        }
        Ok(())
    }

    /// Verifies one page of entries starting at the current size, against the stored nodes that
    /// those entries complete (the page may hold more). `read_whole` holds the leaf hash, or the
    /// failure, of each entry whose digest could not be taken where it was read.
    fn page(
        &mut self,
        page: &Page,
        read_whole: &HashMap<i64, Result<Hash, FailureKind>>,
    ) -> Result<(), VerifyError> {
        let stored = &page.stored;
        for entry in &page.entries {
            let index = self.frontier.size();
            if u64::try_from(entry.idx).ok() != Some(index) {
                return Err(self.fail(index, FailureKind::Gap));
            }
            if page.malformed.contains(&entry.idx) {
                return Err(self.fail(index, FailureKind::NodesMalformed));
            }
            let leaf = match (entry.digest, read_whole.get(&entry.idx)) {
                (Some(leaf), _) => leaf,
                (None, Some(Ok(leaf))) => *leaf,
                (None, Some(Err(kind))) => return Err(self.fail(index, kind.clone())),
                // Gone between the scan and the whole read.
                (None, None) => return Err(self.fail(index, FailureKind::Gap)),
            };
            // The first completed node that differs from (or is missing in) the store.
            let mut mismatch = None;
            let appended = self.frontier.append_visit(leaf, |id, hash| {
                if mismatch.is_some() {
                    return;
                }
                mismatch = match stored.get(id) {
                    Some(h) if *h == hash => None,
                    Some(_) if id.level == 0 => Some(FailureKind::LeafMismatch),
                    Some(_) => Some(FailureKind::NodeMismatch {
                        level: id.level,
                        node_index: id.index,
                    }),
                    None => Some(FailureKind::NodeMissing {
                        level: id.level,
                        node_index: id.index,
                    }),
                };
            });
            if let Err(e) = appended {
                return Err(self.fail(index, FailureKind::Unreadable(e.to_string())));
            }
            if let Some(kind) = mismatch {
                // A node that differs says that one of the entries it covers (or the node itself)
                // was changed, not which: the first bad index is the first of them that no
                // verified checkpoint vouches for.
                let index = match kind {
                    FailureKind::NodeMismatch { level, node_index } => node_index
                        .checked_shl(u32::from(level))
                        .unwrap_or(index)
                        .max(self.checkpoints.last_good)
                        .min(index),
                    _ => index,
                };
                return Err(VerifyError::Invalid(Failure {
                    index,
                    kind,
                    entries_verified: index,
                    checkpoints_verified: self.checkpoints.verified,
                }));
            }
            self.check_checkpoints_here()?;
        }
        Ok(())
    }
}

/// The tree nodes stored with a page of entries, looked up by level and index.
struct StoredNodes {
    /// By level, by index.
    levels: Vec<LevelNodes>,
}

impl StoredNodes {
    fn get(&self, id: NodeId) -> Option<&Hash> {
        let nodes = self.levels.get(usize::from(id.level))?;
        let (first, _) = nodes.first()?;
        let offset = usize::try_from(id.index.checked_sub(*first)?).ok()?;
        // Nodes are contiguous unless some are missing; then search.
        match nodes.get(offset) {
            Some((index, hash)) if *index == id.index => Some(hash),
            _ => nodes
                .binary_search_by_key(&id.index, |(index, _)| *index)
                .ok()
                .and_then(|at| nodes.get(at))
                .map(|(_, hash)| hash),
        }
    }
}

/// A page of the log as the walk takes it.
struct Page {
    /// How many entries the page should hold: every index from its start, below the end.
    expected: u32,
    entries: Vec<ScannedEntry>,
    /// Rows whose stored tree hashes are malformed.
    malformed: Vec<i64>,
    entry_bytes: u64,
    stored: StoredNodes,
}

/// Up to `page` entries from `start` (below `end`) and the tree nodes stored with them, in one
/// store call.
async fn read_page(store: &dyn Store, start: u64, end: u64, page: u32) -> Result<Page, StoreError> {
    let count = u32::try_from(end.saturating_sub(start)).map_or(page, |left| left.min(page));
    if count == 0 {
        return Ok(Page {
            expected: 0,
            entries: Vec::new(),
            malformed: Vec::new(),
            entry_bytes: 0,
            stored: StoredNodes { levels: Vec::new() },
        });
    }
    let scan = store.audit_scan(start, count, digest_entry).await?;
    Ok(Page {
        expected: count,
        entries: scan.entries,
        malformed: scan.malformed,
        entry_bytes: scan.entry_bytes,
        stored: StoredNodes { levels: scan.nodes },
    })
}

/// Reads whole the entries of `page` whose digest could not be taken where they were read
/// (none in a log the server wrote): the full parse names what is wrong with each, or
/// accepts it and hashes it here.
async fn read_whole(
    store: &dyn Store,
    page: &Page,
) -> Result<HashMap<i64, Result<Hash, FailureKind>>, StoreError> {
    let mut judged = HashMap::new();
    for entry in page.entries.iter().filter(|entry| entry.digest.is_none()) {
        let Ok(index) = u64::try_from(entry.idx) else {
            continue;
        };
        let rows = store.audit_entries(index, 1).await?;
        let verdict = match rows.first() {
            Some(row) if row.idx == entry.idx => {
                check_entry(row.as_entry_ref(), index).map(|()| leaf_hash(&row.entry))
            }
            _ => Err(FailureKind::Gap),
        };
        let failed = verdict.is_err();
        judged.insert(entry.idx, verdict);
        // The walk stops at this entry at the latest.
        if failed {
            break;
        }
    }
    Ok(judged)
}

/// Verifies the whole stored log against `verifier`, the log's note key (whose name is the origin).
///
/// Checks, in index order: no gaps; each entry's `index` member equals its position; each leaf and
/// every perfect-subtree node recomputed from the entries equals the stored one; each stored
/// checkpoint verifies, names our origin, and has the root recomputed at its size (so all
/// checkpoints are mutually consistent: they are prefixes of one tree); finally, no checkpoint
/// claims more entries than are stored.
pub async fn verify_store(
    store: &dyn Store,
    verifier: &NoteVerifier,
) -> Result<VerifyReport, VerifyError> {
    verify_in_pages(store, verifier, &[], PAGE).await
}

/// [`verify_store`], with checkpoints held outside the store (a monitor's trusted one) checked
/// like the stored ones: the log must hold each at its size. The stored checkpoints alone cannot
/// show that some were deleted and the entries after them rewritten or removed; one kept
/// elsewhere can.
pub async fn verify_store_against(
    store: &dyn Store,
    verifier: &NoteVerifier,
    trusted: &[String],
) -> Result<VerifyReport, VerifyError> {
    verify_in_pages(store, verifier, trusted, PAGE).await
}

/// [`verify_store_against`], reading `page` entries per store call.
async fn verify_in_pages(
    store: &dyn Store,
    verifier: &NoteVerifier,
    trusted: &[String],
    page_entries: u32,
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let mut queue = VecDeque::new();
    for note in trusted {
        match verifier.verify_checkpoint(note) {
            Ok(cp) => queue.push_back((cp.size, note.clone())),
            Err(e) => {
                return Err(VerifyError::Invalid(Failure {
                    index: 0,
                    kind: FailureKind::CheckpointSignature {
                        size: 0,
                        error: format!("a trusted checkpoint does not verify: {e}"),
                    },
                    entries_verified: 0,
                    checkpoints_verified: 0,
                }));
            }
        }
    }
    for row in store.checkpoints().await? {
        let Ok(size) = u64::try_from(row.size) else {
            return Err(VerifyError::Invalid(Failure {
                index: 0,
                kind: FailureKind::CheckpointMismatch {
                    size: 0,
                    what: "negative size column",
                },
                entries_verified: 0,
                checkpoints_verified: 0,
            }));
        };
        queue.push_back((size, row.note));
    }
    queue.make_contiguous().sort_by_key(|(size, _)| *size);
    // The log as it is now, after the checkpoints were read, so that none claims more: entries
    // appended while we verify are left for the next run, and every entry and node below this
    // size is committed whichever snapshot reads it.
    let end = store.audit_size().await?;
    let mut walk = Walk {
        verifier,
        frontier: Frontier::new(),
        checkpoints: Pending {
            queue,
            verified: 0,
            latest: None,
            last_good: 0,
        },
        bytes: 0,
    };
    walk.check_checkpoints_here()?;
    // Pages are read at fixed starts, so an empty page (a run of deleted entries) is a gap at
    // the next entry read, not the end of the log.
    let step = usize::try_from(page_entries.max(1)).unwrap_or(usize::MAX);
    let mut pages = stream::iter((0..end).step_by(step))
        .map(|start| read_page(store, start, end, page_entries))
        .buffered(PAGES_IN_FLIGHT);
    while let Some(page) = pages.next().await {
        let page = page?;
        let read_whole = read_whole(store, &page).await?;
        walk.page(&page, &read_whole)?;
        walk.bytes = walk.bytes.saturating_add(page.entry_bytes);
        // A page short of entries has a gap where the walk stopped: said now, not after reading
        // every empty page up to an entry far beyond it (one stray row at a huge index).
        if page.entries.len() < usize::try_from(page.expected).unwrap_or(usize::MAX) {
            return Err(walk.fail(walk.frontier.size(), FailureKind::Gap));
        }
    }
    if let Some((checkpoint_size, _)) = walk.checkpoints.queue.front() {
        let checkpoint_size = *checkpoint_size;
        return Err(walk.fail(
            walk.frontier.size(),
            FailureKind::Truncated { checkpoint_size },
        ));
    }
    if walk.frontier.size() < end {
        // The store counts entries past the last one read: the last ones were removed.
        return Err(walk.fail(walk.frontier.size(), FailureKind::Gap));
    }
    // A row past the end that no append explains: one committed since `end` was read is
    // below the size read after it (entries and the head commit together).
    if let Some(row) = store.audit_entries(end, 1).await?.first() {
        let idx = u64::try_from(row.idx).unwrap_or(u64::MAX);
        if idx >= store.audit_size().await? {
            return Err(walk.fail(idx, FailureKind::BeyondEnd));
        }
    }
    Ok(VerifyReport {
        entries: walk.frontier.size(),
        checkpoints: walk.checkpoints.verified,
        latest: walk.checkpoints.latest,
        root: walk.frontier.root(),
        bytes_hashed: walk.bytes,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(super) mod tests;
