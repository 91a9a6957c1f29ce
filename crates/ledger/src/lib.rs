//! Algorithms of Strongroom's tamper-evident audit log, small enough to audit in an afternoon.
//!
//! * [`leaf_hash`], [`node_hash`]: RFC 9162 hashing (domain-separated SHA-256).
//! * [`Frontier`]: the O(log n) right edge of the tree, for appending and for the current root.
//! * [`ProofPlan`]: which perfect-subtree hashes an inclusion / consistency proof needs, so an
//!   async store can batch-read them, then assemble the proof (RFC 9162 §2.1.3.1 / §2.1.4.1).
//! * [`verify_inclusion`] / [`verify_consistency`]: RFC 9162 §2.1.3.2 / §2.1.4.2, verbatim.
//! * [`Checkpoint`], [`NoteSigner`], [`NoteVerifier`]: C2SP tlog-checkpoint and signed-note
//!   (Ed25519), byte-compatible with Go's `golang.org/x/mod/sumdb/note`.
//!
//! The encoding of log entries is the caller's business: this crate only sees entry bytes.
//! Nothing here does I/O, and no function panics on any input.

mod checkpoint;
mod error;
mod frontier;
mod hash;
mod memory;
mod note;
mod plan;
mod verify;

pub use checkpoint::{Checkpoint, check_checkpoint_consistency};
pub use error::LedgerError;
pub use frontier::{Frontier, NodeId};
pub use hash::{Hash, empty_root, leaf_hash, node_hash};
pub use memory::MemoryTree;
pub use note::{MAX_NOTE_SIZE, MAX_SIGNATURES, NoteSigner, NoteVerifier, key_id};
pub use plan::{NodeSource, ProofPlan, consistency_proof, inclusion_proof};
pub use verify::{verify_consistency, verify_inclusion};
