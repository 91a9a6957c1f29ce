//! The last checkpoint an instance signed or followed, kept outside the store.
//!
//! The store checks itself against its own latest checkpoint, but a store rolled back whole (an
//! old database file copied back, a PostgreSQL replica promoted behind its primary) holds an
//! older checkpoint that it extends perfectly well. Signing it again would publish, at sizes
//! already published, checkpoints no consistency proof joins to the earlier ones: a fork. The
//! witness remembers what was published from here, and the log refuses to open a store that
//! does not extend it.

use std::io;

use strongroom_ledger::NoteVerifier;
use strongroom_store::Store;

use super::log::{TreeHead, extends};
use crate::error::{ErrorCode, ServiceError, ServiceResult};

/// Keeps the latest checkpoint note this instance signed or followed.
pub trait CheckpointWitness: Send + Sync {
    /// The note last recorded, if any.
    fn last(&self) -> io::Result<Option<String>>;
    /// Records `note` durably, replacing the last one.
    fn record(&self, note: &str) -> io::Result<()>;
}

/// Refuses a store whose log does not extend the checkpoint `witness` last recorded; `stored`
/// is the store's head. A witness that cannot be read, or whose note does not verify under the
/// log's key (the key or origin replaced), is refused too: it cannot vouch for anything.
pub(super) async fn check_against_witness(
    store: &dyn Store,
    verifier: &NoteVerifier,
    witness: &dyn CheckpointWitness,
    stored: TreeHead,
) -> ServiceResult<()> {
    let note = witness
        .last()
        .map_err(|e| refused(format!("cannot read the last published checkpoint: {e}")))?;
    let Some(note) = note else {
        return Ok(());
    };
    let checkpoint = verifier.verify_checkpoint(&note).map_err(|_| {
        refused(
            "the last checkpoint published from this data dir does not verify under the log's \
             key and origin (were they changed?)"
                .into(),
        )
    })?;
    let published = TreeHead {
        size: checkpoint.size,
        root: checkpoint.root,
    };
    if published.size > stored.size || !extends(store, published, stored).await? {
        return Err(refused(format!(
            "the stored audit log (size {}) does not extend the checkpoint last published from \
             this data dir (size {}): the store was rolled back or replaced, and signing it would \
             fork the published log",
            stored.size, published.size
        )));
    }
    Ok(())
}

/// A refusal to open, for the operator who starts the server (never a client's answer).
fn refused(message: String) -> ServiceError {
    ServiceError::new(ErrorCode::Internal, message)
}
