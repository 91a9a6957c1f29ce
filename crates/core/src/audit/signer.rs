//! The checkpoint signer: the instance holding the `audit-signer` lease signs the store's head
//! (not its own) within a second of any append; the others show the checkpoints it saves, and
//! take the lease over when it stops renewing it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use strongroom_ledger::NoteSigner;
use strongroom_store::Store;
use tokio::sync::watch;

use super::log::{TreeHead, advance, restore_frontier, save_checkpoint, sign};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};

/// Fewest milliseconds between two signed checkpoints; a new one always follows within a second.
const CHECKPOINT_INTERVAL_MS: u64 = 200;
/// The signer renews its lease this often, and a dead signer's lease lapses after `SIGNER_LEASE_MS`.
const SIGNER_RENEW_MS: i64 = 1_000;
pub(super) const SIGNER_LEASE_MS: i64 = 5_000;
pub(super) const SIGNER_LEASE: &str = "audit-signer";
/// How often the signer looks for other instances' appends when this one is idle.
const FOLLOW_MS: u64 = 500;

pub(super) struct SignerTask {
    pub(super) store: Arc<dyn Store>,
    pub(super) signer: Arc<NoteSigner>,
    pub(super) verifier: strongroom_ledger::NoteVerifier,
    pub(super) origin: String,
    pub(super) head: Arc<watch::Sender<TreeHead>>,
    pub(super) latest: Arc<RwLock<Arc<str>>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) instance: String,
}

impl SignerTask {
    /// The store's head: this instance's frontier when nobody else appended, else re-read.
    async fn store_head(&self) -> ServiceResult<TreeHead> {
        let size = self.store.audit_size().await?;
        let local = *self.head.borrow();
        if size == local.size {
            return Ok(local);
        }
        let frontier = restore_frontier(self.store.as_ref(), size).await?;
        Ok(TreeHead {
            size,
            root: frontier.root(),
        })
    }

    fn publish(&self, note: &str) {
        if let Ok(mut slot) = self.latest.write() {
            *slot = Arc::from(note);
        }
    }

    /// Signs the store's head if it grew past `signed`; returns what is signed now.
    async fn sign_head(&self, signed: u64) -> ServiceResult<u64> {
        let current = self.store_head().await?;
        advance(&self.head, current);
        if current.size <= signed {
            return Ok(signed);
        }
        let note = sign(&self.signer, &self.origin, current)?;
        save_checkpoint(
            self.store.as_ref(),
            current.size,
            &note,
            self.clock.now_ms(),
        )
        .await?;
        self.publish(&note);
        Ok(current.size)
    }

    /// Shows the signer's latest checkpoint (verified, never older than the one shown).
    async fn follow(&self, shown: u64) -> ServiceResult<u64> {
        let Some(row) = self.store.latest_checkpoint().await? else {
            return Ok(shown);
        };
        let checkpoint = self
            .verifier
            .verify_checkpoint(&row.note)
            .map_err(|_| ServiceError::internal("stored checkpoint does not verify"))?;
        if checkpoint.size > shown {
            advance(
                &self.head,
                TreeHead {
                    size: checkpoint.size,
                    root: checkpoint.root,
                },
            );
            self.publish(&row.note);
        }
        Ok(checkpoint.size.max(shown))
    }
}

pub(super) async fn run_signer(task: SignerTask) {
    let mut head = task.head.subscribe();
    let mut signed = head.borrow().size;
    let mut leader = false;
    let mut lease_checked_at = i64::MIN;
    loop {
        // Wake on a local append, or on the interval (other instances' appends, the lease).
        let _ = tokio::time::timeout(Duration::from_millis(FOLLOW_MS), head.changed()).await;
        tokio::time::sleep(Duration::from_millis(CHECKPOINT_INTERVAL_MS)).await;
        let now = task.clock.now_ms();
        if now.saturating_sub(lease_checked_at) >= SIGNER_RENEW_MS || !leader {
            let held = task
                .store
                .try_lease(SIGNER_LEASE, &task.instance, now, now + SIGNER_LEASE_MS)
                .await;
            lease_checked_at = now;
            let held = held.unwrap_or_else(|err| {
                tracing::error!(error = %err, "signer lease not renewed; not signing");
                false
            });
            if held && !leader {
                tracing::info!("this instance now signs the audit log");
            }
            leader = held;
            metrics::gauge!("strongroom_audit_signer").set(if leader { 1.0 } else { 0.0 });
        }
        let step = if leader {
            task.sign_head(signed).await
        } else {
            task.follow(signed).await
        };
        match step {
            Ok(size) => signed = size,
            Err(err) => tracing::error!(error = %err.message, "checkpoint step failed; will retry"),
        }
    }
}
