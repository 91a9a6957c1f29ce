//! The embedded SQLite store: WAL, `synchronous=FULL` (a commit is on disk when it returns), one writer
//! connection that commits whole batches, and a small pool of readers.

#[path = "../sql/audit_nodes.rs"]
mod audit_nodes;
mod backup;
mod checkpointer;
#[path = "../sql/commit.rs"]
mod commit;
#[path = "../sql/credentials.rs"]
mod credentials;
#[path = "../sql/exports.rs"]
mod exports;
#[path = "../sql/governance.rs"]
mod governance;
#[path = "../sql/incidents.rs"]
mod incidents;
#[path = "../sql/keys.rs"]
mod keys;
#[path = "../sql/lockbox.rs"]
mod lockbox;
#[path = "../sql/mfa.rs"]
mod mfa;
mod point;
mod scan;
#[path = "../sql/shred.rs"]
mod shred;
#[path = "../sql/store_impl.rs"]
mod store_impl;
#[path = "../sql/write.rs"]
mod write;
mod writer;

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, Transaction};

use crate::StoreError;
use crate::audit_scan::{AuditScan, EntryDigest};
use crate::rows::{ActiveGrantRow, ContactRow, TenantScope, TotpRow, WatchedEntryRow};
use checkpointer::Checkpointer;
use point::PointReader;
use scan::Scanner;
use writer::{Writer, WriterGuard};

// The shared SQL modules (`../sql`) are compiled once per backend against these names.
type Db = Sqlite;
type Conn = sqlx::SqliteConnection;
type Backend = SqliteStore;

/// Tables having a column named `$1`, for crypto-shredding.
const TABLES_WITH_COLUMN_SQL: &str = "SELECT m.name FROM sqlite_master m \
     JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND c.name = $1 \
     AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx_%' ORDER BY m.name";

fn migrator() -> Migrator {
    let migration = |version, description, sql: &'static str| {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(sql),
            false,
        )
    };
    Migrator::with_migrations(vec![
        migration(
            1,
            "initial",
            include_str!("../../migrations/sqlite/0001_initial.sql"),
        ),
        migration(
            2,
            "contact reach index",
            include_str!("../../migrations/sqlite/0002_contact_reach.sql"),
        ),
        migration(
            3,
            "second factor",
            include_str!("../../migrations/sqlite/0003_mfa.sql"),
        ),
        migration(
            4,
            "api keys",
            include_str!("../../migrations/sqlite/0004_api_keys.sql"),
        ),
        migration(
            5,
            "access governance",
            include_str!("../../migrations/sqlite/0005_governance.sql"),
        ),
        migration(
            6,
            "customer lockbox",
            include_str!("../../migrations/sqlite/0006_lockbox.sql"),
        ),
        migration(
            7,
            "exports",
            include_str!("../../migrations/sqlite/0007_exports.sql"),
        ),
        migration(
            8,
            "tenant shredding",
            include_str!("../../migrations/sqlite/0008_shred.sql"),
        ),
        migration(
            9,
            "key rotation and retention",
            include_str!("../../migrations/sqlite/0009_keys.sql"),
        ),
        migration(
            10,
            "leases",
            include_str!("../../migrations/sqlite/0010_leases.sql"),
        ),
        migration(
            11,
            "leaf hashes beside their entries",
            include_str!("../../migrations/sqlite/0011_leaf_hash.sql"),
        ),
        migration(
            12,
            "tree nodes beside the entries that complete them",
            include_str!("../../migrations/sqlite/0012_subtree_roots.sql"),
        ),
        migration(
            13,
            "access epochs for exports",
            include_str!("../../migrations/sqlite/0013_access_epoch.sql"),
        ),
        migration(
            14,
            "incidents and the watch's progress",
            include_str!("../../migrations/sqlite/0014_incidents.sql"),
        ),
        migration(
            15,
            "files attached to cases",
            include_str!("../../migrations/sqlite/0015_attachments.sql"),
        ),
        migration(
            16,
            "key versions lost to a restore",
            include_str!("../../migrations/sqlite/0016_key_losses.sql"),
        ),
        migration(
            17,
            "assignees' workload",
            include_str!("../../migrations/sqlite/0017_assignee_workload.sql"),
        ),
        migration(
            18,
            "the root key's fingerprint",
            include_str!("../../migrations/sqlite/0018_root_key.sql"),
        ),
        migration(
            19,
            "the records an export holds",
            include_str!("../../migrations/sqlite/0019_export_records.sql"),
        ),
        migration(
            20,
            "exports whose approval lapsed",
            include_str!("../../migrations/sqlite/0020_export_approval_lapsed.sql"),
        ),
    ])
}

/// Readers do not map the file: the background checkpoints change it every few milliseconds,
/// and each change makes every mapped reader unmap it whole at its next transaction (`munmap`
/// and TLB shootdowns cost ~5 % of the server's CPU under audited reads; measured without the
/// map: 14 % less CPU per read, docs/benchmarks.md 2026-12-04). The verifier's scanner, which
/// reads the whole file once, still maps it.
fn reader_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options.read_only(true)
}

pub use backup::table_counts;

