//! Keeps WAL checkpoints short on the commit path.
//!
//! SQLite checkpoints inside the `COMMIT` that takes the WAL past `wal_autocheckpoint` pages: that
//! commit copies every page written since the last checkpoint into the database file and syncs it,
//! and every caller waiting on that group commit waits too (the tail of the audit log's
//! acknowledgement times). This task checkpoints from its own connection in `PASSIVE` mode, which
//! never blocks the writer or the readers, so when the writer's own checkpoint comes due only the
//! last few commits' pages are left to copy. The writer's checkpoint is kept: only the writer can
//! restart the WAL from its beginning, and it does so once a checkpoint has caught up with it.
//!
//! Passes follow the commits (the writer nudges after each one) rather than a clock: a pass every
//! 20 ms copied and synced 20 ms of pages in one burst, and the commits that ran beside it were the
//! tail of the acknowledgement times (docs/benchmarks.md, 2026-12-04 evening). Writes outside group
//! commits do not nudge; a pass every few seconds copies theirs.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::sync::Notify;

/// How long a nudged pass waits for the commits right behind the one that rang.
const SETTLE: Duration = Duration::from_millis(2);

/// Without commits (other writes do not nudge), the WAL is still checkpointed this often.
const IDLE_INTERVAL: Duration = Duration::from_secs(5);

/// The checkpointer's connection and the bell the writer rings after each commit.
pub(super) struct Checkpointer {
    pool: SqlitePool,
    due: Arc<Notify>,
    /// The task runs while this lives.
    _alive: Arc<()>,
}

impl Checkpointer {
    /// Starts the checkpointer on its own connection. The task stops when this is closed or
    /// dropped.
    pub(super) async fn spawn(options: SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let due = Arc::new(Notify::new());
        let alive = Arc::new(());
        tokio::spawn(run(pool.clone(), Arc::clone(&due), Arc::downgrade(&alive)));
        Ok(Self {
            pool,
            due,
            _alive: alive,
        })
    }

    /// A commit landed: its pages are copied next, off the commit path. Nudges that arrive while
    /// a pass runs fold into one more pass.
    pub(super) fn nudge(&self) {
        self.due.notify_one();
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
        self.due.notify_one();
    }
}

impl Drop for Checkpointer {
    /// Wakes the task so that it sees it is no longer wanted (its wait outlasts this drop).
    fn drop(&mut self) {
        self.due.notify_one();
    }
}

async fn run(pool: SqlitePool, due: Arc<Notify>, alive: Weak<()>) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = due.notified() => {}
            () = tokio::time::sleep(IDLE_INTERVAL) => {}
        }
        // A pass right behind every commit competes with the next commit for the two cores and
        // the disk; a short wait folds a few commits into each pass (measured best at 2 ms).
        tokio::time::sleep(SETTLE).await;
        if pool.is_closed() || alive.upgrade().is_none() {
            break;
        }
        // A failed pass changes nothing: the writer's own checkpoint still bounds the WAL, and the
        // next commit tries again. Logged when it starts and stops failing, not on every pass.
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("WAL checkpoints resumed");
            }
            Ok(_) => {}
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, "WAL checkpoint failed; the writer checkpoints alone until it recovers");
            }
            Err(_) => {}
        }
    }
    pool.close().await;
}
