//! A deliberately naive, recursive transcription of RFC 6962 §2.1 (MTH, PATH, PROOF) and of
//! verifiers derived from the same recursion. Slow and obviously right: the oracle.

use strongroom_ledger::{Hash, empty_root, leaf_hash, node_hash};

/// Largest power of two strictly less than `n` (n >= 2), by counting.
fn k_for(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

pub fn leaves(n: usize, seed: u64) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| leaf_hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

pub fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_for(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

pub fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_for(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

pub fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    subproof(m, d, true)
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_for(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

/// Root implied by an audit path for leaf `m` of a tree of `n` leaves, following PATH's
/// recursion backwards; `None` if the proof has the wrong length.
fn root_from_path(m: u64, n: u64, leaf: &Hash, proof: &[Hash]) -> Option<Hash> {
    if n == 1 {
        return proof.is_empty().then_some(*leaf);
    }
    let (last, rest) = proof.split_last()?;
    let k = k_for(usize::try_from(n).ok()?) as u64;
    if m < k {
        Some(node_hash(&root_from_path(m, k, leaf, rest)?, last))
    } else {
        Some(node_hash(last, &root_from_path(m - k, n - k, leaf, rest)?))
    }
}

pub fn verify_inclusion(m: u64, n: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    m < n && root_from_path(m, n, leaf, proof) == Some(*root)
}

/// (old root, new root) implied by a consistency proof, following SUBPROOF backwards.
fn roots_from_proof(m: u64, n: u64, b: bool, root1: &Hash, proof: &[Hash]) -> Option<(Hash, Hash)> {
    if m == n {
        return if b {
            proof.is_empty().then_some((*root1, *root1))
        } else {
            match proof {
                [h] => Some((*h, *h)),
                _ => None,
            }
        };
    }
    let (last, rest) = proof.split_last()?;
    let k = k_for(usize::try_from(n).ok()?) as u64;
    if m <= k {
        let (old, new) = roots_from_proof(m, k, b, root1, rest)?;
        Some((old, node_hash(&new, last)))
    } else {
        let (old, new) = roots_from_proof(m - k, n - k, false, root1, rest)?;
        Some((node_hash(last, &old), node_hash(last, &new)))
    }
}

pub fn verify_consistency(m: u64, n: u64, root1: &Hash, root2: &Hash, proof: &[Hash]) -> bool {
    m > 0 && m <= n && roots_from_proof(m, n, true, root1, proof) == Some((*root1, *root2))
}
