//! The database's one write connection, held directly instead of through a pool.
//!
//! A pool hands a connection back through a task it spawns, which pings the connection (a round
//! trip to the connection's thread) before the next caller may have it: between two group
//! commits, the writer waited for that task to be scheduled and for the ping. A mutex hands the
//! connection over when the guard drops. Transactions borrow the connection from the guard, so a
//! transaction dropped unfinished is rolled back before the next holder's first statement.

use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::StoreError;

/// As long as a pool waited for a connection before giving up: past it the database is stuck,
/// and the request is refused rather than queued forever.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The write connection; `None` once closed, after which every write is refused.
pub(super) struct Writer {
    conn: Mutex<Option<SqliteConnection>>,
}

/// The write connection, held until dropped.
pub(super) type WriterGuard<'a> = MappedMutexGuard<'a, SqliteConnection>;

impl Writer {
    pub(super) async fn connect(options: &SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let conn = SqliteConnection::connect_with(options).await?;
        Ok(Self {
            conn: Mutex::new(Some(conn)),
        })
    }

    /// The connection, once every earlier holder is done with it.
    pub(super) async fn lock(&self) -> Result<WriterGuard<'_>, StoreError> {
        let guard = tokio::time::timeout(LOCK_TIMEOUT, self.conn.lock())
            .await
            .map_err(|_| StoreError::Unavailable("timed out waiting for the writer".into()))?;
        MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))
    }

    /// Closes the connection (the last one to close checkpoints the WAL into the database).
    pub(super) async fn close(&self) {
        let Some(conn) = self.conn.lock().await.take() else {
            return;
        };
        if let Err(err) = conn.close().await {
            tracing::warn!(error = %err, "closing the write connection failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::sqlite::SqliteStore;

    async fn writer_on_temp_file() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .expect("options")
            .create_if_missing(true);
        let writer = Writer::connect(&options).await.expect("connect");
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut *writer.lock().await.expect("lock"))
            .await
            .expect("create");
        (dir, writer)
    }

    async fn count(writer: &Writer) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *writer.lock().await.expect("lock"))
            .await
            .expect("count");
        n
    }

    #[tokio::test]
    async fn a_transaction_dropped_unfinished_leaves_nothing_for_the_next_holder() {
        let (_dir, writer) = writer_on_temp_file().await;
        {
            let mut conn = writer.lock().await.expect("lock");
            let mut tx = SqliteStore::begin_write(&mut conn).await.expect("begin");
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        // The next holder can begin (no transaction left open) and sees no row.
        let mut conn = writer.lock().await.expect("lock");
        let mut tx = SqliteStore::begin_write(&mut conn)
            .await
            .expect("begin after drop");
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        drop(conn);
        assert_eq!(count(&writer).await, 1);
    }

    #[tokio::test]
    async fn a_closed_writer_refuses_every_holder() {
        let (_dir, writer) = writer_on_temp_file().await;
        writer.close().await;
        assert!(matches!(
            writer.lock().await.err(),
            Some(StoreError::Unavailable(_))
        ));
    }
}
