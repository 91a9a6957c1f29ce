//! The audit log as the service uses it: appends that carry the request's own changes, its head,
//! signed checkpoints and proofs.
//!
//! Appends are group-committed (`super::committer`): a batch's entries, tree nodes and data changes
//! go in ONE store transaction (one sync), and callers get their answer only after that commit, so
//! an entry is durable before its data leaves. If the commit fails, nothing of the batch is stored
//! and every caller in it gets `audit_unavailable`.
//!
//! Several instances may share one store. Their batches queue on the store's audit head; a batch
//! planned on a stale frontier is planned again by the store's callback, under that lock, from the
//! frontier the store holds, so it goes in next and never starves. Signing is `super::signer`'s.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use strongroom_ledger::{
    Checkpoint, Frontier, Hash, NodeId, NoteSigner, ProofPlan, verify_consistency,
};
use strongroom_store::{AuditEntryRow, CheckpointRow, Mutation, NodeKey, Store};
use tokio::sync::watch;

use super::committer::{Committer, SubmitError};
use super::entry::AuditRecord;
use super::signer::{SIGNER_LEASE, SIGNER_LEASE_MS, SignerTask, SigningProgress, run_signer};
use super::witness::{CheckpointWitness, check_against_witness};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, serde::Serialize)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub hashes: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}

/// Why [`AuditLog::try_commit`] committed nothing.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// The store refused the change (its error); the records were logged all the same.
    Refused(ServiceError),
    /// The log could not be written: nothing was logged or changed.
    Unavailable,
}

impl CommitError {
    pub(crate) fn into_service_error(self) -> ServiceError {
        match self {
            Self::Refused(err) => err,
            Self::Unavailable => ServiceError::audit_unavailable(),
        }
    }
}

pub struct AuditLog {
    committer: Committer,
    head: watch::Receiver<TreeHead>,
    store: Arc<dyn Store>,
    verifier_key: String,
    verifier: strongroom_ledger::NoteVerifier,
    /// Also signs statements about the log (deletion certificates) as C2SP signed notes.
    signer: Arc<NoteSigner>,
    origin: String,
    latest_note: Arc<RwLock<Arc<str>>>,
    /// How the signer keeps up, for readiness.
    signing: Arc<SigningProgress>,
}

