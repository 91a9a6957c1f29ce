//! The PostgreSQL store, for several stateless instances sharing one database.
//!
//! - Every transaction states its tenant scope (`strongroom.tenant`), and the tenant tables'
//!   row-level-security policies filter on it, so a query that forgot its `WHERE tenant_id`
//!   still sees one tenant only. The server refuses roles that would bypass those policies.
//! - Every batch locks the single `audit_head` row first: appends from all instances form one
//!   gap-free sequence; a batch planned against a stale head is planned again under the lock.

#[path = "../sql/audit_nodes.rs"]
mod audit_nodes;
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
#[path = "../sql/shred.rs"]
mod shred;
#[path = "../sql/store_impl.rs"]
mod store_impl;
#[path = "../sql/write.rs"]
mod write;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};

use crate::StoreError;
use crate::audit_scan::{AuditEntryRef, AuditScan, EntryDigest, ScannedEntry, index_bounds};
use crate::point_reads;
use crate::rows::{
    ActiveGrantRow, ContactReachRow, ContactRow, TenantScope, TotpRow, WatchedEntryRow,
};

// The shared SQL modules (`../sql`) are compiled once per backend against these names.
type Db = Postgres;
type Conn = sqlx::PgConnection;
type Backend = PgStore;

/// Tables of the current schema having a column named `$1`, for crypto-shredding.
const TABLES_WITH_COLUMN_SQL: &str = "SELECT c.table_name::text FROM information_schema.columns c \
     JOIN information_schema.tables t \
     ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
     WHERE c.table_schema = current_schema() AND c.column_name = $1 \
     AND t.table_type = 'BASE TABLE' AND c.table_name NOT LIKE '\\_sqlx\\_%' ORDER BY 1";

/// The oldest server whose row-level security and `IN`-list semantics we rely on.
const MIN_SERVER_VERSION: i64 = 130_000;

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
            include_str!("../../migrations/postgres/0001_initial.sql"),
        ),
        migration(
            2,
            "contact reach index",
            include_str!("../../migrations/postgres/0002_contact_reach.sql"),
        ),
        migration(
            3,
            "second factor",
            include_str!("../../migrations/postgres/0003_mfa.sql"),
        ),
        migration(
            4,
            "api keys",
            include_str!("../../migrations/postgres/0004_api_keys.sql"),
        ),
        migration(
            5,
            "access governance",
            include_str!("../../migrations/postgres/0005_governance.sql"),
        ),
        migration(
            6,
            "customer lockbox",
            include_str!("../../migrations/postgres/0006_lockbox.sql"),
        ),
        migration(
            7,
            "exports",
            include_str!("../../migrations/postgres/0007_exports.sql"),
        ),
        migration(
            8,
            "tenant shredding",
            include_str!("../../migrations/postgres/0008_shred.sql"),
        ),
        migration(
            9,
            "key rotation and retention",
            include_str!("../../migrations/postgres/0009_keys.sql"),
        ),
        migration(
            10,
            "leases, audit head and row-level security",
            include_str!("../../migrations/postgres/0010_leases.sql"),
        ),
        migration(
            11,
            "leaf hashes beside their entries",
            include_str!("../../migrations/postgres/0011_leaf_hash.sql"),
        ),
        migration(
            12,
            "tree nodes beside the entries that complete them",
            include_str!("../../migrations/postgres/0012_subtree_roots.sql"),
        ),
        migration(
            13,
            "access epochs for exports",
            include_str!("../../migrations/postgres/0013_access_epoch.sql"),
        ),
        migration(
            14,
            "incidents and the watch's progress",
            include_str!("../../migrations/postgres/0014_incidents.sql"),
        ),
        migration(
            15,
            "files attached to cases",
            include_str!("../../migrations/postgres/0015_attachments.sql"),
        ),
        migration(
            16,
            "key versions lost to a restore",
            include_str!("../../migrations/postgres/0016_key_losses.sql"),
        ),
        migration(
            17,
            "assignees' workload",
            include_str!("../../migrations/postgres/0017_assignee_workload.sql"),
        ),
        migration(
            18,
            "the root key's fingerprint",
            include_str!("../../migrations/postgres/0018_root_key.sql"),
        ),
        migration(
            19,
            "the records an export holds",
            include_str!("../../migrations/postgres/0019_export_records.sql"),
        ),
        migration(
            20,
            "exports whose approval lapsed",
            include_str!("../../migrations/postgres/0020_export_approval_lapsed.sql"),
        ),
    ])
}

/// How to reach the database. The URL may hold a password: `Debug` and errors never show it.
#[derive(Clone)]
pub struct PgOptions {
    pub url: String,
    /// The schema holding Strongroom's tables (must exist, owned by the connecting role);
    /// the role's default `search_path` when `None`.
    pub schema: Option<String>,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Any single statement running longer is cancelled by the server.
    pub statement_timeout: Duration,
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// A schema name we are willing to put in a connection's `search_path`.
fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Several instances may serve from one database.
    const SHARED: bool = true;

