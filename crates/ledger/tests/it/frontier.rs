//! Frontier restart from stored nodes, at many sizes.

use proptest::prelude::*;
use strongroom_ledger::{Frontier, Hash, MemoryTree, NodeSource, ProofPlan};

use crate::naive;

#[test]
fn from_nodes_round_trip_every_size_to_600() {
    let leaves = naive::leaves(600, 1);
    let mut tree = MemoryTree::new();
    let mut frontiers = vec![tree.frontier().clone()];
    for l in &leaves {
        tree.push_leaf_hash(*l).unwrap();
        frontiers.push(tree.frontier().clone());
    }
    for (size, expected) in frontiers.iter().enumerate() {
        let size = size as u64;
        let ids = Frontier::node_ids_for_size(size);
        assert_eq!(ids.len(), size.count_ones() as usize);
        let hashes: Vec<Hash> = ids.iter().map(|id| tree.node(*id).unwrap()).collect();
        let mut restored = Frontier::from_nodes(size, &hashes).unwrap();
        assert_eq!(&restored, expected, "size {size}");
        assert_eq!(restored.root(), tree.root_at(size).unwrap());
        assert_eq!(restored.root(), naive::mth(&leaves[..size as usize]));
        // The restored frontier keeps appending exactly like the original did.
        for (i, l) in leaves.iter().enumerate().skip(size as usize).take(40) {
            let completed = restored.append(*l).unwrap();
            for (id, h) in completed {
                assert_eq!(
                    tree.node(id),
                    Some(h),
                    "node {id:?} after restart at {size}"
                );
            }
            assert_eq!(restored.root(), tree.root_at(i as u64 + 1).unwrap());
        }
        // Wrong hash counts are refused.
        assert!(Frontier::from_nodes(size, &[hashes.as_slice(), &[[0; 32]]].concat()).is_err());
        if !hashes.is_empty() {
            assert!(Frontier::from_nodes(size, &hashes[1..]).is_err());
        }
    }
}

#[test]
fn append_reports_each_perfect_node_once() {
    let mut f = Frontier::new();
    let mut seen = std::collections::BTreeSet::new();
    for l in naive::leaves(1024, 2) {
        for (id, _) in f.append(l).unwrap() {
            assert!(seen.insert(id), "{id:?} reported twice");
        }
    }
    // A 1024-leaf tree has 2047 perfect nodes.
    assert_eq!(seen.len(), 2047);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Large sizes: ids follow the binary expansion and the frontier can grow from there.
    #[test]
    fn from_nodes_at_large_sizes(size in 0u64..u64::MAX, salt in any::<u8>()) {
        let ids = Frontier::node_ids_for_size(size);
        prop_assert_eq!(ids.len(), size.count_ones() as usize);
        let hashes: Vec<Hash> = ids.iter().map(|id| [id.level ^ salt; 32]).collect();
        let mut f = Frontier::from_nodes(size, &hashes).unwrap();
        prop_assert_eq!(f.size(), size);
        prop_assert_eq!(f.nodes().iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids.clone());
        // The root plan at this size reads exactly the frontier's nodes.
        let mut sorted = ids.clone();
        sorted.sort();
        let plan = ProofPlan::root(size).unwrap();
        prop_assert_eq!(plan.needed(), sorted.as_slice());
        let completed = f.append([9; 32]).unwrap();
        prop_assert_eq!(completed.len(), (size.trailing_ones() + 1) as usize);
        prop_assert_eq!(f.size(), size + 1);
        prop_assert_eq!(Frontier::node_ids_for_size(size + 1),
            f.nodes().iter().map(|(id, _)| *id).collect::<Vec<_>>());
    }
}
