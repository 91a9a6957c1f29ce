//! One error type for the whole crate, with a variant per distinct failure so callers (and
//! auditors reading logs) can tell a malformed input from a failed verification.

use crate::frontier::NodeId;

/// Everything that can go wrong in this crate.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    // ---- Merkle tree and proofs ----
    /// An inclusion proof was asked for or checked with `index >= size`.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof needs `0 < from <= to`.
    #[error("no consistency proof exists from tree size {from} to {to}")]
    InvalidSizes { from: u64, to: u64 },
    /// The proof has more hashes than the tree shape uses.
    #[error("proof has too many hashes for the claimed index and sizes")]
    ProofTooLong,
    /// The proof ran out of hashes before reaching the root.
    #[error("proof has too few hashes for the claimed index and sizes")]
    ProofTooShort,
    /// The proof is well-formed but does not lead to the expected (new) root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// A consistency proof does not reproduce the older root.
    #[error("consistency proof does not reproduce the older root")]
    OldRootMismatch,
    /// A node needed by a [`crate::ProofPlan`] was not supplied by the store.
    #[error("missing tree node at level {} index {}", .0.level, .0.index)]
    MissingNode(NodeId),
    /// `Frontier::from_nodes` got the wrong number of hashes for the size.
    #[error("frontier for size {size} needs {expected} hashes, got {actual}")]
    FrontierLength {
        size: u64,
        expected: usize,
        actual: usize,
    },
    /// A size beyond what the tree (or store) currently holds was requested.
    #[error("tree size {requested} requested, but the tree has {size} leaves")]
    BeyondTreeSize { requested: u64, size: u64 },
    /// The tree already holds `u64::MAX` leaves.
    #[error("tree is full")]
    TreeFull,

    // ---- Checkpoints ----
    /// A checkpoint body does not follow C2SP tlog-checkpoint (reason given).
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// Two checkpoints come from different logs.
    #[error("checkpoint origins differ")]
    OriginMismatch,
    /// The newer checkpoint is smaller than the older one.
    #[error("tree shrank from size {old} to {new}")]
    SizeRegression { old: u64, new: u64 },

    // ---- Signed notes and keys ----
    /// A note exceeds [`crate::MAX_NOTE_SIZE`] bytes.
    #[error("note is {0} bytes, over the limit")]
    NoteTooLarge(usize),
    /// A note carries more than [`crate::MAX_SIGNATURES`] signature lines.
    #[error("note has more than the allowed number of signatures")]
    TooManySignatures,
    /// A note does not follow C2SP signed-note (reason given).
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// A key name is empty or contains a space or `+`.
    #[error("invalid key name")]
    InvalidKeyName,
    /// A verifier key string is malformed (reason given).
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A verifier key names an algorithm other than Ed25519 (0x01).
    #[error("unsupported signature algorithm {0:#04x}")]
    UnsupportedAlgorithm(u8),
    /// A verifier key's key id does not match its name and public key.
    #[error("key id does not match the key name and public key")]
    KeyIdMismatch,
    /// The public key is not a valid Ed25519 point, or has small order.
    #[error("invalid or weak Ed25519 public key")]
    InvalidPublicKey,
    /// A signature line from our key failed to verify: the note is rejected whole.
    #[error("signature from our key does not verify")]
    BadSignature,
    /// The note parsed, but no signature line comes from our key.
    #[error("note has no signature from key {name}+{key_id:08x}")]
    NoSignatureFromKey { name: String, key_id: u32 },
    /// The OS random source failed while generating a key.
    #[error("random number generator failed")]
    Random,
    /// Ed25519 signing failed.
    #[error("signing failed")]
    Signing,
}
