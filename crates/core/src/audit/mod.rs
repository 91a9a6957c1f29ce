//! The audit log as the service uses it: group-committed appends that carry the request's own changes,
//! signed checkpoints, and proofs.

mod committer;
mod entry;
mod log;
mod signer;
mod verify;
mod witness;

pub use entry::{Actor, AuditDecision, AuditRecord, ENTRY_VERSION, ResourceRef, encode};
pub(crate) use log::CommitError;
pub(crate) use log::restore_frontier;
pub use log::{AuditLog, ConsistencyProof, InclusionProof, TreeHead};
pub use verify::{
    Failure, FailureKind, VerifyError, VerifyReport, verify_store, verify_store_against,
};
pub use witness::CheckpointWitness;
