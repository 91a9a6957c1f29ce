//! Proof verification, transcribed step by step from RFC 9162 §2.1.3.2 and §2.1.4.2.
//! Step numbers in comments refer to the RFC. Only the error variants are ours.

use crate::error::LedgerError;
use crate::hash::{Hash, node_hash};

/// Verifies that `leaf` is at `index` in the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
///
/// Note the proof binds the leaf's *position in the tree shape*: a root is only meaningful
/// together with its size, which is why callers take both from one signed checkpoint.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), LedgerError> {
    // 1. leaf_index must be below tree_size.
    if index >= size {
        return Err(LedgerError::IndexOutOfRange { index, size });
    }
    // 2. fn = leaf_index, sn = tree_size - 1.
    let (mut fnode, mut snode) = (index, size - 1);
    // 3. r = hash.
    let mut r = *leaf;
    // 4. For each p in inclusion_path:
    for p in proof {
        // a. If sn is 0, fail.
        if snode == 0 {
            return Err(LedgerError::ProofTooLong);
        }
        // b. If LSB(fn) is set, or fn == sn:
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            // If LSB(fn) is not set, shift until LSB(fn) is set or fn is 0.
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        // c. Right-shift fn and sn once.
        fnode >>= 1;
        snode >>= 1;
    }
    // 5. sn must be 0 and r must equal root_hash.
    if snode != 0 {
        return Err(LedgerError::ProofTooShort);
    }
    if r != *root {
        return Err(LedgerError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1`
/// leaves with root `root1` (RFC 9162 §2.1.4.2, which requires `0 < size1`).
///
/// `size1 == size2` (RFC 9162 §2.1.4.1: the proof is empty) accepts iff the proof is empty and
/// the roots are equal. `size1 == 0` is always rejected: consistency with the empty tree proves
/// nothing; [`crate::check_checkpoint_consistency`] handles that case explicitly.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), LedgerError> {
    if size1 == 0 || size1 > size2 {
        return Err(LedgerError::InvalidSizes {
            from: size1,
            to: size2,
        });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(LedgerError::ProofTooLong);
        }
        if root1 != root2 {
            return Err(LedgerError::RootMismatch);
        }
        return Ok(());
    }
    // 1. An empty consistency_path fails.
    let Some((head, tail)) = proof.split_first() else {
        return Err(LedgerError::ProofTooShort);
    };
    // 2. If first is an exact power of 2, prepend first_hash to the path.
    let (seed, rest) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        (head, tail)
    };
    // 3. fn = first - 1, sn = second - 1.
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    // 4. If LSB(fn) is set, shift both until it is not.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // 5. fr = sr = first value of the path.
    let (mut fr, mut sr) = (*seed, *seed);
    // 6. For each subsequent value c:
    for c in rest {
        // a. If sn is 0, fail.
        if snode == 0 {
            return Err(LedgerError::ProofTooLong);
        }
        // b. If LSB(fn) is set, or fn == sn:
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // If LSB(fn) is not set, shift until LSB(fn) is set or fn is 0.
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // c. Right-shift fn and sn once.
        fnode >>= 1;
        snode >>= 1;
    }
    // 7. fr == first_hash, sr == second_hash, sn == 0.
    if snode != 0 {
        return Err(LedgerError::ProofTooShort);
    }
    if fr != *root1 {
        return Err(LedgerError::OldRootMismatch);
    }
    if sr != *root2 {
        return Err(LedgerError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::hash::{empty_root, leaf_hash};

    #[test]
    fn degenerate_inputs_are_errors() {
        let h = leaf_hash(b"x");
        assert!(verify_inclusion(0, 0, &h, &[], &h).is_err());
        assert!(verify_inclusion(u64::MAX, u64::MAX, &h, &[], &h).is_err());
        assert!(verify_inclusion(0, u64::MAX, &h, &[], &h).is_err());
        assert!(verify_inclusion(0, 1, &h, &[], &h).is_ok());
        assert_eq!(
            verify_inclusion(0, 1, &h, &[h], &h),
            Err(LedgerError::ProofTooLong)
        );
        assert_eq!(
            verify_inclusion(0, 2, &h, &[], &h),
            Err(LedgerError::ProofTooShort)
        );
        let e = empty_root();
        assert!(verify_consistency(0, 0, &e, &e, &[]).is_err());
        assert!(verify_consistency(0, 1, &e, &h, &[]).is_err());
        assert!(verify_consistency(2, 1, &h, &h, &[]).is_err());
        assert!(verify_consistency(1, 1, &h, &h, &[]).is_ok());
        assert!(verify_consistency(1, 1, &h, &h, &[h]).is_err());
        assert!(verify_consistency(1, 2, &h, &h, &[]).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &h, &h, &[h; 200]).is_err());
        assert!(verify_consistency(1, u64::MAX, &h, &h, &[h; 200]).is_err());
    }
}
