//! Exports: age ciphertext with a manifest, downloadable until `expires_at`.

use super::Conn;

use crate::Mutation;
use crate::StoreError;
use crate::rows::*;

pub(super) async fn export(
    conn: &mut Conn,
    scope: &TenantScope,
    id: &str,
) -> Result<Option<ExportRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM exports WHERE tenant_id = $1 AND id = $2")
            .bind(scope.id())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub(super) async fn exports(
    conn: &mut Conn,
    scope: &TenantScope,
    requester_id: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ExportRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, requester_id, kind, state, manifest, record_count, \
         NULL AS ciphertext, created_at, expires_at, approved_by, approved_at FROM exports \
         WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) AND ($4 IS NULL OR requester_id = $4) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(scope.id())
    .bind(after)
    .bind(i64::from(limit))
    .bind(requester_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// The `SET` of an export's expiry: its ciphertext goes, and one still waiting for approval is
/// marked as never having left (`approval_lapsed`, read before the state changes).
macro_rules! expire {
    () => {
        "ciphertext = NULL, state = 'expired', \
         approval_lapsed = CASE WHEN state = 'pending_approval' THEN 1 ELSE approval_lapsed END"
    };
}
#[allow(
    unused_imports,
    reason = "the SQLite backup's copy expires its exports with it; this file is built for both backends"
)]
pub(crate) use expire;

/// Records in the limited exports `requester_id` created since `since`: all of them, or (with
/// `without_approval`) those no second person approved, less those still waiting for one and
/// those whose approval lapsed.
pub(super) async fn exported_records_since(
    conn: &mut Conn,
    requester_id: &str,
    since: i64,
    without_approval: bool,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(record_count), 0) AS BIGINT) FROM exports \
         WHERE requester_id = $1 AND created_at >= $2 AND kind = 'records' \
         AND (CAST($3 AS BIGINT) = 0 OR (approved_by IS NULL AND state <> 'pending_approval' \
         AND approval_lapsed = 0))",
    )
    .bind(requester_id)
    .bind(since)
    .bind(i64::from(without_approval))
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

pub(super) async fn expired_exports(
    conn: &mut Conn,
    now: i64,
    limit: u32,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM exports WHERE ciphertext IS NOT NULL AND expires_at <= $1 \
         ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?)
}

/// Ends the tenant's exports still holding record `record_id` (a limited export that lists it,
/// or an archive), as its erasure commits: erased data must not keep leaving the vault.
pub(super) async fn end_exports_holding(
    conn: &mut Conn,
    tenant_id: &str,
    record_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "UPDATE exports SET ",
        expire!(),
        " WHERE tenant_id = $1 AND state <> 'expired' \
             AND (kind = 'tenant_archive' OR record_ids LIKE '%,' || $2 || ',%')"
    ))
    .bind(tenant_id)
    .bind(record_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies an export mutation (the write path routes them here).
pub(super) async fn apply(conn: &mut Conn, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::InsertExport {
            row: r,
            record_ids,
            access_epoch,
            tenant_version,
            quota,
            without_approval,
        } => {
            let instructions_unchanged: Option<(i64,)> = sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM tenants WHERE id = $1 AND updated_at = $2",
            )
            .bind(&r.tenant_id)
            .bind(tenant_version)
            .fetch_optional(&mut *conn)
            .await?;
            if instructions_unchanged.is_none() {
                return Err(StoreError::Conflict(
                    "the tenant's instructions changed while the export was built",
                ));
            }
            super::write::require_access_unchanged(
                conn,
                &r.requester_id,
                *access_epoch,
                "the requester's access changed while the export was built",
            )
            .await?;
            if let Some(quota) = quota {
                let used =
                    exported_records_since(conn, &r.requester_id, quota.since, false).await?;
                if used.saturating_add(r.record_count) > quota.limit {
                    return Err(StoreError::Conflict(
                        "the export would exceed the daily export quota",
                    ));
                }
            }
            if let Some(bound) = without_approval.filter(|_| r.state == "ready") {
                let used = exported_records_since(conn, &r.requester_id, bound.since, true).await?;
                if used.saturating_add(r.record_count) > bound.limit {
                    return Err(StoreError::Conflict(
                        "the export would take the records exported without approval past the \
                         approval threshold",
                    ));
                }
            }
            sqlx::query(
                "INSERT INTO exports (id, tenant_id, requester_id, kind, state, manifest, \
                 record_count, ciphertext, created_at, expires_at, approved_by, approved_at, \
                 record_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(&r.id)
            .bind(&r.tenant_id)
            .bind(&r.requester_id)
            .bind(&r.kind)
            .bind(&r.state)
            .bind(&r.manifest)
            .bind(r.record_count)
            .bind(&r.ciphertext)
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(&r.approved_by)
            .bind(r.approved_at)
            .bind(
                record_ids
                    .as_ref()
                    .map(|ids| format!(",{},", ids.join(","))),
            )
            .execute(conn)
            .await?;
            Ok(())
        }
        Mutation::ApproveExport {
            scope,
            id,
            by,
            at,
            expires_at,
        } => {
            let done = sqlx::query(
                "UPDATE exports SET state = 'ready', approved_by = $3, approved_at = $4, \
                 expires_at = $5 WHERE tenant_id = $1 AND id = $2 AND state = 'pending_approval' \
                 AND expires_at > $4 AND requester_id <> $3 AND ciphertext IS NOT NULL",
            )
            .bind(scope.id())
            .bind(id)
            .bind(by)
            .bind(at)
            .bind(expires_at)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("export is not pending approval"));
            }
            Ok(())
        }
        Mutation::ExpireExport { scope, id } => {
            sqlx::query(concat!(
                "UPDATE exports SET ",
                expire!(),
                " WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(scope.id())
            .bind(id)
            .execute(conn)
            .await?;
            Ok(())
        }
        Mutation::ExpireUserExports { user_id, scope } => {
            sqlx::query(concat!(
                "UPDATE exports SET ",
                expire!(),
                " WHERE requester_id = $1 AND ($2 IS NULL OR tenant_id = $2) \
                     AND state <> 'expired'"
            ))
            .bind(user_id)
            .bind(scope.as_ref().map(TenantScope::id))
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE users SET access_epoch = access_epoch + 1 WHERE id = $1")
                .bind(user_id)
                .execute(conn)
                .await?;
            Ok(())
        }
        Mutation::ExpireTenantExports { scope } => {
            sqlx::query(concat!(
                "UPDATE exports SET ",
                expire!(),
                " WHERE tenant_id = $1 AND state <> 'expired'"
            ))
            .bind(scope.id())
            .execute(conn)
            .await?;
            Ok(())
        }
        Mutation::DeleteTenantExports { scope } => {
            sqlx::query("DELETE FROM exports WHERE tenant_id = $1")
                .bind(scope.id())
                .execute(conn)
                .await?;
            Ok(())
        }
        _ => Err(StoreError::Corrupt("not an export mutation".into())),
    }
}
