//! The checkpoint signer: the instance holding the `audit-signer` lease signs the store's head
//! (not its own) within a second of any append; the others show the checkpoints it saves, and
//! take the lease over when it stops renewing it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use strongroom_ledger::NoteSigner;
use strongroom_store::Store;
use tokio::sync::watch;

use super::log::{TreeHead, advance, extends, restore_frontier, save_checkpoint, sign};
use super::witness::CheckpointWitness;
use crate::clock::Clock;
use crate::error::{ErrorCode, ServiceError, ServiceResult};

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
    /// The latest checkpoint when the log opened (what the store's own checkpoint says, not the
    /// head: entries appended before a crash may still wait for their signature).
    pub(super) signed: TreeHead,
    /// How the signer keeps up (see `AuditLog::unsigned_for_ms`).
    pub(super) signing: Arc<SigningProgress>,
    /// Told every checkpoint signed or followed here, outside the store.
    pub(super) witness: Option<Arc<dyn CheckpointWitness>>,
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

    /// Records `note` outside the store before it is shown: a note shown but not recorded would
    /// let a restart over an older store sign a fork of it. Off the runtime's threads (it syncs
    /// a file). While recording fails nothing new is shown, and the unsigned wait that
    /// `/healthz` watches grows.
    async fn record_outside(&self, note: &str) -> ServiceResult<()> {
        let Some(witness) = self.witness.clone() else {
            return Ok(());
        };
        let note = note.to_owned();
        let recorded = tokio::task::spawn_blocking(move || witness.record(&note)).await;
        match recorded {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServiceError::new(
                ErrorCode::Internal,
                format!(
                    "the checkpoint cannot be recorded outside the store ({e}); not showing it"
                ),
            )),
            Err(_) => Err(ServiceError::new(
                ErrorCode::Internal,
                "recording the checkpoint outside the store failed; not showing it",
            )),
        }
    }

    fn publish(&self, note: &str) {
        if let Ok(mut slot) = self.latest.write() {
            *slot = Arc::from(note);
        }
    }

    /// Signs the store's head if it grew past `signed`; returns what is signed now.
    ///
    /// Only a head that extends `signed` is signed: if the store was rewritten or truncated
    /// (by hand, behind the log's back), signing would publish two checkpoints no consistency
    /// proof joins. The signer refuses, and says so, until someone looks.
    async fn sign_head(&self, signed: TreeHead) -> ServiceResult<TreeHead> {
        let current = self.store_head().await?;
        advance(&self.head, current);
        if current.size <= signed.size {
            return Ok(signed);
        }
        if signed.size > 0 {
            let frontier = restore_frontier(self.store.as_ref(), current.size).await?;
            if frontier.root() != current.root
                || !extends(self.store.as_ref(), signed, current).await?
            {
                return Err(ServiceError::internal(
                    "the stored log no longer holds the last signed checkpoint; not signing",
                ));
            }
        }
        let note = sign(&self.signer, &self.origin, current)?;
        save_checkpoint(
            self.store.as_ref(),
            current.size,
            &note,
            self.clock.now_ms(),
        )
        .await?;
        self.record_outside(&note).await?;
        self.publish(&note);
        Ok(current)
    }

    /// Shows the signer's latest checkpoint (verified, never older than the one shown); returns
    /// the latest signed head.
    async fn follow(&self, signed: TreeHead) -> ServiceResult<TreeHead> {
        let Some(row) = self.store.latest_checkpoint().await? else {
            return Ok(signed);
        };
        let checkpoint = self
            .verifier
            .verify_checkpoint(&row.note)
            .map_err(|_| ServiceError::internal("stored checkpoint does not verify"))?;
        if checkpoint.size <= signed.size {
            return Ok(signed);
        }
        let latest = TreeHead {
            size: checkpoint.size,
            root: checkpoint.root,
        };
        // Another signer's checkpoint is shown (and recorded outside the store) only if it
        // extends the one shown so far: over a store replaced behind this instance (a replica
        // promoted behind its primary), it would be a fork, and would erase the evidence.
        if !extends(self.store.as_ref(), signed, latest).await? {
            // Said by the loop, once a minute while it lasts.
            return Err(ServiceError::new(
                ErrorCode::Internal,
                "the stored checkpoint does not extend the one this instance showed; not following",
            ));
        }
        self.record_outside(&row.note).await?;
        advance(&self.head, latest);
        self.publish(&row.note);
        Ok(latest)
    }
}

