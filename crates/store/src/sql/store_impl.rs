//! The [`Store`] trait over the SQL shared by both backends. Reads go through the backend's
//! `tenant_reader` (on PostgreSQL, a transaction whose row-level-security scope is that one
//! tenant) or `platform_reader` (every tenant: jobs, governance, the audit log).

use async_trait::async_trait;

use super::{Backend, audit_nodes, exports, governance, incidents, keys, lockbox, shred};
use crate::Mutation;
use crate::audit_scan::{AuditScan, EntryDigest};
use crate::rows::*;
use crate::{Replan, Store, StoreError, UnitResult};

/// An attachment's row without its content, which only a download reads.
macro_rules! attachment_columns {
    () => {
        "SELECT tenant_id, id, case_id, uploaded_by, name, media_type, size, scanner, scanned_at, \
         created_at FROM attachments"
    };
}

#[async_trait]
impl Store for Backend {
    async fn tenant(&self, id: &str) -> Result<Option<TenantRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.platform_reader().await?)
            .await?)
    }

    async fn key_usage(&self, scope: &TenantScope) -> Result<Vec<KeyUsageRow>, StoreError> {
        keys::key_usage(&mut *self.tenant_reader(scope).await?, scope).await
    }

    async fn retired_tenant_keys(
        &self,
        scope: &TenantScope,
    ) -> Result<Vec<RetiredKeyRow>, StoreError> {
        keys::retired_tenant_keys(&mut *self.tenant_reader(scope).await?, scope).await
    }

    async fn lost_tenant_keys(&self, scope: &TenantScope) -> Result<Vec<i64>, StoreError> {
        keys::lost_tenant_keys(&mut *self.tenant_reader(scope).await?, scope).await
    }

    async fn all_tenant_keys(&self) -> Result<Vec<TenantKeyRow>, StoreError> {
        keys::all_tenant_keys(&mut *self.platform_reader().await?).await
    }

    async fn all_totp(&self) -> Result<Vec<TotpRow>, StoreError> {
        keys::all_totp(&mut *self.platform_reader().await?).await
    }

    async fn root_key_fingerprint(&self) -> Result<Option<String>, StoreError> {
        keys::root_key_fingerprint(&mut *self.platform_reader().await?).await
    }

    async fn record_root_key(
        &self,
        fingerprint: &str,
        replacing: Option<&str>,
    ) -> Result<bool, StoreError> {
        keys::record_root_key(&mut *self.writer().await?, fingerprint, replacing).await
    }

    async fn stale_ciphertexts(
        &self,
        scope: &TenantScope,
        table: CipherTable,
        current: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CipherRow>, StoreError> {
        keys::stale_ciphertexts(
            &mut *self.tenant_reader(scope).await?,
            scope,
            table,
            current,
            after,
            limit,
        )
        .await
    }

    async fn expired_cases(
        &self,
        scope: &TenantScope,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<CaseRow>, StoreError> {
        keys::expired_cases(&mut *self.tenant_reader(scope).await?, scope, cutoff, limit).await
    }

    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<TenantRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM tenants WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.platform_reader().await?)
                .await?,
        )
    }

    async fn tenant_keys(&self, scope: &TenantScope) -> Result<Vec<TenantKeyRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM tenant_keys WHERE tenant_id = $1 ORDER BY version")
                .bind(scope.id())
                .fetch_all(&mut *self.tenant_reader(scope).await?)
                .await?,
        )
    }

    async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.platform_reader().await?)
            .await?)
    }

    async fn users(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserRow>, StoreError> {
        governance::users(&mut *self.platform_reader().await?, after, limit).await
    }

    async fn active_staff(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StaffRow>, StoreError> {
        governance::active_staff(&mut *self.platform_reader().await?, after, limit).await
    }

    async fn assignments_of(&self, user_id: &str) -> Result<Vec<AssignmentRow>, StoreError> {
        governance::assignments_of(&mut *self.platform_reader().await?, user_id).await
    }

    async fn assignment_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        governance::assignment_counts(&mut *self.platform_reader().await?).await
    }

    async fn open_case_counts(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        governance::open_case_counts(&mut *self.platform_reader().await?, user_ids).await
    }

    async fn inactivity_warnings(&self) -> Result<Vec<InactivityWarningRow>, StoreError> {
        governance::inactivity_warnings(&mut *self.platform_reader().await?).await
    }

    async fn active_grant_counts(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        governance::active_grant_counts(&mut *self.platform_reader().await?, now).await
    }

    async fn api_key_activity(&self, now: i64) -> Result<Vec<ApiKeyActivityRow>, StoreError> {
        governance::api_key_activity(&mut *self.platform_reader().await?, now).await
    }

    async fn mfa_enrolled_users(&self) -> Result<Vec<String>, StoreError> {
        governance::mfa_enrolled_users(&mut *self.platform_reader().await?).await
    }

    async fn access_reviews(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessReviewRow>, StoreError> {
        governance::access_reviews(&mut *self.platform_reader().await?, after, limit).await
    }

    async fn incidents(
        &self,
        scope: Option<&TenantScope>,
        state: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        match scope {
            Some(scope) => {
                let mut conn = self.tenant_reader(scope).await?;
                incidents::incidents(&mut conn, Some(scope), state, after, limit).await
            }
            None => {
                let mut conn = self.platform_reader().await?;
                incidents::incidents(&mut conn, None, state, after, limit).await
            }
        }
    }

    async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        incidents::incident(&mut *self.platform_reader().await?, id).await
    }

    async fn open_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        incidents::open_incidents(&mut *self.platform_reader().await?).await
    }

    async fn watch_progress(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let next = incidents::watch_progress(&mut *self.platform_reader().await?, name).await?;
        next.map(|n| u64::try_from(n).map_err(|_| StoreError::Corrupt("watch progress".into())))
            .transpose()
    }

    async fn watched_entries(
        &self,
        start: u64,
        limit: u32,
    ) -> Result<Vec<WatchedEntryRow>, StoreError> {
        self.watched_entries_impl(start, limit).await
    }

    async fn access_review(&self, id: &str) -> Result<Option<AccessReviewRow>, StoreError> {
        governance::access_review(&mut *self.platform_reader().await?, id).await
    }

    async fn access_review_lines(
        &self,
        review_id: &str,
    ) -> Result<Vec<AccessReviewLineRow>, StoreError> {
        governance::access_review_lines(&mut *self.platform_reader().await?, review_id).await
    }

    async fn access_request(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<AccessRequestRow>, StoreError> {
        lockbox::access_request(&mut *self.tenant_reader(scope).await?, scope, id).await
    }

    async fn access_requests(
        &self,
        scope: &TenantScope,
        filter: &AccessRequestFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessRequestRow>, StoreError> {
        lockbox::access_requests(
            &mut *self.tenant_reader(scope).await?,
            scope,
            filter,
            after,
            limit,
        )
        .await
    }

    async fn active_grants(
        &self,
        scope: &TenantScope,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<ActiveGrantRow>, StoreError> {
        self.active_grants_impl(scope, user_id, now).await
    }

    async fn case_open_requesters(
        &self,
        scope: &TenantScope,
        case_id: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        lockbox::case_open_requesters(&mut *self.tenant_reader(scope).await?, scope, case_id, now)
            .await
    }

    async fn open_requests_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<AccessRequestRow>, StoreError> {
        lockbox::open_requests_of_user(&mut *self.platform_reader().await?, user_id, now).await
    }

    async fn grants_ending(
        &self,
        now: i64,
        until: i64,
    ) -> Result<Vec<AccessRequestRow>, StoreError> {
        lockbox::grants_ending(&mut *self.platform_reader().await?, now, until).await
    }

    async fn notifications(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        lockbox::notifications(&mut *self.tenant_reader(scope).await?, scope, after, limit).await
    }

    async fn due_notifications(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        lockbox::due_notifications(&mut *self.platform_reader().await?, now, limit).await
    }

    async fn webhook_secret(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<WebhookSecretRow>, StoreError> {
        lockbox::webhook_secret(&mut *self.tenant_reader(scope).await?, scope).await
    }

    async fn export(&self, scope: &TenantScope, id: &str) -> Result<Option<ExportRow>, StoreError> {
        exports::export(&mut *self.tenant_reader(scope).await?, scope, id).await
    }

    async fn exports(
        &self,
        scope: &TenantScope,
        requester_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let mut conn = self.tenant_reader(scope).await?;
        exports::exports(&mut conn, scope, requester_id, after, limit).await
    }

    async fn exported_records_since(
        &self,
        requester_id: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.platform_reader().await?;
        exports::exported_records_since(&mut conn, requester_id, since, false).await
    }

    async fn records_exported_without_approval_since(
        &self,
        requester_id: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.platform_reader().await?;
        exports::exported_records_since(&mut conn, requester_id, since, true).await
    }

    async fn expired_exports(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        exports::expired_exports(&mut *self.platform_reader().await?, now, limit).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *self.platform_reader().await?)
            .await?)
    }

    async fn user_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *self.platform_reader().await?)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&mut *self.platform_reader().await?)
                .await?,
        )
    }

    async fn user_totp(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
        self.user_totp_impl(user_id).await
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
                .fetch_optional(&mut *self.tenant_reader(scope).await?)
                .await?,
        )
    }

    async fn contact_with_reach(
        &self,
        scope: &TenantScope,
        id: &str,
        assignee_id: &str,
    ) -> Result<Option<(ContactRow, bool)>, StoreError> {
        self.contact_with_reach_impl(scope, id, assignee_id).await
    }

    async fn contacts_by_email_index(
        &self,
        scope: &TenantScope,
        index: &[u8],
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ContactRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM contacts WHERE tenant_id = $1 AND email_index = $2 AND id > $3 \
             ORDER BY id LIMIT $4",
        )
        .bind(scope.id())
        .bind(index)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tenant_reader(scope).await?)
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
        .fetch_all(&mut *self.tenant_reader(scope).await?)
        .await?)
    }

    async fn case(&self, scope: &TenantScope, id: &str) -> Result<Option<CaseRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM cases WHERE tenant_id = $1 AND id = $2")
                .bind(scope.id())
                .bind(id)
                .fetch_optional(&mut *self.tenant_reader(scope).await?)
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
        let also: &[String] = if filter.assignee_id.is_some() {
            &filter.also_ids
        } else {
            &[]
        };
        let also_placeholders: Vec<String> = (5..5 + also.len()).map(|i| format!("${i}")).collect();
        let also_clause = if also.is_empty() {
            String::new()
        } else {
            format!(" OR id IN ({})", also_placeholders.join(", "))
        };
        // Only numbered placeholders are spliced in; the ids are bound.
        let sql = format!(
            "SELECT * FROM cases WHERE tenant_id = $1 AND id > $2 \
             AND ($3 IS NULL OR assignee_id = $3{also_clause}) ORDER BY id LIMIT $4"
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(scope.id())
            .bind(after.unwrap_or(""))
            .bind(filter.assignee_id.as_deref())
            .bind(i64::from(limit));
        for id in also {
            query = query.bind(id);
        }
        Ok(query
            .fetch_all(&mut *self.tenant_reader(scope).await?)
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
        .fetch_all(&mut *self.tenant_reader(scope).await?)
        .await?)
    }

    async fn attachments(
        &self,
        scope: &TenantScope,
        case_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AttachmentRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            attachment_columns!(),
            " WHERE tenant_id = $1 AND case_id = $2 AND id > $3 ORDER BY id LIMIT $4"
        ))
        .bind(scope.id())
        .bind(case_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tenant_reader(scope).await?)
        .await?)
    }

    async fn attachment(
        &self,
        scope: &TenantScope,
        case_id: &str,
        id: &str,
    ) -> Result<Option<AttachmentRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            attachment_columns!(),
            " WHERE tenant_id = $1 AND case_id = $2 AND id = $3"
        ))
        .bind(scope.id())
        .bind(case_id)
        .bind(id)
        .fetch_optional(&mut *self.tenant_reader(scope).await?)
        .await?)
    }

    async fn attachment_content(
        &self,
        scope: &TenantScope,
        case_id: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT content FROM attachments WHERE tenant_id = $1 AND case_id = $2 AND id = $3",
        )
        .bind(scope.id())
        .bind(case_id)
        .bind(id)
        .fetch_optional(&mut *self.tenant_reader(scope).await?)
        .await?)
    }

    async fn audit_size(&self) -> Result<u64, StoreError> {
        self.audit_size_impl().await
    }

    async fn audit_nodes(&self, ids: &[NodeKey]) -> Result<Vec<Option<[u8; 32]>>, StoreError> {
        audit_nodes::nodes_by_id(&mut *self.platform_reader().await?, ids).await
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
        .fetch_all(&mut *self.platform_reader().await?)
        .await?)
    }

    async fn audit_scan(
        &self,
        start: u64,
        limit: u32,
        digest: EntryDigest,
    ) -> Result<AuditScan, StoreError> {
        self.audit_scan_impl(start, limit, digest).await
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
        .fetch_all(&mut *self.tenant_reader(scope).await?)
        .await?)
    }

    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&mut *self.platform_reader().await?)
                .await?,
        )
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM audit_checkpoints ORDER BY size")
                .fetch_all(&mut *self.platform_reader().await?)
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
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn commit(
        &self,
        units: &[Vec<Mutation>],
        audit: &AuditAppend,
        replan: Replan<'_>,
    ) -> Result<Vec<UnitResult>, StoreError> {
        // Fast path: the whole batch in one transaction, no savepoints. Only when some unit breaks a
        // constraint is the batch redone with one savepoint per unit, so that unit fails alone.
        match self.commit_batch(units, audit, replan, false).await {
            Err(err) if err.refuses_unit_only() => {
                self.commit_batch(units, audit, replan, true).await
            }
            other => other,
        }
    }

    async fn tenant_shred(&self, tenant_id: &str) -> Result<Option<TenantShredRow>, StoreError> {
        shred::tenant_shred(&mut *self.platform_reader().await?, tenant_id).await
    }

    async fn tenant_shreds(&self) -> Result<Vec<TenantShredRow>, StoreError> {
        shred::tenant_shreds(&mut *self.platform_reader().await?).await
    }

    async fn purge_journal(&self) -> Result<bool, StoreError> {
        self.purge_journal_impl().await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $3",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(until)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    fn shared(&self) -> bool {
        Self::SHARED
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.ping_impl().await
    }
}
