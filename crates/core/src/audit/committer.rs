//! Group commit. Callers plan their own entries onto the next batch as they submit (encoding and
//! hashing them on top of the batch in flight), so the one committer task does nothing between
//! two commits but take what has gathered: planning runs beside the store's sync, not before it.
//!
//! The batch in flight is planned on the frontier the previous batch reached, and the next batch
//! on the frontier this one will reach. When a commit fails, or the store re-planned it (another
//! instance appended first), the gathered batch is planned again on the frontier the log actually
//! reached, under the same lock that callers plan under.

use std::sync::{Arc, Mutex, PoisonError};

use strongroom_ledger::{Frontier, Hash, leaf_hash};
use strongroom_store::{AuditAppend, AuditEntryRow, Mutation, NodeKey, Store, StoreError};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::entry::{AuditRecord, encode};
use super::log::{TreeHead, advance};
use crate::clock::{Clock, rfc3339};

/// The callers' side of the group commit; the committer task stops when this is dropped.
pub(super) struct Committer {
    /// The batch the next commit takes; callers plan their entries onto it.
    gathering: Shared,
    /// Rung after each submission.
    doorbell: mpsc::Sender<()>,
    /// `max_batch`: the most submissions waiting at once (the batch committing and the one
    /// gathering behind it), and so in one batch.
    permits: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
}

impl Committer {
    /// Starts the committer task on the tree `frontier` describes.
    pub(super) fn start(
        store: Arc<dyn Store>,
        frontier: Frontier,
        head: Arc<watch::Sender<TreeHead>>,
        clock: Arc<dyn Clock>,
        max_batch: usize,
    ) -> Self {
        let gathering: Shared = Arc::new(Mutex::new(Gathering::on(frontier)));
        let (doorbell, rings) = mpsc::channel(1);
        tokio::spawn(run_committer(store, Arc::clone(&gathering), rings, head));
        Self {
            gathering,
            doorbell,
            permits: Arc::new(Semaphore::new(max_batch.max(1))),
            clock,
        }
    }

    /// Plans `records` onto the next batch and waits for its commit; the first record's index.
    pub(super) async fn submit(
        &self,
        records: Vec<AuditRecord>,
        mutations: Vec<Mutation>,
    ) -> Result<u64, SubmitError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| SubmitError::Audit)?;
        let (reply, answer) = oneshot::channel();
        let submission = Submission {
            records,
            mutations,
            time: rfc3339(self.clock.now_ms()),
            reply,
            _permit: permit,
        };
        {
            let mut next = lock(&self.gathering);
            next.add(submission);
            match self.doorbell.try_send(()) {
                // Full: already rung for a commit that has not taken its batch yet.
                Ok(()) | Err(TrySendError::Full(())) => {}
                // The committer is gone (only on a panic): nothing would ever take the batch,
                // so everything in it is refused rather than left waiting.
                Err(TrySendError::Closed(())) => next.refuse_all(),
            }
        }
        answer.await.unwrap_or(Err(SubmitError::Audit))
    }
}

struct Submission {
    records: Vec<AuditRecord>,
    mutations: Vec<Mutation>,
    /// The time written into the submission's entries.
    time: String,
    reply: oneshot::Sender<Result<u64, SubmitError>>,
    /// Held until the reply: bounds the submissions waiting on the log.
    _permit: OwnedSemaphorePermit,
}

pub(super) enum SubmitError {
    Audit,
    Unit(StoreError),
}

/// A batch's audit rows, planned on `base`, and each submission's first index.
struct Plan {
    base: Frontier,
    next: Frontier,
    audit: AuditAppend,
    first_index: Vec<u64>,
}

impl Plan {
    fn on(base: Frontier) -> Self {
        Self {
            next: base.clone(),
            base,
            audit: AuditAppend::default(),
            first_index: Vec::new(),
        }
    }

    /// Appends one submission's entries, or nothing if one of them cannot be encoded.
    fn extend(&mut self, records: &[AuditRecord], time: &str) -> Option<()> {
        let start = self.next.size();
        let mut encoded = Vec::with_capacity(records.len());
        for (offset, record) in (0u64..).zip(records) {
            let index = start.checked_add(offset)?;
            encoded.push((index, encode(record, index, time).ok()?));
        }
        let (entries, nodes) = (self.audit.entries.len(), self.audit.nodes.len());
        let before = self.next.clone();
        let extended = || -> Option<()> {
            for ((index, bytes), record) in encoded.into_iter().zip(records) {
                let nodes = &mut self.audit.nodes;
                self.next
                    .append_visit(leaf_hash(&bytes), |id, hash| {
                        let key = NodeKey {
                            level: id.level,
                            index: id.index,
                        };
                        nodes.push((key, hash));
                    })
                    .ok()?;
                self.audit.entries.push(AuditEntryRow {
                    idx: i64::try_from(index).ok()?,
                    tenant_id: record.tenant_id.clone(),
                    entry: bytes,
                });
            }
            Some(())
        };
        if extended().is_none() {
            self.next = before;
            self.audit.entries.truncate(entries);
            self.audit.nodes.truncate(nodes);
            return None;
        }
        self.first_index.push(start);
        Some(())
    }
}