pub(super) async fn run_signer(task: SignerTask) {
    let mut head = task.head.subscribe();
    let mut signed = task.signed;
    let mut leader = false;
    let mut lease_checked_at = i64::MIN;
    let mut failure_logged_at: Option<i64> = None;
    let mut waiting: Option<(u64, i64)> = None;
    loop {
        // Wake on a local append, or on the interval (other instances' appends, the lease).
        let _ = tokio::time::timeout(Duration::from_millis(FOLLOW_MS), head.changed()).await;
        tokio::time::sleep(Duration::from_millis(CHECKPOINT_INTERVAL_MS)).await;
        let now = task.clock.now_ms();
        task.signing.beat(now);
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
            Ok(latest) => {
                signed = latest;
                failure_logged_at = None;
            }
            // Said once a minute while it keeps failing, not five times a second.
            Err(err) => {
                if may_say(&mut failure_logged_at, now) {
                    tracing::error!(error = %err.message, "checkpoint step failed; will retry");
                }
            }
        }
        waiting = still_waiting(waiting, signed.size, task.head.borrow().size, now);
        task.signing.waiting_since(waiting.map(|(_, since)| since));
        let unsigned = task.signing.unsigned_for_ms(now).unwrap_or(0);
        metrics::gauge!("strongroom_audit_unsigned_seconds").set(unsigned as f64 / 1000.0);
    }
}

/// How the signer keeps up, for readiness: since when entries have waited for a signature, and
/// when its loop last ran (a loop that stopped, its task gone or a step hanging, cannot say that
/// entries wait, so its silence counts as their wait).
pub(super) struct SigningProgress {
    unsigned_since: AtomicI64,
    beat: AtomicI64,
}

/// `unsigned_since` while every entry known here is signed.
const ALL_SIGNED: i64 = i64::MIN;
/// The loop runs at least every `FOLLOW_MS + CHECKPOINT_INTERVAL_MS`; silence well past that is
/// a stall.
const SIGNER_SILENT_MS: i64 = 5_000;

impl SigningProgress {
    pub(super) fn new(now: i64) -> Self {
        Self {
            unsigned_since: AtomicI64::new(ALL_SIGNED),
            beat: AtomicI64::new(now),
        }
    }

    fn beat(&self, now: i64) {
        self.beat.store(now, Ordering::Relaxed);
    }

    fn waiting_since(&self, since: Option<i64>) {
        self.unsigned_since
            .store(since.unwrap_or(ALL_SIGNED), Ordering::Relaxed);
    }

    /// How long entries have waited for a signed checkpoint at `now` (ms), `None` when none do.
    pub(super) fn unsigned_for_ms(&self, now: i64) -> Option<i64> {
        let since = self.unsigned_since.load(Ordering::Relaxed);
        let waiting = (since != ALL_SIGNED).then(|| now.saturating_sub(since));
        let silent = now.saturating_sub(self.beat.load(Ordering::Relaxed));
        if silent > SIGNER_SILENT_MS {
            return Some(waiting.unwrap_or(0).max(silent));
        }
        waiting
    }
}

/// Whether a lasting failure may be said again (noting when): once a minute, not five times a
/// second.
fn may_say(last_said: &mut Option<i64>, now: i64) -> bool {
    let due = last_said.is_none_or(|at| now.saturating_sub(at) >= 60_000);
    if due {
        *last_said = Some(now);
    }
    due
}

