//! The right frontier of the tree: one perfect-subtree hash per set bit of the size.
//! It is all an appender needs, and what the store keeps to restart without rereading leaves.

use crate::error::LedgerError;
use crate::hash::{Hash, fold_right, node_hash};

/// Id of a *perfect* subtree: level `L`, index `i` covers leaves `[i*2^L, (i+1)*2^L)`.
///
/// Perfect subtrees never change once complete, so `(level, index)` is a stable storage key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    #[must_use]
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// First leaf covered, or `None` if the id lies beyond `u64` leaves.
    #[must_use]
    pub fn first_leaf(self) -> Option<u64> {
        // checked_shl only refuses shifts >= 64; also refuse bits shifted out.
        self.index
            .checked_shl(u32::from(self.level))
            .filter(|first| first >> self.level == self.index)
    }
}

/// Right frontier of the tree: O(log n) hashes, enough to append and compute the root.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    /// Perfect subtrees left to right, i.e. by strictly decreasing level.
    nodes: Vec<(NodeId, Hash)>,
}

impl Frontier {
    /// The empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves appended so far.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Current root (RFC 9162 MTH); [`crate::empty_root`] for size 0.
    #[must_use]
    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.nodes.iter().map(|(_, h)| *h).collect();
        fold_right(&hashes)
    }

    /// The frontier's nodes, in [`Frontier::node_ids_for_size`] order.
    #[must_use]
    pub fn nodes(&self) -> &[(NodeId, Hash)] {
        &self.nodes
    }

    /// Appends a leaf hash; returns every perfect-subtree node that became complete
    /// (the leaf itself at level 0 first, then its ancestors bottom-up), so the caller
    /// can persist them. Fails only when the tree already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash) -> Result<Vec<(NodeId, Hash)>, LedgerError> {
        let mut completed = Vec::with_capacity(2);
        self.append_visit(leaf, |id, hash| completed.push((id, hash)))?;
        Ok(completed)
    }

    /// [`Frontier::append`] without allocating: `visit` sees the completed nodes in the same
    /// order. Rebuilding millions of leaves (verification) is bound by hashing, not the allocator.
    pub fn append_visit(
        &mut self,
        leaf: Hash,
        mut visit: impl FnMut(NodeId, Hash),
    ) -> Result<(), LedgerError> {
        let new_size = self.size.checked_add(1).ok_or(LedgerError::TreeFull)?;
        let mut cur = (NodeId::new(0, self.size), leaf);
        visit(cur.0, cur.1);
        // Merge while the rightmost frontier node is the left sibling of `cur`.
        while let Some(&(left_id, left_hash)) = self.nodes.last() {
            if left_id.level != cur.0.level {
                break;
            }
            self.nodes.pop();
            cur = (
                NodeId::new(left_id.level.saturating_add(1), left_id.index / 2),
                node_hash(&left_hash, &cur.1),
            );
            visit(cur.0, cur.1);
        }
        self.nodes.push(cur);
        self.size = new_size;
        Ok(())
    }

    /// The `NodeId`s whose hashes rebuild a frontier of `size` (for restart from storage),
    /// left to right: one per set bit of `size`, highest level first.
    #[must_use]
    pub fn node_ids_for_size(size: u64) -> Vec<NodeId> {
        (0u8..64)
            .rev()
            .filter(|&level| (size >> level) & 1 == 1)
            .map(|level| NodeId::new(level, (size >> level) - 1))
            .collect()
    }

    /// Rebuilds a frontier from the hashes of [`Frontier::node_ids_for_size`], in that order.
    pub fn from_nodes(size: u64, hashes: &[Hash]) -> Result<Self, LedgerError> {
        let ids = Self::node_ids_for_size(size);
        if ids.len() != hashes.len() {
            return Err(LedgerError::FrontierLength {
                size,
                expected: ids.len(),
                actual: hashes.len(),
            });
        }
        Ok(Self {
            size,
            nodes: ids.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::hash::{empty_root, leaf_hash};

    #[test]
    fn small_trees() {
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        let l: Vec<Hash> = (0u8..4).map(|i| leaf_hash(&[i])).collect();

        let c = f.append(l[0]).unwrap();
        assert_eq!(c, vec![(NodeId::new(0, 0), l[0])]);
        assert_eq!(f.root(), l[0]);

        let c = f.append(l[1]).unwrap();
        let n01 = node_hash(&l[0], &l[1]);
        assert_eq!(c, vec![(NodeId::new(0, 1), l[1]), (NodeId::new(1, 0), n01)]);
        assert_eq!(f.root(), n01);

        let c = f.append(l[2]).unwrap();
        assert_eq!(c, vec![(NodeId::new(0, 2), l[2])]);
        assert_eq!(f.root(), node_hash(&n01, &l[2]));

        let c = f.append(l[3]).unwrap();
        let n23 = node_hash(&l[2], &l[3]);
        let n03 = node_hash(&n01, &n23);
        assert_eq!(c.len(), 3);
        assert_eq!(c[2], (NodeId::new(2, 0), n03));
        assert_eq!(f.root(), n03);
        assert_eq!(f.size(), 4);
    }

    #[test]
    fn append_visit_sees_what_append_returns() {
        let (mut a, mut b) = (Frontier::new(), Frontier::new());
        for i in 0u16..300 {
            let leaf = leaf_hash(&i.to_be_bytes());
            let returned = a.append(leaf).unwrap();
            let mut seen = Vec::new();
            b.append_visit(leaf, |id, hash| seen.push((id, hash)))
                .unwrap();
            assert_eq!(returned, seen);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn node_ids() {
        assert!(Frontier::node_ids_for_size(0).is_empty());
        assert_eq!(
            Frontier::node_ids_for_size(6),
            vec![NodeId::new(2, 0), NodeId::new(1, 2)]
        );
        let max = Frontier::node_ids_for_size(u64::MAX);
        assert_eq!(max.len(), 64);
        assert_eq!(max[0], NodeId::new(63, 0));
        assert_eq!(max[63], NodeId::new(0, u64::MAX - 1));
    }

    #[test]
    fn full_tree_is_an_error_not_a_panic() {
        let hashes = vec![[7u8; 32]; 64];
        let mut f = Frontier::from_nodes(u64::MAX, &hashes).unwrap();
        assert_eq!(f.append([0; 32]), Err(LedgerError::TreeFull));
        assert_eq!(f.size(), u64::MAX);
        assert!(Frontier::from_nodes(3, &hashes).is_err());
    }

    #[test]
    fn first_leaf() {
        assert_eq!(NodeId::new(3, 2).first_leaf(), Some(16));
        assert_eq!(NodeId::new(63, 1).first_leaf(), Some(1 << 63));
        assert_eq!(NodeId::new(63, 2).first_leaf(), None);
        assert_eq!(NodeId::new(64, 0).first_leaf(), None);
        assert_eq!(NodeId::new(255, 1).first_leaf(), None);
    }
}
