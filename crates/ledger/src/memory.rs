//! An in-memory tree holding every perfect node: the reference store for tests and benchmarks.

use crate::error::LedgerError;
use crate::frontier::{Frontier, NodeId};
use crate::hash::{Hash, leaf_hash};
use crate::plan::{NodeSource, ProofPlan, consistency_proof, inclusion_proof};

/// Leaves and all perfect-subtree hashes in memory (~64 bytes per leaf).
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is the hash of `NodeId { level: l, index: i }`; `levels[0]` are the leaves.
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (hashed with [`leaf_hash`]) and returns its index.
    pub fn push_entry(&mut self, entry: &[u8]) -> Result<u64, LedgerError> {
        self.push_leaf_hash(leaf_hash(entry))
    }

    /// Appends an already-computed leaf hash and returns its index.
    pub fn push_leaf_hash(&mut self, leaf: Hash) -> Result<u64, LedgerError> {
        let index = self.frontier.size();
        for (id, hash) in self.frontier.append(leaf)? {
            let level = usize::from(id.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            if let Some(row) = self.levels.get_mut(level) {
                row.push(hash);
            }
        }
        Ok(index)
    }

    #[must_use]
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Current root.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The appender's frontier (what a store would persist).
    #[must_use]
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    fn check_size(&self, requested: u64) -> Result<(), LedgerError> {
        if requested > self.size() {
            return Err(LedgerError::BeyondTreeSize {
                requested,
                size: self.size(),
            });
        }
        Ok(())
    }

    /// Root at an older `size <= self.size()`.
    pub fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        self.check_size(size)?;
        let hashes = ProofPlan::root(size)?.assemble(&|id| self.node(id))?;
        Ok(hashes
            .first()
            .copied()
            .unwrap_or_else(crate::hash::empty_root))
    }

    /// Leaf hash at `index`.
    #[must_use]
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.node(NodeId::new(0, index))
    }

    /// Inclusion proof for `index` in the tree at `size <= self.size()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(size)?;
        inclusion_proof(self, index, size)
    }

    /// Consistency proof between two sizes `<= self.size()`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(to)?;
        consistency_proof(self, from, to)
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, id: NodeId) -> Option<Hash> {
        let row = self.levels.get(usize::from(id.level))?;
        row.get(usize::try_from(id.index).ok()?).copied()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::hash::{empty_root, node_hash};

    #[test]
    fn roots_at_all_sizes() {
        let mut t = MemoryTree::new();
        assert_eq!(t.root(), empty_root());
        let mut roots = vec![t.root()];
        for i in 0u32..40 {
            assert_eq!(t.push_entry(&i.to_be_bytes()).unwrap(), u64::from(i));
            roots.push(t.root());
        }
        for (size, root) in roots.iter().enumerate() {
            assert_eq!(t.root_at(size as u64).unwrap(), *root);
        }
        assert!(t.root_at(41).is_err());
        assert!(t.inclusion_proof(0, 41).is_err());
        assert!(t.consistency_proof(1, 41).is_err());
        assert_eq!(
            t.root_at(2).unwrap(),
            node_hash(&t.leaf(0).unwrap(), &t.leaf(1).unwrap())
        );
        assert_eq!(t.node(NodeId::new(200, 0)), None);
        assert_eq!(t.node(NodeId::new(0, u64::MAX)), None);
    }
}