    /// Connects, checks that the server and the role are fit for the job, and migrates.
    pub async fn open(options: &PgOptions) -> Result<Self, StoreError> {
        let mut connect = PgConnectOptions::from_str(&options.url).map_err(|_| {
            StoreError::Misconfigured("the database URL is not a valid postgres:// URL".into())
        })?;
        let target = format!(
            "PostgreSQL at {}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("(default database)")
        );
        let timeout_ms = options.statement_timeout.as_millis().to_string();
        // A statement waiting on a lock gives up like SQLite's busy timeout, so a stuck writer
        // turns into `audit_unavailable` quickly instead of holding requests.
        let lock_ms = options.acquire_timeout.as_millis().to_string();
        // An entry is acknowledged once its commit returns, so the commit must wait for the WAL
        // flush whatever the role or database defaults say (`ALTER ROLE … SET
        // synchronous_commit = off` would otherwise acknowledge entries a crash then loses).
        let mut settings = vec![
            ("statement_timeout", timeout_ms),
            ("lock_timeout", lock_ms),
            ("synchronous_commit", "on".to_owned()),
        ];
        if let Some(schema) = &options.schema {
            if !valid_schema(schema) {
                return Err(StoreError::Misconfigured(
                    "the database schema must be a lowercase SQL identifier".into(),
                ));
            }
            settings.push(("search_path", schema.clone()));
        }
        connect = connect.options(settings).application_name("strongroom");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {target}: {e}")))?;
        check_server(&pool, options.schema.as_deref()).await?;
        migrator().run(&pool).await.map_err(|e| match e {
            MigrateError::VersionMissing(v) => StoreError::Misconfigured(format!(
                "the database was migrated by a newer strongroom (migration {v} is unknown to \
                 this version); upgrade this binary"
            )),
            MigrateError::VersionMismatch(v) => StoreError::Misconfigured(format!(
                "migration {v} in the database differs from this version's; the schema was \
                 changed by hand or by a different build"
            )),
            other => StoreError::Migration(other.to_string()),
        })?;
        Ok(Self { pool })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A read transaction that sees one tenant's rows only.
    async fn tenant_reader(
        &self,
        scope: &TenantScope,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        if scope.id() == "*" {
            return Err(StoreError::Corrupt("tenant id `*` is reserved".into()));
        }
        let mut tx = self.pool.begin_with("BEGIN READ ONLY").await?;
        sqlx::query("SELECT set_config('strongroom.tenant', $1, true)")
            .bind(scope.id())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A read transaction over every tenant (jobs, governance, the audit log).
    async fn platform_reader(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self
            .pool
            .begin_with("BEGIN READ ONLY; SELECT set_config('strongroom.tenant', '*', true)")
            .await?)
    }

    /// A connection for batches, and for single statements on tables without tenant rows
    /// (checkpoints, leases).
    async fn writer(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A group commit spans tenants, so it runs platform-wide.
    async fn begin_write(conn: &mut Conn) -> Result<Transaction<'_, Postgres>, StoreError> {
        Ok(conn
            .begin_with("BEGIN; SELECT set_config('strongroom.tenant', '*', true)")
            .await?)
    }

    /// The server checkpoints its own WAL.
    fn committed(&self) {}

    /// Instances queue on the audit head row, not on a database-wide write lock: every batch
    /// locks and reads it first.
    const WRITE_LOCK_ORDERS_APPENDS: bool = false;

    /// Locks the audit head row (every writer of every instance queues here) and reads it.
    async fn lock_audit_head(conn: &mut Conn) -> Result<i64, StoreError> {
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *conn)
            .await?;
        Ok(size)
    }

    async fn set_audit_head(conn: &mut Conn, size: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_head SET size = $1 WHERE id = 1")
            .bind(size)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn audit_size_impl(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT size FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn watched_entries_impl(
        &self,
        start: u64,
        limit: u32,
    ) -> Result<Vec<WatchedEntryRow>, StoreError> {
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        Ok(sqlx::query_as(
            "SELECT idx, tenant_id, entry, leaf_hash FROM audit_entries WHERE idx >= $1 \
             ORDER BY idx LIMIT $2",
        )
        .bind(start)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.platform_reader().await?)
        .await?)
    }

    /// The entries with the tree nodes in their rows, in one statement on one pooled connection;
    /// the digests are computed here, as the rows arrive whole anyway.
    async fn audit_scan_impl(
        &self,
        start: u64,
        limit: u32,
        digest: EntryDigest,
    ) -> Result<AuditScan, StoreError> {
        let (first, end) = index_bounds(start, limit)?;
        let rows: Vec<ScanRow> = sqlx::query_as(
            "SELECT idx, tenant_id, entry, leaf_hash, subtree_roots FROM audit_entries \
             WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        )
        .bind(first)
        .bind(end)
        .fetch_all(&mut *self.platform_reader().await?)
        .await?;
        // Hashing a page takes milliseconds: off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            let mut scan = AuditScan::default();
            scan.entries.reserve(rows.len());
            for (idx, tenant_id, entry, leaf_hash, subtree_roots) in &rows {
                scan.entry_bytes = scan
                    .entry_bytes
                    .saturating_add(u64::try_from(entry.len()).unwrap_or(u64::MAX));
                scan.entries.push(ScannedEntry {
                    idx: *idx,
                    digest: digest(AuditEntryRef {
                        idx: *idx,
                        tenant_id: tenant_id.as_deref(),
                        entry,
                    }),
                });
                scan.add_nodes(*idx, leaf_hash.as_deref(), subtree_roots.as_deref())?;
            }
            Ok(scan)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("audit scan task: {e}")))?
    }

