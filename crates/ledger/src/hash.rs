//! RFC 9162 §2.1.1 hashing. The 0x00 / 0x01 prefixes keep a leaf from ever being
//! reinterpreted as an inner node (second-preimage resistance of the tree).

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ entry)`. The entry bytes are whatever canonical encoding the caller chose.
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Folds perfect-subtree hashes (left to right, strictly decreasing sizes) into the hash of the
/// range they cover, the way RFC 9162's MTH splits a range that ends at the tree's right edge.
pub(crate) fn fold_right(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    match iter.next() {
        None => empty_root(),
        Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc6962_known_values() {
        // Values from RFC 6962 test data (also used by transparency-dev/merkle).
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let l = leaf_hash(b"");
        assert_ne!(node_hash(&l, &l), l);
    }

    #[test]
    fn fold_right_matches_manual() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let c = leaf_hash(b"c");
        assert_eq!(fold_right(&[]), empty_root());
        assert_eq!(fold_right(&[a]), a);
        assert_eq!(fold_right(&[a, b, c]), node_hash(&a, &node_hash(&b, &c)));
    }
}
