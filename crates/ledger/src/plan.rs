//! Proof generation (RFC 9162 §2.1.3.1 PATH and §2.1.4.1 PROOF/SUBPROOF), split in two steps
//! so an async store can batch-read the O(log n) node hashes between them:
//! `ProofPlan::inclusion(..)` → `needed()` → read → `assemble(..)`.
//!
//! Every proof element is the hash of a range `[a, b)` of leaves that the RFC recursion visits.
//! Such a range is either a perfect subtree, or ends at the tree's right edge; in both cases it is
//! the right fold of its aligned binary decomposition into perfect subtrees, all of which are
//! complete (and immutable) at the requested size. So only perfect nodes are ever stored or read.

use crate::error::LedgerError;
use crate::frontier::NodeId;
use crate::hash::{Hash, fold_right};

/// Which perfect-subtree hashes a proof needs, and how to assemble it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPlan {
    /// One entry per output hash: the perfect subtrees to fold, left to right.
    elements: Vec<Vec<NodeId>>,
    /// Union of `elements`, sorted and deduplicated.
    needed: Vec<NodeId>,
}

/// Read access to perfect-subtree hashes, for sync stores and tests.
pub trait NodeSource {
    fn node(&self, id: NodeId) -> Option<Hash>;
}

/// Largest power of two strictly below `n`; callers guarantee `n >= 2`.
fn split_point(n: u64) -> u64 {
    let bits = 63u32.saturating_sub((n.saturating_sub(1)).leading_zeros());
    1u64 << bits
}

/// Aligned decomposition of `[start, end)` into perfect subtrees, largest first.
fn cover(mut start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    while start < end {
        let remaining = end - start;
        let fit = 63 - remaining.leading_zeros(); // floor(log2(remaining)), remaining >= 1
        let level = start.trailing_zeros().min(fit); // trailing_zeros(0) == 64 > fit
        out.push(NodeId::new(level as u8, start >> level));
        start += 1u64 << level; // <= end, no overflow
    }
    out
}

impl ProofPlan {
    fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let elements: Vec<Vec<NodeId>> = ranges.into_iter().map(|(a, b)| cover(a, b)).collect();
        let mut needed: Vec<NodeId> = elements.iter().flatten().copied().collect();
        needed.sort_unstable();
        needed.dedup();
        Self { elements, needed }
    }

    /// Audit path for leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1),
    /// leaf-side sibling first.
    pub fn inclusion(index: u64, size: u64) -> Result<Self, LedgerError> {
        if index >= size {
            return Err(LedgerError::IndexOutOfRange { index, size });
        }
        // Walk from the root down; PATH lists siblings bottom-up, hence the reverse.
        let mut siblings = Vec::new();
        let (mut start, mut n, mut m) = (0u64, size, index);
        while n > 1 {
            let k = split_point(n);
            if m < k {
                siblings.push((start + k, start + n));
                n = k;
            } else {
                siblings.push((start, start + k));
                start += k;
                m -= k;
                n -= k;
            }
        }
        siblings.reverse();
        Ok(Self::from_ranges(siblings))
    }

    /// Consistency proof from size `from` to size `to` (RFC 9162 §2.1.4.1), for `0 < from <= to`.
    /// Equal sizes give the empty proof. Size 0 is refused: any tree extends the empty one, and
    /// [`crate::verify_consistency`] rejects it too (RFC 9162 §2.1.4.2 requires `0 < first`).
    pub fn consistency(from: u64, to: u64) -> Result<Self, LedgerError> {
        if from == 0 || from > to {
            return Err(LedgerError::InvalidSizes { from, to });
        }
        // SUBPROOF(m, D[start:start+n], b), unrolled; elements collected top-down, then reversed.
        let mut parts = Vec::new();
        let (mut start, mut n, mut m, mut whole_old_tree) = (0u64, to, from, true);
        loop {
            if m == n {
                if !whole_old_tree {
                    parts.push((start, start + n));
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                parts.push((start + k, start + n));
                n = k;
            } else {
                parts.push((start, start + k));
                start += k;
                m -= k;
                n -= k;
                whole_old_tree = false;
            }
        }
        parts.reverse();
        Ok(Self::from_ranges(parts))
    }

    /// Root of the tree at an older `size` (the empty root for 0).
    pub fn root(size: u64) -> Result<Self, LedgerError> {
        Ok(Self::from_ranges([(0, size)]))
    }

    /// The perfect-subtree ids to read: O(log n), sorted, deduplicated.
    #[must_use]
    pub fn needed(&self) -> &[NodeId] {
        &self.needed
    }

    /// Number of hashes `assemble` returns.
    #[must_use]
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Builds the proof (or, for [`ProofPlan::root`], the one-element root) from node hashes.
    pub fn assemble(
        &self,
        hashes: &dyn Fn(NodeId) -> Option<Hash>,
    ) -> Result<Vec<Hash>, LedgerError> {
        let mut out = Vec::with_capacity(self.elements.len());
        let mut buf = Vec::new();
        for element in &self.elements {
            buf.clear();
            for &id in element {
                buf.push(hashes(id).ok_or(LedgerError::MissingNode(id))?);
            }
            out.push(fold_right(&buf));
        }
        Ok(out)
    }
}