pub struct SqliteStore {
    read: SqlitePool,
    write: Writer,
    /// The WAL checkpointer's connection (see `checkpointer`), `None` when read-only.
    checkpointer: Option<Checkpointer>,
    /// The lookups on every request's path, stepped on the caller's thread.
    point: PointReader,
    /// Bulk audit reads for verification.
    scanner: Scanner,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows and freed pages are zeroed, so a shredded tenant's wrapped keys do not
            // linger in free space.
            .pragma("secure_delete", "ON")
            .busy_timeout(busy_timeout)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-32768");
        let write = Writer::connect(&options).await?;
        {
            let mut conn = write.lock().await?;
            migrator()
                .run(&mut *conn)
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            // Refresh the planner's statistics so indexed lookups stay indexed as tables grow.
            sqlx::query("PRAGMA optimize=0x10002")
                .execute(&mut *conn)
                .await?;
        }
        // No ping before each read: an in-process connection has no far end that could have gone
        // away, and the ping is a round trip to its thread.
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(reader_options(options.clone()))
            .await?;
        let checkpointer = Checkpointer::spawn(options).await?;
        Ok(Self {
            read,
            write,
            checkpointer: Some(checkpointer),
            point: PointReader::new(path, busy_timeout),
            scanner: Scanner::new(path, busy_timeout),
        })
    }

    /// Opens an existing database for reading only: no creation, no migration, and every write
    /// fails. For tools that inspect a data dir, possibly while its server runs (`audit verify`).
    pub async fn open_read_only(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(busy_timeout);
        let read = SqlitePoolOptions::new()
            .max_connections(2)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            write: Writer::connect(&options).await?,
            read,
            checkpointer: None,
            point: PointReader::new(path, busy_timeout),
            scanner: Scanner::new(path, busy_timeout),
        })
    }

    /// Closes the pools, checkpointing the WAL.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close().await;
        }
        self.read.close().await;
        self.write.close().await;
    }
}

impl SqliteStore {
    /// The data-dir lock gives the database one server.
    const SHARED: bool = false;

    /// SQLite has no row-level security: the tenant is in every query's `WHERE`.
    async fn tenant_reader(
        &self,
        _scope: &TenantScope,
    ) -> Result<PoolConnection<Sqlite>, StoreError> {
        Ok(self.read.acquire().await?)
    }

    async fn platform_reader(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        Ok(self.read.acquire().await?)
    }

    /// The one write connection: batches, and single statements outside them (checkpoints,
    /// leases).
    async fn writer(&self) -> Result<WriterGuard<'_>, StoreError> {
        self.write.lock().await
    }

    /// `IMMEDIATE` takes the write lock at once instead of failing at the first write.
    async fn begin_write(conn: &mut Conn) -> Result<Transaction<'_, Sqlite>, StoreError> {
        Ok(conn.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Hands the pages a batch wrote to the checkpointer.
    fn committed(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.nudge();
        }
    }

    /// `BEGIN IMMEDIATE` holds the database's one write lock, so a batch planned on the head the
    /// process knows goes in unless another process appended since, which the entries' primary
    /// key then refuses. The head is read only after such a refusal: one statement less per
    /// group commit. (A tail deleted behind the server's back is not papered over by re-planning
    /// onto it; the gap stays for `audit verify` to name.)
    const WRITE_LOCK_ORDERS_APPENDS: bool = true;

    /// The log's size; `BEGIN IMMEDIATE` already holds the database's one write lock.
    async fn lock_audit_head(conn: &mut Conn) -> Result<i64, StoreError> {
        let (size,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entries")
            .fetch_one(&mut *conn)
            .await?;
        Ok(size)
    }

    /// The size is derived from the entries themselves.
    async fn set_audit_head(_conn: &mut Conn, _size: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// On a reader: public proof requests ask for it, and must not queue behind the writer every
    /// commit waits for (a committed size is what a reader's snapshot holds).
    async fn audit_size_impl(&self) -> Result<u64, StoreError> {
        let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(idx) + 1 FROM audit_entries")
            .fetch_one(&mut *self.platform_reader().await?)
            .await?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    async fn audit_scan_impl(
        &self,
        start: u64,
        limit: u32,
        digest: EntryDigest,
    ) -> Result<AuditScan, StoreError> {
        self.scanner.scan(start, limit, digest).await
    }

    async fn watched_entries_impl(
        &self,
        start: u64,
        limit: u32,
    ) -> Result<Vec<WatchedEntryRow>, StoreError> {
        self.scanner.watched(start, limit).await
    }

    async fn purge_journal_impl(&self) -> Result<bool, StoreError> {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *self.writer().await?)
            .await?;
        Ok(busy == 0)
    }

    async fn ping_impl(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn contact_with_reach_impl(
        &self,
        scope: &TenantScope,
        id: &str,
        assignee_id: &str,
    ) -> Result<Option<(ContactRow, bool)>, StoreError> {
        self.point.contact_with_reach(scope, id, assignee_id)
    }

    async fn active_grants_impl(
        &self,
        scope: &TenantScope,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<ActiveGrantRow>, StoreError> {
        self.point.active_grants(scope, user_id, now)
    }

    async fn user_totp_impl(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
        self.point.user_totp(user_id)
    }
}

/// rusqlite's messages may quote values; keep only SQLite's result code, as `From<sqlx::Error>`.
fn unavailable(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(code) => StoreError::Unavailable(format!("database error {code:?}")),
        None => StoreError::Unavailable("database read failed".into()),
    }
}
