//! A store rolled back whole (an old copy of the database put back) extends its own latest
//! checkpoint, so it passes the log's own check; signing it again would publish other
//! checkpoints at sizes already published. The witness outside the store refuses it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strongroom_core::audit::{AuditLog, AuditRecord, CheckpointWitness};
use strongroom_core::clock::SystemClock;
use strongroom_ledger::NoteSigner;
use strongroom_store::{SqliteStore, Store};

const ORIGIN: &str = "test/rollback";

#[derive(Default)]
struct MemoryWitness(Mutex<Option<String>>);

impl CheckpointWitness for MemoryWitness {
    fn last(&self) -> std::io::Result<Option<String>> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn record(&self, note: &str) -> std::io::Result<()> {
        *self.0.lock().unwrap() = Some(note.to_owned());
        Ok(())
    }
}

fn signer() -> NoteSigner {
    NoteSigner::from_bytes(ORIGIN, &[6; 32]).unwrap()
}

async fn open_log(
    store: &Arc<SqliteStore>,
    witness: Option<Arc<MemoryWitness>>,
) -> Result<Arc<AuditLog>, String> {
    AuditLog::open(
        Arc::clone(store) as Arc<dyn Store>,
        signer(),
        ORIGIN.into(),
        Arc::new(SystemClock::default()),
        64,
        "instance".into(),
        witness.map(|w| w as Arc<dyn CheckpointWitness>),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Appends until the log holds `size` entries, and waits for the witness to hold their
/// checkpoint.
async fn publish_until(log: &AuditLog, witness: &MemoryWitness, size: u64) {
    while log.head().size < size {
        log.append(AuditRecord::new("test.append", "r"))
            .await
            .unwrap();
    }
    log.checkpoint_covering(size - 1, Duration::from_secs(10))
        .await
        .unwrap();
    let verifier = signer().verifier();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held = witness.last().unwrap();
        let size_held = held
            .as_deref()
            .map(|note| verifier.verify_checkpoint(note).unwrap().size);
        if size_held == Some(size) {
            return;
        }
        assert!(Instant::now() < deadline, "witness holds {size_held:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn open_store(path: &std::path::Path) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(path, Duration::from_secs(5))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_rolled_back_below_the_published_checkpoint_is_not_signed_again() {
    let dir = tempfile::tempdir().unwrap();
    let (live, old_copy) = (dir.path().join("live.db"), dir.path().join("old.db"));
    let witness = Arc::new(MemoryWitness::default());

    let store = open_store(&live).await;
    let log = open_log(&store, Some(Arc::clone(&witness))).await.unwrap();
    publish_until(&log, &witness, 4).await;
    drop(log);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "VACUUM INTO '{}'",
        old_copy.display()
    )))
    .execute(
        &sqlx::SqlitePool::connect(&format!("sqlite://{}", live.display()))
            .await
            .unwrap(),
    )
    .await
    .unwrap();

    // The live log goes on and publishes a checkpoint of 8 entries.
    let log = open_log(&store, Some(Arc::clone(&witness))).await.unwrap();
    publish_until(&log, &witness, 8).await;
    drop(log);

    // The old copy put back: it extends its own checkpoint (4), so without the witness the log
    // opens on it and would sign sizes 5..8 again, differently.
    let rolled_back = open_store(&old_copy).await;
    assert_eq!(rolled_back.audit_size().await.unwrap(), 4);
    let refused = open_log(&rolled_back, Some(Arc::clone(&witness)))
        .await
        .err()
        .expect("opened a store behind the published checkpoint");
    assert!(
        refused.contains("does not extend the checkpoint last published"),
        "{refused}"
    );
    assert_eq!(
        rolled_back.latest_checkpoint().await.unwrap().unwrap().size,
        4,
        "nothing was signed over the old copy"
    );
    let blind = open_log(&rolled_back, None).await;
    assert!(blind.is_ok(), "the store's own check cannot see a rollback");

    // The live store, which extends it, still opens.
    assert!(open_log(&store, Some(witness)).await.is_ok());
}
