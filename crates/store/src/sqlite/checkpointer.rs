//! Keeps WAL checkpoints short on the commit path.
//!
//! SQLite checkpoints inside the `COMMIT` that takes the WAL past `wal_autocheckpoint` pages: that
//! commit copies every page written since the last checkpoint into the database file and syncs it,
//! and every caller waiting on that group commit waits too (the tail of the audit log's
//! acknowledgement times). This task checkpoints from its own connection in `PASSIVE` mode, which
//! never blocks the writer or the readers, so when the writer's own checkpoint comes due only the
//! last few commits' pages are left to copy. The writer's checkpoint is kept: only the writer can
//! restart the WAL from its beginning, and it does so once a checkpoint has caught up with it.

use std::sync::Weak;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// How often the WAL is checkpointed: often enough that each pass copies little.
const INTERVAL: Duration = Duration::from_millis(20);

/// Starts the checkpointer on its own connection and returns that connection's pool, which
/// `SqliteStore::close` closes. The task also stops once `alive` can no longer be upgraded (the
/// store was dropped).
pub(super) async fn spawn(
    options: SqliteConnectOptions,
    alive: Weak<()>,
) -> Result<SqlitePool, sqlx::Error> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    tokio::spawn(run(pool.clone(), alive));
    Ok(pool)
}

async fn run(pool: SqlitePool, alive: Weak<()>) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        if pool.is_closed() || alive.upgrade().is_none() {
            break;
        }
        // A failed pass changes nothing: the writer's own checkpoint still bounds the WAL, and the
        // next tick tries again. Logged when it starts and stops failing, not every 20 ms.
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