/// Inclusion proof read from a synchronous [`NodeSource`].
pub fn inclusion_proof(
    src: &dyn NodeSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, LedgerError> {
    ProofPlan::inclusion(index, size)?.assemble(&|id| src.node(id))
}

/// Consistency proof read from a synchronous [`NodeSource`].
pub fn consistency_proof(
    src: &dyn NodeSource,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, LedgerError> {
    ProofPlan::consistency(from, to)?.assemble(&|id| src.node(id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
    }

    #[test]
    fn covers() {
        assert!(cover(5, 5).is_empty());
        assert_eq!(cover(4, 7), vec![NodeId::new(1, 2), NodeId::new(0, 6)]);
        assert_eq!(cover(0, 8), vec![NodeId::new(3, 0)]);
        assert_eq!(cover(0, u64::MAX).len(), 64);
        assert_eq!(cover(0, u64::MAX)[0], NodeId::new(63, 0));
        assert_eq!(
            cover(u64::MAX - 1, u64::MAX),
            vec![NodeId::new(0, u64::MAX - 1)]
        );
    }

    #[test]
    fn rfc_example_shapes() {
        // RFC 9162 §2.1.5 examples on the 7-leaf tree (a..g leaves, j,k,l / i... nodes).
        let p = ProofPlan::inclusion(0, 7).unwrap();
        assert_eq!(
            p.elements,
            vec![
                vec![NodeId::new(0, 1)],
                vec![NodeId::new(1, 1)],
                vec![NodeId::new(1, 2), NodeId::new(0, 6)]
            ]
        );
        let p = ProofPlan::inclusion(6, 7).unwrap();
        assert_eq!(
            p.elements,
            vec![vec![NodeId::new(1, 2)], vec![NodeId::new(2, 0)]]
        );
        // PROOF(3, D[7]) = [c, d, g, l]
        let p = ProofPlan::consistency(3, 7).unwrap();
        assert_eq!(
            p.elements,
            vec![
                vec![NodeId::new(0, 2)],
                vec![NodeId::new(0, 3)],
                vec![NodeId::new(1, 0)],
                vec![NodeId::new(1, 2), NodeId::new(0, 6)]
            ]
        );
        // PROOF(4, D[7]) = [l]; PROOF(6, D[7]) = [i, j, k]
        assert_eq!(
            ProofPlan::consistency(4, 7).unwrap().elements,
            vec![vec![NodeId::new(1, 2), NodeId::new(0, 6)]]
        );
        assert_eq!(
            ProofPlan::consistency(6, 7).unwrap().elements,
            vec![
                vec![NodeId::new(1, 2)],
                vec![NodeId::new(0, 6)],
                vec![NodeId::new(2, 0)]
            ]
        );
    }

    #[test]
    fn edge_sizes_do_not_panic() {
        assert!(ProofPlan::inclusion(0, 0).is_err());
        assert!(ProofPlan::inclusion(u64::MAX, u64::MAX).is_err());
        // The last leaf of a 2^64-1 leaf tree sits at depth 63, the first at depth 64.
        assert_eq!(
            ProofPlan::inclusion(u64::MAX - 1, u64::MAX).unwrap().len(),
            63
        );
        assert_eq!(ProofPlan::inclusion(0, u64::MAX).unwrap().len(), 64);
        assert!(ProofPlan::consistency(0, 5).is_err());
        assert!(ProofPlan::consistency(6, 5).is_err());
        assert!(ProofPlan::consistency(5, 5).unwrap().is_empty());
        let p = ProofPlan::consistency(1, u64::MAX).unwrap();
        assert_eq!(p.len(), 64);
        let p = ProofPlan::consistency(u64::MAX - 1, u64::MAX).unwrap();
        assert!(p.len() <= 128);
        let r = ProofPlan::root(0).unwrap();
        assert_eq!(r.assemble(&|_| None).unwrap(), vec![crate::empty_root()]);
        assert_eq!(ProofPlan::root(u64::MAX).unwrap().needed().len(), 64);
    }

    #[test]
    fn missing_node_is_reported() {
        let p = ProofPlan::inclusion(0, 2).unwrap();
        assert_eq!(
            p.assemble(&|_| None),
            Err(LedgerError::MissingNode(NodeId::new(0, 1)))
        );
    }
}