    /// PostgreSQL keeps no separate journal of deleted rows that we could truncate; `VACUUM` of
    /// the key table (small, so quick) marks the deleted keys' space reusable. The data files and
    /// the WAL keep the old bytes until overwritten (docs/postgresql.md on backups).
    async fn purge_journal_impl(&self) -> Result<bool, StoreError> {
        sqlx::query("VACUUM tenant_keys")
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    async fn ping_impl(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// The lookups on every request's path (`point_reads`), each in its scoped read transaction.
impl PgStore {
    async fn contact_with_reach_impl(
        &self,
        scope: &TenantScope,
        id: &str,
        assignee_id: &str,
    ) -> Result<Option<(ContactRow, bool)>, StoreError> {
        let row: Option<ContactReachRow> = sqlx::query_as(point_reads::CONTACT_WITH_REACH)
            .bind(scope.id())
            .bind(id)
            .bind(assignee_id)
            .fetch_optional(&mut *self.tenant_reader(scope).await?)
            .await?;
        Ok(row.map(|r| (r.contact, r.reachable)))
    }

    async fn active_grants_impl(
        &self,
        scope: &TenantScope,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<ActiveGrantRow>, StoreError> {
        Ok(sqlx::query_as(point_reads::ACTIVE_GRANTS)
            .bind(scope.id())
            .bind(user_id)
            .bind(now)
            .fetch_all(&mut *self.tenant_reader(scope).await?)
            .await?)
    }

    async fn user_totp_impl(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
        Ok(sqlx::query_as(point_reads::USER_TOTP)
            .bind(user_id)
            .fetch_optional(&mut *self.platform_reader().await?)
            .await?)
    }
}

/// An audit entry's row as a scan reads it: index, tenant, entry, leaf hash, subtree roots.
type ScanRow = (
    i64,
    Option<String>,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// Refuses servers too old for us or not flushing their WAL, roles that row-level security
/// would not bind, and a schema that is not there.
async fn check_server(pool: &PgPool, schema: Option<&str>) -> Result<(), StoreError> {
    let (version,): (String,) = sqlx::query_as("SHOW server_version_num")
        .fetch_one(pool)
        .await?;
    let version: i64 = version.trim().parse().unwrap_or(0);
    if version < MIN_SERVER_VERSION {
        return Err(StoreError::Misconfigured(format!(
            "PostgreSQL {version} is too old; version 13 or later is required"
        )));
    }
    // A commit is durable only if the server flushes its WAL; `fsync = off` is a whole-server
    // setting our session cannot override, and with it a crash could lose signed entries.
    let (fsync,): (String,) = sqlx::query_as("SHOW fsync").fetch_one(pool).await?;
    if fsync.trim() != "on" {
        return Err(StoreError::Misconfigured(
            "the PostgreSQL server runs with fsync = off, so a commit (and the audit entry it \
             carries) could be lost in a crash; turn fsync on"
                .into(),
        ));
    }
    // Our connection options set it; a URL's own `options` must not have turned it off.
    let (synchronous,): (String,) = sqlx::query_as("SHOW synchronous_commit")
        .fetch_one(pool)
        .await?;
    if synchronous.trim() != "on" {
        return Err(StoreError::Misconfigured(
            "synchronous_commit is not on for our sessions, so a commit could be acknowledged \
             before it is durable"
                .into(),
        ));
    }
    let (role, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    if superuser || bypass {
        return Err(StoreError::Misconfigured(format!(
            "the database role `{role}` is a superuser or has BYPASSRLS, so row-level security \
             would not isolate tenants; connect as a role without them"
        )));
    }
    let (current,): (Option<String>,) = sqlx::query_as("SELECT current_schema()::text")
        .fetch_one(pool)
        .await?;
    if current.is_none() {
        return Err(StoreError::Misconfigured(format!(
            "schema `{}` does not exist or the role cannot use it",
            schema.unwrap_or("(search_path)")
        )));
    }
    Ok(())
}