impl AuditLog {
    /// Restores the tree from the store, checks it against the last signed checkpoint, and starts the
    /// committer and the checkpoint signer. Refuses to open a log that contradicts its own checkpoint.
    pub async fn open(
        store: Arc<dyn Store>,
        signer: NoteSigner,
        origin: String,
        clock: Arc<dyn Clock>,
        max_batch: usize,
        instance: String,
        witness: Option<Arc<dyn CheckpointWitness>>,
    ) -> ServiceResult<Arc<Self>> {
        // The checkpoint before the size: other instances may append (and sign) meanwhile, and
        // the size only grows, so the tree read next always covers the checkpoint read first.
        let last_signed = store.latest_checkpoint().await?;
        let size = store.audit_size().await?;
        let frontier = restore_frontier(store.as_ref(), size).await?;
        let verifier = signer.verifier();
        if let Some(last) = last_signed {
            let checkpoint = verifier
                .verify_checkpoint(&last.note)
                .map_err(|_| ServiceError::internal("stored checkpoint does not verify"))?;
            if checkpoint.size > size {
                return Err(ServiceError::internal(
                    "audit log is shorter than its last signed checkpoint (truncated?)",
                ));
            }
            let signed = TreeHead {
                size: checkpoint.size,
                root: checkpoint.root,
            };
            let stored = TreeHead {
                size,
                root: frontier.root(),
            };
            if !extends(store.as_ref(), signed, stored).await? {
                return Err(ServiceError::internal(
                    "audit log does not extend its last signed checkpoint (rewritten?)",
                ));
            }
        }
        let head = TreeHead {
            size,
            root: frontier.root(),
        };
        if let Some(witness) = &witness {
            check_against_witness(store.as_ref(), &verifier, witness.as_ref(), head).await?;
        }
        let (head_tx, head_rx) = watch::channel(head);
        let head_tx = Arc::new(head_tx);
        let signer = Arc::new(signer);
        let now = clock.now_ms();
        let leader = store
            .try_lease(SIGNER_LEASE, &instance, now, now + SIGNER_LEASE_MS)
            .await?;
        let existing = store.latest_checkpoint().await?;
        // The signer (or the first instance ever) signs at once; the others show the signer's latest.
        let (note, signed) = match existing {
            Some(row) if !leader || u64::try_from(row.size).unwrap_or(0) >= head.size => {
                let checkpoint = verifier
                    .verify_checkpoint(&row.note)
                    .map_err(|_| ServiceError::internal("stored checkpoint does not verify"))?;
                let signed = TreeHead {
                    size: checkpoint.size,
                    root: checkpoint.root,
                };
                (row.note, signed)
            }
            _ => {
                let note = sign(&signer, &origin, head)?;
                save_checkpoint(store.as_ref(), head.size, &note, now).await?;
                (note, head)
            }
        };
        if let Some(witness) = &witness {
            witness.record(&note).map_err(|e| {
                ServiceError::internal(&format!("cannot record the published checkpoint: {e}"))
            })?;
        }
        let latest_note: Arc<RwLock<Arc<str>>> = Arc::new(RwLock::new(Arc::from(note.as_str())));

        let committer = Committer::start(
            Arc::clone(&store),
            frontier,
            Arc::clone(&head_tx),
            Arc::clone(&clock),
            max_batch,
        );
        let signing = Arc::new(SigningProgress::new(clock.now_ms()));
        tokio::spawn(run_signer(SignerTask {
            signing: Arc::clone(&signing),
            store: Arc::clone(&store),
            signer: Arc::clone(&signer),
            verifier: signer.verifier(),
            origin: origin.clone(),
            head: head_tx,
            latest: Arc::clone(&latest_note),
            clock,
            instance,
            signed,
            witness,
        }));
        Ok(Arc::new(Self {
            committer,
            head: head_rx,
            store,
            verifier_key: verifier.to_vkey(),
            verifier,
            signer,
            origin,
            latest_note,
            signing,
        }))
    }

    /// Opens the log as the deployment names it: `settings.audit_origin`, or by default
    /// `strongroom.local/audit/<key id>`, signed with `log_signer`'s key under that name.
    pub async fn open_configured(
        store: Arc<dyn Store>,
        log_signer: &NoteSigner,
        settings: &Settings,
        clock: Arc<dyn Clock>,
        instance: String,
        witness: Option<Arc<dyn CheckpointWitness>>,
    ) -> ServiceResult<Arc<Self>> {
        let origin = if settings.audit_origin.is_empty() {
            let vkey = log_signer.verifier().to_vkey();
            let key_id = vkey.split('+').nth(1).unwrap_or("0").to_owned();
            format!("strongroom.local/audit/{key_id}")
        } else {
            settings.audit_origin.clone()
        };
        let signer = NoteSigner::from_bytes(&origin, &log_signer.secret_bytes())
            .map_err(|_| ServiceError::internal("log signing key"))?;
        Self::open(
            store,
            signer,
            origin,
            clock,
            settings.audit_max_batch,
            instance,
            witness,
        )
        .await
    }

    /// Appends `records` and applies `mutations` in the same transaction; returns the first record's index.
    ///
    /// `audit_unavailable` when the log cannot be written (then nothing was changed); the mutations'
    /// own constraint errors (e.g. a duplicate username) come back as their service error, with the
    /// records written all the same.
    pub async fn commit(
        &self,
        records: Vec<AuditRecord>,
        mutations: Vec<Mutation>,
    ) -> ServiceResult<u64> {
        self.try_commit(records, mutations)
            .await
            .map_err(CommitError::into_service_error)
    }

