//! The embedded SQLite store: WAL, `synchronous=FULL` (a commit is on disk when it returns), one writer
//! connection that commits whole batches, and a small pool of readers.

mod backup;
mod credentials;
mod exports;
mod governance;
mod keys;
mod lockbox;
mod mfa;
mod shred;
mod write;

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::rows::*;
use crate::{Store, StoreError, UnitResult};

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
    ])
}

/// Readers map the file: every group commit would otherwise invalidate their page caches and
/// make each read re-`pread` its pages.
fn reader_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options.read_only(true).pragma("mmap_size", "268435456")
}

pub use backup::table_counts;

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
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
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        migrator()
            .run(&write)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        // Refresh the planner's statistics so indexed lookups stay indexed as tables grow.
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&write)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(reader_options(options))
            .await?;
        Ok(Self { read, write })
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
            .connect_with(options)
            .await?;
        Ok(Self {
            write: read.clone(),
            read,
        })
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn tenant(&self, id: &str) -> Result<Option<TenantRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn key_usage(&self, scope: &TenantScope) -> Result<Vec<KeyUsageRow>, StoreError> {
        keys::key_usage(&self.read, scope).await
    }

    async fn retired_tenant_keys(
        &self,
        scope: &TenantScope,
    ) -> Result<Vec<RetiredKeyRow>, StoreError> {
        keys::retired_tenant_keys(&self.read, scope).await
    }

    async fn all_tenant_keys(&self) -> Result<Vec<TenantKeyRow>, StoreError> {
        keys::all_tenant_keys(&self.read).await
    }

    async fn all_totp(&self) -> Result<Vec<TotpRow>, StoreError> {
        keys::all_totp(&self.read).await
    }

    async fn stale_ciphertexts(
        &self,
        scope: &TenantScope,
        table: CipherTable,
        current: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CipherRow>, StoreError> {
        keys::stale_ciphertexts(&self.read, scope, table, current, after, limit).await
    }

    async fn expired_cases(
        &self,
        scope: &TenantScope,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<CaseRow>, StoreError> {
        keys::expired_cases(&self.read, scope, cutoff, limit).await
    }

    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<TenantRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM tenants WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn tenant_keys(&self, scope: &TenantScope) -> Result<Vec<TenantKeyRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM tenant_keys WHERE tenant_id = $1 ORDER BY version")
                .bind(scope.id())
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn users(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserRow>, StoreError> {
        governance::users(&self.read, after, limit).await
    }

    async fn assignments_of(&self, user_id: &str) -> Result<Vec<AssignmentRow>, StoreError> {
        governance::assignments_of(&self.read, user_id).await
    }

    async fn assignment_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        governance::assignment_counts(&self.read).await
    }

    async fn inactivity_warnings(&self) -> Result<Vec<InactivityWarningRow>, StoreError> {
        governance::inactivity_warnings(&self.read).await
    }

    async fn active_grant_counts(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        governance::active_grant_counts(&self.read, now).await
    }

    async fn api_key_activity(&self, now: i64) -> Result<Vec<ApiKeyActivityRow>, StoreError> {
        governance::api_key_activity(&self.read, now).await
    }

    async fn mfa_enrolled_users(&self) -> Result<Vec<String>, StoreError> {
        governance::mfa_enrolled_users(&self.read).await
    }

    async fn access_reviews(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessReviewRow>, StoreError> {
        governance::access_reviews(&self.read, after, limit).await
    }

    async fn access_review(&self, id: &str) -> Result<Option<AccessReviewRow>, StoreError> {
        governance::access_review(&self.read, id).await
    }

    async fn access_review_lines(
        &self,
        review_id: &str,
    ) -> Result<Vec<AccessReviewLineRow>, StoreError> {
        governance::access_review_lines(&self.read, review_id).await
    }

    async fn access_request(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<AccessRequestRow>, StoreError> {
        lockbox::access_request(&self.read, scope, id).await
    }

    async fn access_requests(
        &self,
        scope: &TenantScope,
        filter: &AccessRequestFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessRequestRow>, StoreError> {
        lockbox::access_requests(&self.read, scope, filter, after, limit).await
    }

    async fn active_grants(
        &self,
        scope: &TenantScope,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<ActiveGrantRow>, StoreError> {
        lockbox::active_grants(&self.read, scope, user_id, now).await
    }

    async fn open_requests_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<AccessRequestRow>, StoreError> {
        lockbox::open_requests_of_user(&self.read, user_id, now).await
    }

    async fn grants_ending(
        &self,
        now: i64,
        until: i64,
    ) -> Result<Vec<AccessRequestRow>, StoreError> {
        lockbox::grants_ending(&self.read, now, until).await
    }

    async fn notifications(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        lockbox::notifications(&self.read, scope, after, limit).await
    }

    async fn due_notifications(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        lockbox::due_notifications(&self.read, now, limit).await
    }

    async fn webhook_secret(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<WebhookSecretRow>, StoreError> {
        lockbox::webhook_secret(&self.read, scope).await
    }

    async fn export(&self, scope: &TenantScope, id: &str) -> Result<Option<ExportRow>, StoreError> {
        exports::export(&self.read, scope, id).await
    }

    async fn exports(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        exports::exports(&self.read, scope, after, limit).await
    }

    async fn exported_records_since(
        &self,
        requester_id: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        exports::exported_records_since(&self.read, requester_id, since).await
    }

    async fn expired_exports(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        exports::expired_exports(&self.read, now, limit).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn user_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.read)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn user_totp(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionRow>, StoreError> {
        self.user_sessions_impl(user_id, now).await
    }

    async fn api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRow>, StoreError> {
        self.api_key_by_hash_impl(key_hash).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.api_key_impl(id).await
    }

    async fn api_keys(
        &self,
        tenant_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ApiKeyEntry>, StoreError> {
        self.api_keys_impl(tenant_id, after, limit).await
    }

    async fn contact(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<ContactRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM contacts WHERE tenant_id = $1 AND id = $2")
                .bind(scope.id())
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn contact_with_reach(
        &self,
        scope: &TenantScope,
        id: &str,
        assignee_id: &str,
    ) -> Result<Option<(ContactRow, bool)>, StoreError> {
        let row: Option<ContactReachRow> = sqlx::query_as(
            "SELECT c.*, EXISTS (SELECT 1 FROM cases k WHERE k.tenant_id = c.tenant_id \
             AND k.contact_id = c.id AND k.assignee_id = $3) AS reachable \
             FROM contacts c WHERE c.tenant_id = $1 AND c.id = $2",
        )
        .bind(scope.id())
        .bind(id)
        .bind(assignee_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| (r.contact, r.reachable)))
    }

    async fn contacts_by_email_index(
        &self,
        scope: &TenantScope,
        index: &[u8],
        limit: u32,
    ) -> Result<Vec<ContactRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM contacts WHERE tenant_id = $1 AND email_index = $2 ORDER BY id LIMIT $3",
        )
        .bind(scope.id())
        .bind(index)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }

    async fn contacts(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ContactRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM contacts WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(scope.id())
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }

    async fn case(&self, scope: &TenantScope, id: &str) -> Result<Option<CaseRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM cases WHERE tenant_id = $1 AND id = $2")
                .bind(scope.id())
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn cases(
        &self,
        scope: &TenantScope,
        filter: &CaseFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CaseRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM cases WHERE tenant_id = $1 AND id > $2 \
             AND ($3 IS NULL OR assignee_id = $3) ORDER BY id LIMIT $4",
        )
        .bind(scope.id())
        .bind(after.unwrap_or(""))
        .bind(filter.assignee_id.as_deref())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }

    async fn comments(
        &self,
        scope: &TenantScope,
        case_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CommentRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM comments WHERE tenant_id = $1 AND case_id = $2 AND id > $3 \
             ORDER BY id LIMIT $4",
        )
        .bind(scope.id())
        .bind(case_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }

    async fn audit_size(&self) -> Result<u64, StoreError> {
        let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(idx) + 1 FROM audit_entries")
            .fetch_one(&self.write)
            .await?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    async fn audit_nodes(&self, ids: &[NodeKey]) -> Result<Vec<Option<[u8; 32]>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut conn = self.read.acquire().await?;
        for id in ids {
            let index =
                i64::try_from(id.index).map_err(|_| StoreError::Corrupt("node index".into()))?;
            let row: Option<(Vec<u8>,)> =
                sqlx::query_as("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                    .bind(i64::from(id.level))
                    .bind(index)
                    .fetch_optional(&mut *conn)
                    .await?;
            out.push(match row {
                Some((bytes,)) => Some(
                    <[u8; 32]>::try_from(bytes.as_slice())
                        .map_err(|_| StoreError::Corrupt("audit node hash length".into()))?,
                ),
                None => None,
            });
        }
        Ok(out)
    }

    async fn audit_entries(
        &self,
        start: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntryRow>, StoreError> {
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        Ok(sqlx::query_as(
            "SELECT idx, tenant_id, entry FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
        )
        .bind(start)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }

    async fn audit_entries_for_tenant(
        &self,
        scope: &TenantScope,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntryRow>, StoreError> {
        let after = after.map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX));
        Ok(sqlx::query_as(
            "SELECT idx, tenant_id, entry FROM audit_entries WHERE tenant_id = $1 AND idx > $2 \
             ORDER BY idx LIMIT $3",
        )
        .bind(scope.id())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }

    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM audit_checkpoints ORDER BY size")
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn save_checkpoint(&self, checkpoint: &CheckpointRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (size, note, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(checkpoint.size)
        .bind(&checkpoint.note)
        .bind(checkpoint.created_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn commit(
        &self,
        units: &[Vec<Mutation>],
        audit: &AuditAppend,
    ) -> Result<Vec<UnitResult>, StoreError> {
        // Fast path: the whole batch in one transaction, no savepoints. Only when some unit breaks a
        // constraint is the batch redone with one savepoint per unit, so that unit fails alone.
        match self.commit_batch(units, audit, false).await {
            Err(StoreError::Conflict(_) | StoreError::MissingReference) => {
                self.commit_batch(units, audit, true).await
            }
            other => other,
        }
    }

    async fn tenant_shred(&self, tenant_id: &str) -> Result<Option<TenantShredRow>, StoreError> {
        shred::tenant_shred(&self.read, tenant_id).await
    }

    async fn tenant_shreds(&self) -> Result<Vec<TenantShredRow>, StoreError> {
        shred::tenant_shreds(&self.read).await
    }

    async fn purge_journal(&self) -> Result<bool, StoreError> {
        shred::purge_journal(&self.write).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }
}