/// The entries known to wait for a signature, as `(size, since)`: the log's size when they were
/// first seen unsigned, and when. They stop waiting once a checkpoint covers that size, even if
/// newer entries wait by then: under steady appends every step signs the last one's, and the
/// wait is that of the oldest entry, not the time since the log was last fully signed.
fn still_waiting(
    waiting: Option<(u64, i64)>,
    signed: u64,
    head: u64,
    now: i64,
) -> Option<(u64, i64)> {
    match waiting {
        Some((size, since)) if signed < size => Some((size, since)),
        _ if signed < head => Some((head, now)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use strongroom_store::{AuditAppend, SqliteStore};

    use super::*;
    use crate::audit::entry::{AuditRecord, encode};
    use crate::audit::verify::tests::{ORIGIN, entry, log, log_of, signer, store_of};
    use crate::clock::SystemClock;

    fn signer_task(store: SqliteStore) -> SignerTask {
        let signer = signer();
        let empty = TreeHead {
            size: 0,
            root: strongroom_ledger::Frontier::new().root(),
        };
        SignerTask {
            store: Arc::new(store),
            verifier: signer.verifier(),
            signer: Arc::new(signer),
            origin: ORIGIN.into(),
            head: Arc::new(watch::channel(empty).0),
            latest: Arc::new(RwLock::new(Arc::from(""))),
            clock: Arc::new(SystemClock::with_offset_ms(0)),
            instance: "test".into(),
            signed: empty,
            signing: Arc::new(SigningProgress::new(0)),
            witness: None,
        }
    }

    /// Appends entries `from..` of `full` (with the nodes they complete) to the task's store.
    async fn append(task: &SignerTask, full: &crate::audit::verify::tests::Log, from: usize) {
        let audit = AuditAppend {
            entries: full.entries[from..].to_vec(),
            nodes: full
                .nodes
                .iter()
                .filter(|(key, _)| ((key.index + 1) << key.level) > from as u64)
                .copied()
                .collect(),
        };
        task.store
            .commit(&[], &audit, &strongroom_store::no_replan)
            .await
            .unwrap();
    }

    #[test]
    fn a_signer_that_stops_looping_counts_as_stalled() {
        let progress = SigningProgress::new(1_000);
        assert_eq!(progress.unsigned_for_ms(3_000), None);
        progress.waiting_since(Some(2_000));
        assert_eq!(progress.unsigned_for_ms(3_000), Some(1_000));
        // All signed when it last looked, then silent: the silence is the wait.
        progress.waiting_since(None);
        assert_eq!(progress.unsigned_for_ms(5_000), None);
        assert_eq!(progress.unsigned_for_ms(7_000), Some(6_000));
        progress.beat(7_000);
        assert_eq!(progress.unsigned_for_ms(7_500), None);
    }

    #[test]
    fn under_steady_appends_the_wait_is_the_oldest_entrys() {
        // Every step signs what the step before saw, while newer entries arrive: never stalled.
        let mut waiting = None;
        for step in 0..100u64 {
            let now = i64::try_from(step * 200).unwrap();
            waiting = still_waiting(waiting, step * 10, step * 10 + 7, now);
            assert_eq!(waiting, Some((step * 10 + 7, now)));
        }
        // A signer that signs nothing more: the first unsigned entries keep their time.
        let stuck = still_waiting(waiting, 990, 1_500, 20_200);
        assert_eq!(stuck, waiting);
        assert_eq!(
            still_waiting(stuck, 997, 1_500, 20_400),
            Some((1_500, 20_400))
        );
        assert_eq!(still_waiting(stuck, 1_500, 1_500, 20_600), None);
    }

    #[tokio::test]
    async fn signs_a_grown_log_and_refuses_one_rewritten_below_its_checkpoint() {
        let honest = log(12);
        let (_dir, store) = store_of(&honest.entries[..8], &honest.nodes, &[]).await;
        let task = signer_task(store);
        let first = task.sign_head(task.signed).await.unwrap();
        assert_eq!((first.size, first.root), (8, honest.roots[8]));
        append(&task, &honest, 8).await;
        let grown = task.sign_head(first).await.unwrap();
        assert_eq!((grown.size, grown.root), (12, honest.roots[12]));

        // Another store whose first eight entries differ from what was signed at 8, grown to 12:
        // signing it would publish a checkpoint no consistency proof joins to the first.
        let mut entries: Vec<_> = (0..12).map(entry).collect();
        let mut other = AuditRecord::new("contact.delete", "req-2");
        other.tenant_id = Some("t0".into());
        entries[2].entry = encode(&other, 2, "2026-01-01T00:00:00.000Z").unwrap();
        let forged = log_of(entries);
        let (_forged_dir, store) = store_of(&forged.entries, &forged.nodes, &[]).await;
        let forked = signer_task(store);
        let refused = forked.sign_head(first).await;
        assert!(refused.is_err(), "signed a fork: {refused:?}");
        assert!(forked.store.latest_checkpoint().await.unwrap().is_none());
    }
}
