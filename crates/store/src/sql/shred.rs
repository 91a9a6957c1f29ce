//! Crypto-shredding of a tenant: its wrapped keys and every row that holds its id go in one
//! transaction; on SQLite, with `secure_delete` on, the freed space is zeroed, and the backend's
//! `purge_journal` then drops the old page images from the write-ahead log.
//!
//! Tables are found from the schema (every table with a `tenant_id` column, and every table with
//! a `user_id` column for the tenant's users), so tables added by later migrations are covered
//! without being listed here.

use super::Conn;

use crate::StoreError;
use crate::rows::{TenantScope, TenantShredRow};

/// Kept on purpose: audit entries hold no personal data and the log must keep verifying;
/// incidents (ids and codes) are the platform's security record, read with the log; the
/// tombstones are the record of the deletion; tenants and users are removed last, by hand.
const KEEP: &[&str] = &[
    "audit_entries",
    "incidents",
    "tenant_shreds",
    "tenants",
    "users",
];

async fn tables_with(conn: &mut Conn, column: &str) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(super::TABLES_WITH_COLUMN_SQL)
        .bind(column)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(name,)| name)
        .filter(|name| !KEEP.contains(&name.as_str()))
        .collect())
}

/// A schema identifier, quoted for SQL (names come from the schema catalogue, never from input).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) async fn shred_tenant(
    conn: &mut Conn,
    scope: &TenantScope,
    request_ref: &str,
    at: i64,
) -> Result<(), StoreError> {
    let tenant = scope.id();
    let exists: Option<(i64,)> =
        sqlx::query_as("SELECT CAST(1 AS BIGINT) FROM tenants WHERE id = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_none() {
        return Err(StoreError::Conflict("tenant does not exist"));
    }
    let versions: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM tenant_keys WHERE tenant_id = $1 ORDER BY version")
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await?;
    let mut counts: Vec<(String, u64)> = Vec::new();

    // The tenant's users' own rows first (sessions, API keys, factors, warnings…).
    let tenant_tables = tables_with(conn, "tenant_id").await?;
    for table in tables_with(conn, "user_id").await? {
        if tenant_tables.contains(&table) {
            continue;
        }
        let sql = format!(
            "DELETE FROM {} WHERE user_id IN (SELECT id FROM users WHERE tenant_id = $1)",
            ident(&table)
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .execute(&mut *conn)
            .await?;
        counts.push((table, done.rows_affected()));
    }
    // Foreign keys stay enforced (deferring them would turn another unit's violation in the
    // same group commit into a failed batch): a table whose rows are still referenced by
    // another's goes in a later pass; a pass without progress means an outside reference.
    let mut pending = tenant_tables;
    while !pending.is_empty() {
        let before = pending.len();
        let mut blocked = Vec::new();
        for table in std::mem::take(&mut pending) {
            let sql = format!("DELETE FROM {} WHERE tenant_id = $1", ident(&table));
            // A savepoint, because PostgreSQL aborts the whole transaction on the first error.
            sqlx::query("SAVEPOINT shred_table")
                .execute(&mut *conn)
                .await?;
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from)
            {
                Ok(done) => counts.push((table, done.rows_affected())),
                Err(StoreError::MissingReference) => {
                    sqlx::query("ROLLBACK TO shred_table")
                        .execute(&mut *conn)
                        .await?;
                    blocked.push(table);
                }
                Err(other) => return Err(other),
            }
            sqlx::query("RELEASE shred_table")
                .execute(&mut *conn)
                .await?;
        }
        if blocked.len() == before {
            return Err(StoreError::MissingReference);
        }
        pending = blocked;
    }
    let users = sqlx::query("DELETE FROM users WHERE tenant_id = $1")
        .bind(tenant)
        .execute(&mut *conn)
        .await?;
    counts.push(("users".to_owned(), users.rows_affected()));
    sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(tenant)
        .execute(&mut *conn)
        .await?;
    counts.sort();

    let key_versions = versions
        .iter()
        .map(|(v,)| v.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let row_counts = counts
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect::<Vec<_>>()
        .join(",");
    sqlx::query(
        "INSERT INTO tenant_shreds (tenant_id, deleted_at, request_ref, key_versions, row_counts) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant)
    .bind(at)
    .bind(request_ref)
    .bind(key_versions)
    .bind(row_counts)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn tenant_shred(
    conn: &mut Conn,
    tenant_id: &str,
) -> Result<Option<TenantShredRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM tenant_shreds WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub(super) async fn tenant_shreds(conn: &mut Conn) -> Result<Vec<TenantShredRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM tenant_shreds ORDER BY deleted_at, tenant_id")
            .fetch_all(&mut *conn)
            .await?,
    )
}
