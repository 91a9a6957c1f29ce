//! Proof generation and verification against the naive RFC 6962 oracle.

use proptest::prelude::*;
use strongroom_ledger::{
    Frontier, Hash, LedgerError, MemoryTree, NodeSource, ProofPlan, consistency_proof,
    inclusion_proof, verify_consistency, verify_inclusion,
};

use crate::naive;

const MAX: usize = 4096;

fn tree(leaves: &[Hash]) -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in leaves {
        t.push_leaf_hash(*l).unwrap();
    }
    t
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut out = *h;
    out[(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

/// Sizes near `n` that a forger might claim instead.
fn other_sizes(n: u64, extra: u64) -> Vec<u64> {
    let mut v = vec![
        n.saturating_sub(1),
        n + 1,
        n / 2,
        n * 2,
        n.saturating_sub(2),
        n + 2,
        extra,
    ];
    v.retain(|&x| x != n);
    v
}

/// Bound of the wrong-claim grid: the full grid on trees up to 24 leaves (cost grows as n^4).
fn claims(n: usize) -> u64 {
    if n <= 24 { n as u64 + 2 } else { 0 }
}

/// Exhaustive on small trees: every proof up to 100 leaves equals the oracle's and verifies;
/// up to 24 leaves, every wrong (index, size) claim gets the oracle's verdict too.
#[test]
fn exhaustive_small_trees() {
    let leaves = naive::leaves(100, 7);
    let t = tree(&leaves);
    let mut checked = 0usize;
    for n in 1..=leaves.len() {
        let d = &leaves[..n];
        let root = naive::mth(d);
        assert_eq!(t.root_at(n as u64).unwrap(), root);
        for m in 0..n {
            let p = t.inclusion_proof(m as u64, n as u64).unwrap();
            assert_eq!(p, naive::path(m, d), "PATH({m}, D[{n}])");
            verify_inclusion(m as u64, n as u64, &d[m], &p, &root).unwrap();
            for m2 in 0..claims(n) {
                for n2 in 0..claims(n) + 1 {
                    let ours = verify_inclusion(m2, n2, &d[m], &p, &root).is_ok();
                    let oracle = naive::verify_inclusion(m2, n2, &d[m], &p, &root);
                    assert_eq!(
                        ours, oracle,
                        "inclusion claim ({m2},{n2}) for proof of ({m},{n})"
                    );
                    checked += 1;
                }
            }
        }
        for m in 1..=n {
            let r1 = naive::mth(&leaves[..m]);
            let p = t.consistency_proof(m as u64, n as u64).unwrap();
            assert_eq!(p, naive::proof(m, d), "PROOF({m}, D[{n}])");
            verify_consistency(m as u64, n as u64, &r1, &root, &p).unwrap();
            for m2 in 0..claims(n) {
                for n2 in 0..claims(n) + 1 {
                    let ours = verify_consistency(m2, n2, &r1, &root, &p).is_ok();
                    let oracle = naive::verify_consistency(m2, n2, &r1, &root, &p);
                    assert_eq!(
                        ours, oracle,
                        "consistency claim ({m2},{n2}) for proof of ({m},{n})"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100_000, "{checked}");
}

#[test]
fn store_gaps_surface_as_missing_node() {
    struct Holey(MemoryTree);
    impl NodeSource for Holey {
        fn node(&self, id: strongroom_ledger::NodeId) -> Option<Hash> {
            if id.level == 1 { None } else { self.0.node(id) }
        }
    }
    let h = Holey(tree(&naive::leaves(8, 3)));
    assert!(
        matches!(inclusion_proof(&h, 0, 8), Err(LedgerError::MissingNode(id)) if id.level == 1)
    );
    assert!(matches!(
        consistency_proof(&h, 3, 8),
        Err(LedgerError::MissingNode(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn roots_agree(n in 0..=MAX, seed in any::<u64>(), cut in any::<prop::sample::Index>()) {
        let leaves = naive::leaves(n, seed);
        let t = tree(&leaves);
        let mut f = Frontier::new();
        for l in &leaves {
            f.append(*l).unwrap();
        }
        let root = naive::mth(&leaves);
        prop_assert_eq!(t.root(), root);
        prop_assert_eq!(f.root(), root);
        let m = cut.index(n + 1);
        prop_assert_eq!(t.root_at(m as u64).unwrap(), naive::mth(&leaves[..m]));
        let plan = ProofPlan::root(m as u64).unwrap();
        prop_assert_eq!(plan.needed().len(), (m as u64).count_ones() as usize);
    }

    #[test]
    fn inclusion_matches_oracle_and_resists_tampering(
        n in 1..=MAX, seed in any::<u64>(), pick in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(), bits in prop::collection::vec(0usize..256, 64),
    ) {
        let leaves = naive::leaves(n, seed);
        let t = tree(&leaves);
        let m = pick.index(n);
        let (mu, nu) = (m as u64, n as u64);
        let root = naive::mth(&leaves);
        let leaf = leaves[m];
        let p = inclusion_proof(&t, mu, nu).unwrap();
        prop_assert_eq!(&p, &naive::path(m, &leaves));
        prop_assert!(verify_inclusion(mu, nu, &leaf, &p, &root).is_ok());
        prop_assert!(naive::verify_inclusion(mu, nu, &leaf, &p, &root));

        for (i, bit) in bits.iter().enumerate().take(p.len()) {
            let mut bad = p.clone();
            bad[i] = flip(&bad[i], *bit);
            prop_assert!(verify_inclusion(mu, nu, &leaf, &bad, &root).is_err());
        }
        prop_assert!(verify_inclusion(mu, nu, &flip(&leaf, bits[0]), &p, &root).is_err());
        prop_assert!(verify_inclusion(mu, nu, &leaf, &p, &flip(&root, bits[1])).is_err());
        if !p.is_empty() {
            prop_assert!(verify_inclusion(mu, nu, &leaf, &p[..p.len() - 1], &root).is_err());
        }
        prop_assert!(verify_inclusion(mu, nu, &leaf, &[p.as_slice(), &[root]].concat(), &root).is_err());
        // A different index in the same tree names a different leaf position: always refused.
        let m2 = other.index(n) as u64;
        if m2 != mu {
            prop_assert!(verify_inclusion(m2, nu, &leaf, &p, &root).is_err());
        }
        for m2 in [mu.wrapping_sub(1), mu + 1, mu ^ 1, u64::MAX] {
            if m2 != mu {
                prop_assert!(verify_inclusion(m2, nu, &leaf, &p, &root).is_err());
            }
        }
        // A different size is refused unless it has the very same path shape (then the proof
        // is the same computation): exactly what the oracle says.
        for n2 in other_sizes(nu, other.index(2 * n) as u64) {
            prop_assert_eq!(
                verify_inclusion(mu, n2, &leaf, &p, &root).is_ok(),
                naive::verify_inclusion(mu, n2, &leaf, &p, &root),
                "size {} claimed as {}", n, n2
            );
        }
    }

    #[test]
    fn consistency_matches_oracle_and_resists_tampering(
        n in 1..=MAX, seed in any::<u64>(), pick in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(), bits in prop::collection::vec(0usize..256, 64),
    ) {
        let leaves = naive::leaves(n, seed);
        let t = tree(&leaves);
        let m = pick.index(n) + 1;
        let (mu, nu) = (m as u64, n as u64);
        let (r1, r2) = (naive::mth(&leaves[..m]), naive::mth(&leaves));
        let p = consistency_proof(&t, mu, nu).unwrap();
        prop_assert_eq!(&p, &naive::proof(m, &leaves));
        prop_assert!(verify_consistency(mu, nu, &r1, &r2, &p).is_ok());
        prop_assert!(naive::verify_consistency(mu, nu, &r1, &r2, &p));

        for (i, bit) in bits.iter().enumerate().take(p.len()) {
            let mut bad = p.clone();
            bad[i] = flip(&bad[i], *bit);
            prop_assert!(verify_consistency(mu, nu, &r1, &r2, &bad).is_err());
        }
        prop_assert!(verify_consistency(mu, nu, &flip(&r1, bits[0]), &r2, &p).is_err());
        prop_assert!(verify_consistency(mu, nu, &r1, &flip(&r2, bits[1]), &p).is_err());
        if !p.is_empty() {
            prop_assert!(verify_consistency(mu, nu, &r1, &r2, &p[..p.len() - 1]).is_err());
        }
        prop_assert!(verify_consistency(mu, nu, &r1, &r2, &[p.as_slice(), &[r1]].concat()).is_err());
        prop_assert!(verify_consistency(0, nu, &r1, &r2, &p).is_err());
        prop_assert!(verify_consistency(nu + 1, nu, &r1, &r2, &p).is_err());
        let extra = other.index(2 * n) as u64;
        for m2 in other_sizes(mu, extra) {
            prop_assert_eq!(
                verify_consistency(m2, nu, &r1, &r2, &p).is_ok(),
                naive::verify_consistency(m2, nu, &r1, &r2, &p), "size1 {} claimed as {}", m, m2
            );
        }
        for n2 in other_sizes(nu, extra) {
            prop_assert_eq!(
                verify_consistency(mu, n2, &r1, &r2, &p).is_ok(),
                naive::verify_consistency(mu, n2, &r1, &r2, &p), "size2 {} claimed as {}", n, n2
            );
        }
    }
}
