//! The mutations of the write path, each applied inside the batch transaction (`super::commit`).

use sqlx::QueryBuilder;

use super::{Conn, Db};
use crate::error::LAST_PLATFORM_ADMIN;
use crate::{Mutation, StoreError};

/// Rows per multi-row INSERT; SQLite allows 32766 bound variables, PostgreSQL 65535.
pub(super) const INSERT_CHUNK: usize = 500;

/// A case may only reference a contact of its own tenant that exists when the case is written (checked
/// inside the transaction, so a concurrent delete cannot leave a dangling link).
/// Fails with `why` unless `user_id` is active with `access_epoch`: a change built on the user's
/// access (an export, an access request) is refused if a role change, suspension or revocation
/// committed meanwhile; each of those moves the epoch in its own commit.
pub(super) async fn require_access_unchanged(
    conn: &mut Conn,
    user_id: &str,
    access_epoch: i64,
    why: &'static str,
) -> Result<(), StoreError> {
    let unchanged: Option<(i64,)> = sqlx::query_as(
        "SELECT CAST(1 AS BIGINT) FROM users WHERE id = $1 AND status = 'active' \
         AND access_epoch = $2",
    )
    .bind(user_id)
    .bind(access_epoch)
    .fetch_optional(&mut *conn)
    .await?;
    unchanged.map(drop).ok_or(StoreError::Conflict(why))
}

async fn require_contact(
    conn: &mut Conn,
    tenant_id: &str,
    contact_id: Option<&str>,
) -> Result<(), StoreError> {
    let Some(contact_id) = contact_id else {
        return Ok(());
    };
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT CAST(1 AS BIGINT) FROM contacts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(contact_id)
            .fetch_optional(conn)
            .await?;
    found.map(|_| ()).ok_or(StoreError::MissingReference)
}