/// The next batch, gathering while the one before it commits.
struct Gathering {
    plan: Plan,
    submissions: Vec<Submission>,
}

impl Gathering {
    fn on(base: Frontier) -> Self {
        Self {
            plan: Plan::on(base),
            submissions: Vec::new(),
        }
    }

    /// Plans `submission` onto the batch; a submission whose entries cannot be encoded is
    /// refused on its own.
    fn add(&mut self, submission: Submission) {
        match self.plan.extend(&submission.records, &submission.time) {
            Some(()) => self.submissions.push(submission),
            None => {
                tracing::error!("audit entry could not be encoded; request refused");
                let _ = submission.reply.send(Err(SubmitError::Audit));
            }
        }
    }

    /// Plans everything gathered again on `base` (the frontier the log really reached).
    fn rebase(&mut self, base: &Frontier) {
        if self.plan.base == *base {
            return;
        }
        let gathered = std::mem::take(&mut self.submissions);
        self.plan = Plan::on(base.clone());
        for submission in gathered {
            self.add(submission);
        }
    }

    fn refuse_all(&mut self) {
        for submission in self.submissions.drain(..) {
            let _ = submission.reply.send(Err(SubmitError::Audit));
        }
        self.plan = Plan::on(self.plan.base.clone());
    }
}

type Shared = Arc<Mutex<Gathering>>;

fn lock(gathering: &Shared) -> std::sync::MutexGuard<'_, Gathering> {
    // Planning never panics halfway through a batch it leaves behind (`extend` restores on
    // failure), so a poisoned lock still guards a consistent batch.
    gathering.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A plan from scratch: the store's re-plan callback, when another instance appended first.
fn plan_batch(base: &Frontier, submissions: &[Submission]) -> Option<Plan> {
    let mut plan = Plan::on(base.clone());
    for submission in submissions {
        plan.extend(&submission.records, &submission.time)?;
    }
    Some(plan)
}

/// Commits whatever has gathered each time the doorbell rings; stops when the `Committer` is
/// dropped.
async fn run_committer(
    store: Arc<dyn Store>,
    gathering: Shared,
    mut doorbell: mpsc::Receiver<()>,
    head: Arc<watch::Sender<TreeHead>>,
) {
    while doorbell.recv().await.is_some() {
        let (planned, mut batch) = {
            let mut next = lock(&gathering);
            if next.submissions.is_empty() {
                continue;
            }
            let following = Gathering::on(next.plan.next.clone());
            let taken = std::mem::replace(&mut *next, following);
            (taken.plan, taken.submissions)
        };
        let started = std::time::Instant::now();
        let units: Vec<Vec<Mutation>> = batch
            .iter_mut()
            .map(|s| std::mem::take(&mut s.mutations))
            .collect();
        // Another instance appended first: the store hands us its frontier, under its lock.
        let replanned: Mutex<Option<Plan>> = Mutex::new(None);
        let replan = |size: u64, hashes: &[Hash]| -> Result<AuditAppend, StoreError> {
            let at = Frontier::from_nodes(size, hashes)
                .map_err(|_| StoreError::Corrupt("audit frontier".into()))?;
            let plan = plan_batch(&at, &batch)
                .ok_or_else(|| StoreError::Corrupt("audit entry encoding".into()))?;
            let audit = plan.audit.clone();
            *replanned.lock().unwrap_or_else(PoisonError::into_inner) = Some(plan);
            Ok(audit)
        };
        let outcome = store.commit(&units, &planned.audit, &replan).await;
        let replanned = replanned
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(results) => {
                let plan = match replanned {
                    Some(plan) => {
                        lock(&gathering).rebase(&plan.next);
                        plan
                    }
                    None => planned,
                };
                metrics::histogram!("strongroom_audit_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("strongroom_audit_batch_entries")
                    .record(plan.audit.entries.len() as f64);
                tracing::debug!(
                    entries = plan.audit.entries.len(),
                    commit_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "audit batch committed"
                );
                advance(
                    &head,
                    TreeHead {
                        size: plan.next.size(),
                        root: plan.next.root(),
                    },
                );
                for ((submission, result), index) in
                    batch.drain(..).zip(results).zip(plan.first_index)
                {
                    let _ = submission
                        .reply
                        .send(result.map(|()| index).map_err(SubmitError::Unit));
                }
            }
            Err(err) => {
                // Nothing of this batch was stored: what gathered behind it starts where it did.
                lock(&gathering).rebase(&planned.base);
                metrics::counter!("strongroom_audit_commit_failures_total").increment(1);
                tracing::error!(error = %err, "audit commit failed; requests refused");
                for submission in batch.drain(..) {
                    let _ = submission.reply.send(Err(SubmitError::Audit));
                }
            }
        }
    }
}