    /// Like [`Self::commit`], but tells a change the store refused (a conflict, a record it
    /// links to gone: its entries are in the log) from a log that could not be written.
    pub(crate) async fn try_commit(
        &self,
        records: Vec<AuditRecord>,
        mutations: Vec<Mutation>,
    ) -> Result<u64, CommitError> {
        self.committer
            .submit(records, mutations)
            .await
            .map_err(|err| match err {
                SubmitError::Unit(err) => CommitError::Refused(err.into()),
                SubmitError::Audit => CommitError::Unavailable,
            })
    }

    pub async fn append(&self, record: AuditRecord) -> ServiceResult<u64> {
        self.commit(vec![record], Vec::new()).await
    }

    pub fn head(&self) -> TreeHead {
        *self.head.borrow()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// The latest signed checkpoint note.
    pub fn checkpoint(&self) -> Arc<str> {
        match self.latest_note.read() {
            Ok(note) => Arc::clone(&note),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The latest signed checkpoint, read back through the log's own verifier.
    pub(crate) fn signed_checkpoint(&self) -> Option<Checkpoint> {
        self.verifier.verify_checkpoint(&self.checkpoint()).ok()
    }

    /// Signs `body` (newline-terminated text) as a C2SP signed note with the log's key.
    pub fn sign_statement(&self, body: &str) -> ServiceResult<String> {
        self.signer
            .sign(body)
            .map_err(|_| ServiceError::internal("signing a statement"))
    }

    /// Waits until a signed checkpoint covers `index` (the signer follows appends within a
    /// second); returns the note and its parsed checkpoint, or `audit_unavailable` at `timeout`.
    pub async fn checkpoint_covering(
        &self,
        index: u64,
        timeout: Duration,
    ) -> ServiceResult<(Arc<str>, Checkpoint)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let note = self.checkpoint();
            let checkpoint = self
                .verifier
                .verify_checkpoint(&note)
                .map_err(|_| ServiceError::internal("latest checkpoint does not verify"))?;
            if checkpoint.size > index {
                return Ok((note, checkpoint));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::audit_unavailable());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How long entries have waited for a signed checkpoint at `now` (ms); `None` when every
    /// entry this instance knows of is signed. A checkpoint follows an append within a second
    /// while the signer works, so a long wait means it does not.
    #[must_use]
    pub fn unsigned_for_ms(&self, now: i64) -> Option<i64> {
        self.signing.unsigned_for_ms(now)
    }

    pub async fn entries(&self, start: u64, limit: u32) -> ServiceResult<Vec<AuditEntryRow>> {
        Ok(self.store.audit_entries(start, limit).await?)
    }

    /// The log's size, read from the store when `wanted` is beyond this instance's head: another
    /// instance may have appended and signed a size this one has not followed yet (by up to the
    /// follow interval), and a client holding that checkpoint asks for proofs at its size.
    async fn size_at_least(&self, wanted: u64) -> ServiceResult<u64> {
        let local = self.head().size;
        if wanted <= local {
            return Ok(local);
        }
        Ok(self.store.audit_size().await?.max(local))
    }

    pub async fn inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> ServiceResult<InclusionProof> {
        if tree_size > self.size_at_least(tree_size).await? || index >= tree_size {
            return Err(ServiceError::validation(
                "index must be below tree_size, and tree_size at most the log's size",
                &["index", "tree_size"],
            ));
        }
        let plan = ProofPlan::inclusion(index, tree_size)
            .map_err(|_| ServiceError::invalid("no such proof"))?;
        let hashes = assemble(self.store.as_ref(), &plan).await?;
        let leaf = fetch_nodes(self.store.as_ref(), &[NodeId { level: 0, index }]).await?;
        let leaf = leaf
            .get(&NodeId { level: 0, index })
            .copied()
            .ok_or_else(|| ServiceError::internal("audit leaf missing"))?;
        Ok(InclusionProof {
            index,
            tree_size,
            leaf_hash: b64(&leaf),
            hashes: hashes.iter().map(|h| b64(h)).collect(),
        })
    }

    pub async fn consistency_proof(&self, from: u64, to: u64) -> ServiceResult<ConsistencyProof> {
        if to > self.size_at_least(to).await? || from > to {
            return Err(ServiceError::validation(
                "from must be at most to, and to at most the log's size",
                &["from", "to"],
            ));
        }
        if from == 0 {
            // RFC 9162 defines proofs from a non-empty tree; every tree extends the empty one.
            return Err(ServiceError::validation(
                "from must be at least 1: every tree is consistent with the empty one",
                &["from"],
            ));
        }
        let plan =
            ProofPlan::consistency(from, to).map_err(|_| ServiceError::invalid("no such proof"))?;
        let hashes = assemble(self.store.as_ref(), &plan).await?;
        Ok(ConsistencyProof {
            from,
            to,
            hashes: hashes.iter().map(|h| b64(h)).collect(),
        })
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The stored hashes of `ids`; absent nodes are simply missing from the map.
async fn fetch_nodes(store: &dyn Store, ids: &[NodeId]) -> ServiceResult<HashMap<NodeId, Hash>> {
    let keys: Vec<NodeKey> = ids
        .iter()
        .map(|id| NodeKey {
            level: id.level,
            index: id.index,
        })
        .collect();
    let found = store.audit_nodes(&keys).await?;
    Ok(ids
        .iter()
        .zip(found)
        .filter_map(|(id, hash)| hash.map(|h| (*id, h)))
        .collect())
}

async fn assemble(store: &dyn Store, plan: &ProofPlan) -> ServiceResult<Vec<Hash>> {
    let nodes = fetch_nodes(store, plan.needed()).await?;
    plan.assemble(&|id| nodes.get(&id).copied())
        .map_err(|_| ServiceError::internal("audit tree node missing"))
}

pub(crate) async fn restore_frontier(store: &dyn Store, size: u64) -> ServiceResult<Frontier> {
    let ids = Frontier::node_ids_for_size(size);
    let nodes = fetch_nodes(store, &ids).await?;
    let hashes: Option<Vec<Hash>> = ids.iter().map(|id| nodes.get(id).copied()).collect();
    let hashes = hashes.ok_or_else(|| ServiceError::internal("audit tree node missing"))?;
    Frontier::from_nodes(size, &hashes).map_err(|_| ServiceError::internal("audit frontier"))
}

/// Whether the stored tree `current` extends the signed head `signed`: the consistency proof
/// assembled from the stored nodes joins the two roots (RFC 9162 §2.1.4.2). That the nodes below
/// `signed.size` still fold to its root is not enough: a node above them, covering old and new
/// leaves, could have been rewritten, and the new root with it.
pub(super) async fn extends(
    store: &dyn Store,
    signed: TreeHead,
    current: TreeHead,
) -> ServiceResult<bool> {
    if signed.size == 0 {
        return Ok(true);
    }
    if signed.size >= current.size {
        return Ok(signed == current);
    }
    let plan = ProofPlan::consistency(signed.size, current.size)
        .map_err(|_| ServiceError::internal("audit consistency plan"))?;
    let proof = assemble(store, &plan).await?;
    Ok(verify_consistency(
        signed.size,
        current.size,
        &signed.root,
        &current.root,
        &proof,
    )
    .is_ok())
}

pub(super) fn sign(signer: &NoteSigner, origin: &str, head: TreeHead) -> ServiceResult<String> {
    let body = Checkpoint {
        origin: origin.to_owned(),
        size: head.size,
        root: head.root,
    }
    .body();
    signer
        .sign(&body)
        .map_err(|_| ServiceError::internal("checkpoint signing failed"))
}

pub(super) async fn save_checkpoint(
    store: &dyn Store,
    size: u64,
    note: &str,
    now: i64,
) -> ServiceResult<()> {
    store
        .save_checkpoint(&CheckpointRow {
            size: i64::try_from(size).map_err(|_| ServiceError::internal("tree size"))?,
            note: note.to_owned(),
            created_at: now,
        })
        .await?;
    Ok(())
}

/// Publishes `candidate` unless the head already moved past it (commits and the follower race).
pub(super) fn advance(head: &watch::Sender<TreeHead>, candidate: TreeHead) {
    head.send_if_modified(|current| {
        if candidate.size > current.size {
            *current = candidate;
            true
        } else {
            false
        }
    });
}