pub(super) async fn apply(conn: &mut Conn, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::InsertAccessRequest { .. }
        | Mutation::RequireNoOpenRequest { .. }
        | Mutation::DecideAccessRequest { .. }
        | Mutation::RevokeAccessRequest { .. }
        | Mutation::ReviewBreakGlass { .. }
        | Mutation::RevokeUserGrants { .. }
        | Mutation::MarkExpiryNotified { .. }
        | Mutation::InsertNotification(_)
        | Mutation::RecordDeliveryAttempt { .. }
        | Mutation::PostponeDelivery { .. }
        | Mutation::SetWebhookSecret { .. } => return super::lockbox::apply(conn, mutation).await,
        Mutation::InsertExport { .. }
        | Mutation::ApproveExport { .. }
        | Mutation::ExpireExport { .. }
        | Mutation::ExpireTenantExports { .. }
        | Mutation::DeleteTenantExports { .. }
        | Mutation::ExpireUserExports { .. } => {
            return super::exports::apply(conn, mutation).await;
        }
        Mutation::OpenIncident(_)
        | Mutation::ExtendIncident { .. }
        | Mutation::CloseIncident { .. }
        | Mutation::AdvanceWatch { .. } => return super::incidents::apply(conn, mutation).await,
        Mutation::ShredTenant {
            scope,
            request_ref,
            at,
        } => return super::shred::shred_tenant(conn, scope, request_ref, *at).await,
        Mutation::ReencryptRow { .. }
        | Mutation::RetireTenantKey { .. }
        | Mutation::RewrapTenantKey { .. }
        | Mutation::ResealTotp { .. }
        | Mutation::RequireRootSealedCounts { .. }
        | Mutation::RequireRootKey { .. }
        | Mutation::ReplaceRootKey { .. }
        | Mutation::PurgeCase { .. } => return super::keys::apply(conn, mutation).await,
        Mutation::InsertTenant(t) => {
            sqlx::query(
                "INSERT INTO tenants (id, name, status, instructions, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.status)
            .bind(&t.instructions)
            .bind(t.created_at)
            .bind(t.updated_at)
            .execute(conn)
            .await?;
        }
        Mutation::UpdateTenant {
            row: t,
            read_updated_at,
        } => {
            let done = sqlx::query(
                "UPDATE tenants SET name = $2, status = $3, instructions = $4, updated_at = $5 \
                 WHERE id = $1 AND updated_at = $6",
            )
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.status)
            .bind(&t.instructions)
            .bind(t.updated_at)
            .bind(*read_updated_at)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the tenant changed meanwhile"));
            }
        }
        Mutation::InsertTenantKey(k) => {
            sqlx::query(
                "INSERT INTO tenant_keys (tenant_id, version, wrapped, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&k.tenant_id)
            .bind(k.version)
            .bind(&k.wrapped)
            .bind(k.created_at)
            .execute(conn)
            .await?;
        }
        Mutation::RecordKeyLoss { scope, version, at } => {
            sqlx::query(
                "INSERT INTO tenant_key_losses (tenant_id, version, recorded_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, version) DO NOTHING",
            )
            .bind(scope.id())
            .bind(*version)
            .bind(*at)
            .execute(conn)
            .await?;
        }
        Mutation::InsertUser(u) => {
            let done = sqlx::query(
                "INSERT INTO users (id, username, display_name, password_hash, roles, tenant_id, status, \
                 status_reason, confidentiality_version, confidentiality_at, failed_logins, \
                 last_failed_login_at, locked_until, last_login_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (username) DO NOTHING",
            )
            .bind(&u.id)
            .bind(&u.username)
            .bind(&u.display_name)
            .bind(&u.password_hash)
            .bind(&u.roles)
            .bind(&u.tenant_id)
            .bind(&u.status)
            .bind(&u.status_reason)
            .bind(&u.confidentiality_version)
            .bind(u.confidentiality_at)
            .bind(u.failed_logins)
            .bind(u.last_failed_login_at)
            .bind(u.locked_until)
            .bind(u.last_login_at)
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(conn)
            .await?;
            // Not a constraint violation: PostgreSQL would log the duplicate username with it.
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("unique constraint"));
            }
        }
        Mutation::SetUserRoles { user_id, roles, at } => {
            sqlx::query("UPDATE users SET roles = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(roles)
                .bind(at)
                .execute(conn)
                .await?;
        }
        Mutation::SetUserStatus {
            user_id,
            status,
            reason,
            at,
        } => {
            sqlx::query(
                "UPDATE users SET status = $2, status_reason = $3, updated_at = $4, \
                 reactivated_at = CASE WHEN $2 = 'active' THEN $4 ELSE reactivated_at END \
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(status)
            .bind(reason)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::AcknowledgeConfidentiality {
            user_id,
            version,
            at,
        } => {
            sqlx::query(
                "UPDATE users SET confidentiality_version = $2, confidentiality_at = $3, updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            // The first acknowledgement of a version is the one that counts.
            sqlx::query(
                "INSERT INTO confidentiality_acknowledgements (user_id, version, acknowledged_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (user_id, version) DO NOTHING",
            )
            .bind(user_id)
            .bind(version)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::RecordLoginFailure {
            user_id,
            at,
            locked_until,
        } => {
            sqlx::query(
                // The count restarts when it locks the account: what the store holds is the
                // failures since the last success or lockout, which every instance takes in.
                "UPDATE users SET failed_logins = CASE WHEN $3 IS NULL THEN failed_logins + 1 \
                 ELSE 0 END, last_failed_login_at = $2, locked_until = COALESCE($3, locked_until) \
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(at)
            .bind(locked_until)
            .execute(conn)
            .await?;
        }
        Mutation::SetPasswordHash {
            user_id,
            password_hash,
            at,
        } => {
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(password_hash)
                .bind(at)
                .execute(conn)
                .await?;
        }
        Mutation::RecordLoginSuccess { user_id, at } => {
            sqlx::query(
                "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1",
            )
            .bind(user_id)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::InsertSession { .. }
        | Mutation::TouchSession { .. }
        | Mutation::RevokeSession { .. }
        | Mutation::RevokeUserSessions { .. }
        | Mutation::RevokeOtherSessions { .. }
        | Mutation::InsertApiKey(_)
        | Mutation::TouchApiKey { .. }
        | Mutation::RevokeApiKey { .. }
        | Mutation::RevokeAllCredentials { .. }
        | Mutation::RevokeUserApiKeys { .. } => {
            return super::credentials::apply(conn, mutation).await;
        }
        Mutation::BeginTotp { .. }
        | Mutation::ConfirmTotp { .. }
        | Mutation::UseTotpStep { .. }
        | Mutation::UseRecoveryCode { .. }
        | Mutation::ResetTotp { .. } => super::mfa::apply(conn, mutation).await?,
        Mutation::InsertContact(c) => {
            sqlx::query(
                "INSERT INTO contacts (tenant_id, id, name, email, phone, address, notes, email_index, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&c.tenant_id)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.email)
            .bind(&c.phone)
            .bind(&c.address)
            .bind(&c.notes)
            .bind(&c.email_index)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(conn)
            .await?;
        }
        Mutation::UpdateContact {
            row: c,
            read_updated_at,
        } => {
            let done = sqlx::query(
                "UPDATE contacts SET name = $3, email = $4, phone = $5, address = $6, notes = $7, \
                 email_index = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2 \
                 AND updated_at = $10",
            )
            .bind(&c.tenant_id)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.email)
            .bind(&c.phone)
            .bind(&c.address)
            .bind(&c.notes)
            .bind(&c.email_index)
            .bind(c.updated_at)
            .bind(*read_updated_at)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the contact changed meanwhile"));
            }
        }
        Mutation::DeleteContact { scope, id } => {
            sqlx::query(
                "UPDATE cases SET contact_id = NULL WHERE tenant_id = $1 AND contact_id = $2",
            )
            .bind(scope.id())
            .bind(id)
            .execute(&mut *conn)
            .await?;
            let done = sqlx::query("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2")
                .bind(scope.id())
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the contact was deleted meanwhile"));
            }
            super::exports::end_exports_holding(conn, scope.id(), id).await?;
        }
        Mutation::InsertCase(c) => {
            require_contact(&mut *conn, &c.tenant_id, c.contact_id.as_deref()).await?;
            sqlx::query(
                "INSERT INTO cases (tenant_id, id, title, description, severity, status, product, \
                 contact_id, assignee_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&c.tenant_id)
            .bind(&c.id)
            .bind(&c.title)
            .bind(&c.description)
            .bind(&c.severity)
            .bind(&c.status)
            .bind(&c.product)
            .bind(&c.contact_id)
            .bind(&c.assignee_id)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(conn)
            .await?;
        }
        Mutation::UpdateCase { row: c, read } => {
            // The version first: a case changed meanwhile is a conflict whatever it links to.
            let done = sqlx::query(
                "UPDATE cases SET title = $3, description = $4, severity = $5, status = $6, product = $7, \
                 contact_id = $8, assignee_id = $9, updated_at = $10 WHERE tenant_id = $1 AND id = $2 \
                 AND updated_at = $11 AND assignee_id IS NOT DISTINCT FROM $12 \
                 AND contact_id IS NOT DISTINCT FROM $13",
            )
            .bind(&c.tenant_id)
            .bind(&c.id)
            .bind(&c.title)
            .bind(&c.description)
            .bind(&c.severity)
            .bind(&c.status)
            .bind(&c.product)
            .bind(&c.contact_id)
            .bind(&c.assignee_id)
            .bind(c.updated_at)
            .bind(read.updated_at)
            .bind(&read.assignee_id)
            .bind(&read.contact_id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the case changed meanwhile"));
            }
            // Inside the transaction, so the unit is undone if the contact is gone.
            require_contact(conn, &c.tenant_id, c.contact_id.as_deref()).await?;
        }
        Mutation::InsertComment(c) => {
            // Only onto a case that still exists: a comment committed after its case was purged
            // would keep personal data past the tenant's retention.
            let done = sqlx::query(
                "INSERT INTO comments (tenant_id, id, case_id, author_id, body, created_at) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS \
                 (SELECT 1 FROM cases WHERE tenant_id = $1 AND id = $3)",
            )
            .bind(&c.tenant_id)
            .bind(&c.id)
            .bind(&c.case_id)
            .bind(&c.author_id)
            .bind(&c.body)
            .bind(c.created_at)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the case is gone"));
            }
        }
        Mutation::InsertAttachment { row: a, content } => {
            // As a comment: never onto a case retention purged meanwhile.
            let done = sqlx::query(
                "INSERT INTO attachments (tenant_id, id, case_id, uploaded_by, name, media_type, \
                 size, content, content_version, scanner, scanned_at, created_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 WHERE EXISTS \
                 (SELECT 1 FROM cases WHERE tenant_id = $1 AND id = $3)",
            )
            .bind(&a.tenant_id)
            .bind(&a.id)
            .bind(&a.case_id)
            .bind(&a.uploaded_by)
            .bind(&a.name)
            .bind(&a.media_type)
            .bind(a.size)
            .bind(content)
            .bind(super::keys::header_version(Some(content))?)
            .bind(&a.scanner)
            .bind(a.scanned_at)
            .bind(a.created_at)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the case is gone"));
            }
        }
        Mutation::DeleteAttachment { scope, case_id, id } => {
            let done = sqlx::query(
                "DELETE FROM attachments WHERE tenant_id = $1 AND case_id = $2 AND id = $3",
            )
            .bind(scope.id())
            .bind(case_id)
            .bind(id)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the file was deleted meanwhile"));
            }
        }
        Mutation::ReleaseAssignment {
            scope,
            case_id,
            assignee_id,
            at,
        } => {
            sqlx::query(
                "UPDATE cases SET assignee_id = NULL, updated_at = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND assignee_id = $3",
            )
            .bind(scope.id())
            .bind(case_id)
            .bind(assignee_id)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::SuspendInactiveUser {
            user_id,
            cutoff,
            at,
        } => {
            // Decided inside the transaction, so concurrent sweeps (or instances) cannot both
            // suspend the last two administrators, and a login since the read is respected.
            let done = sqlx::query(
                "UPDATE users SET status = 'suspended', status_reason = 'inactivity', updated_at = $3 \
                 WHERE id = $1 AND status = 'active' \
                 AND created_at < $2 AND COALESCE(last_login_at, 0) < $2 AND COALESCE(reactivated_at, 0) < $2 \
                 AND NOT EXISTS (SELECT 1 FROM api_keys WHERE user_id = $1 AND last_used_at >= $2) \
                 AND NOT (',' || roles || ',' LIKE '%,platform_admin,%' AND \
                   (SELECT COUNT(*) FROM users WHERE status = 'active' \
                    AND ',' || roles || ',' LIKE '%,platform_admin,%') <= 1)",
            )
            .bind(user_id)
            .bind(cutoff)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("no longer eligible for suspension"));
            }
        }
        Mutation::RequireActiveWithRole { user_id, any_of } => {
            let roles: Option<(String,)> =
                sqlx::query_as("SELECT roles FROM users WHERE id = $1 AND status = 'active'")
                    .bind(user_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let holds = roles.is_some_and(|(roles,)| {
                roles
                    .split(',')
                    .any(|role| any_of.iter().any(|wanted| wanted == role))
            });
            if !holds {
                return Err(StoreError::Conflict("the user's roles or status changed"));
            }
        }
        Mutation::RequireInactive { user_id } => {
            let active: Option<(i64,)> = sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM users WHERE id = $1 AND status = 'active'",
            )
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
            if active.is_some() {
                return Err(StoreError::Conflict("the user was reactivated meanwhile"));
            }
        }
        Mutation::RequireAccessUnchanged {
            user_id,
            access_epoch,
        } => {
            require_access_unchanged(
                conn,
                user_id,
                *access_epoch,
                "the caller's access changed meanwhile",
            )
            .await?;
        }
        Mutation::RequireGrantOpen {
            scope,
            grant_id,
            at,
        } => {
            let open: Option<(i64,)> = sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM access_requests WHERE tenant_id = $1 AND id = $2 \
                 AND state = 'approved' AND starts_at <= $3 AND ends_at > $3",
            )
            .bind(scope.id())
            .bind(grant_id)
            .bind(at)
            .fetch_optional(&mut *conn)
            .await?;
            if open.is_none() {
                return Err(StoreError::Conflict("the grant ended meanwhile"));
            }
        }
        Mutation::RequireNoAssignments { user_id } => {
            let assigned: Option<(i64,)> = sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM cases WHERE assignee_id = $1 LIMIT 1",
            )
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
            if assigned.is_some() {
                return Err(StoreError::Conflict(
                    "a case was assigned to the user meanwhile",
                ));
            }
        }
        Mutation::KeepAnotherPlatformAdmin { user_id } => {
            let other: Option<(i64,)> = sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM users WHERE id <> $1 AND status = 'active' \
                 AND ',' || roles || ',' LIKE '%,platform_admin,%' LIMIT 1",
            )
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
            if other.is_none() {
                return Err(StoreError::Conflict(LAST_PLATFORM_ADMIN));
            }
        }
        Mutation::RecordInactivityWarning(w) => {
            sqlx::query(
                "INSERT INTO inactivity_warnings (user_id, last_activity_at, warned_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET \
                 last_activity_at = excluded.last_activity_at, warned_at = excluded.warned_at",
            )
            .bind(&w.user_id)
            .bind(w.last_activity_at)
            .bind(w.warned_at)
            .execute(conn)
            .await?;
        }
        Mutation::InsertAccessReview { review, lines } => {
            sqlx::query(
                "INSERT INTO access_reviews (id, created_by, created_at) VALUES ($1, $2, $3)",
            )
            .bind(&review.id)
            .bind(&review.created_by)
            .bind(review.created_at)
            .execute(&mut *conn)
            .await?;
            for chunk in lines.chunks(INSERT_CHUNK / 2) {
                let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                    "INSERT INTO access_review_lines (review_id, user_id, username, roles, tenant_id, \
                     status, last_activity_at, mfa_enrolled, assignments, active_grants, api_keys) ",
                );
                qb.push_values(chunk, |mut row, l| {
                    row.push_bind(&review.id)
                        .push_bind(&l.user_id)
                        .push_bind(&l.username)
                        .push_bind(&l.roles)
                        .push_bind(&l.tenant_id)
                        .push_bind(&l.status)
                        .push_bind(l.last_activity_at)
                        .push_bind(l.mfa_enrolled)
                        .push_bind(l.assignments)
                        .push_bind(l.active_grants)
                        .push_bind(l.api_keys);
                });
                qb.build().execute(&mut *conn).await?;
            }
            // The lines were read before this commit: an account gone meanwhile (its tenant
            // shredded) must not come back as a line holding its username.
            sqlx::query(
                "DELETE FROM access_review_lines WHERE review_id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM users WHERE users.id = access_review_lines.user_id)",
            )
            .bind(&review.id)
            .execute(conn)
            .await?;
        }
        Mutation::DecideAccessReviewLine {
            review_id,
            user_id,
            decision,
            decided_by,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE access_review_lines SET decision = $3, decided_by = $4, decided_at = $5 \
                 WHERE review_id = $1 AND user_id = $2 AND decision IS NULL",
            )
            .bind(review_id)
            .bind(user_id)
            .bind(decision)
            .bind(decided_by)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("this line is already decided"));
            }
        }
    }
    Ok(())
}
