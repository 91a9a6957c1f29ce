//! Key rotation (re-encryption progress derived from the ciphertexts themselves, retirement,
//! root-key rewrap) and retention purges.
//!
//! A ciphertext's key version is bytes 2..=5 of its header (big-endian), so SQLite can count
//! and select by version with `substr(col, 2, 4)` without any bookkeeping that a crash could lose.

use super::{Conn, Db};
use sqlx::{AssertSqlSafe, QueryBuilder, Row};

use crate::Mutation;
use crate::StoreError;
use crate::rows::*;

fn version_bytes(version: i64) -> Result<Vec<u8>, StoreError> {
    u32::try_from(version)
        .map(|v| v.to_be_bytes().to_vec())
        .map_err(|_| StoreError::Corrupt("key version out of range".into()))
}

/// The version bytes of a ciphertext's header (as `substr(ct, 2, 4)` reads them).
pub(super) fn header_version(ciphertext: Option<&[u8]>) -> Result<Vec<u8>, StoreError> {
    ciphertext
        .and_then(|ct| ct.get(1..5))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| StoreError::Corrupt("ciphertext without a key version".into()))
}

/// `SELECT substr(col,2,4) AS v, count(*) AS n …` over every ciphertext column of the tenant `$1`.
fn usage_sql() -> String {
    let mut parts = Vec::new();
    for t in CipherTable::ALL {
        for c in t.columns() {
            parts.push(format!(
                "SELECT {version} AS v, count(*) AS n FROM {tab} \
                 WHERE tenant_id = $1 AND {c} IS NOT NULL GROUP BY v",
                version = t.version_sql(c),
                tab = t.table()
            ));
        }
    }
    format!(
        "SELECT v, CAST(SUM(n) AS BIGINT) AS n FROM ({}) AS usage GROUP BY v",
        parts.join(" UNION ALL ")
    )
}

fn parse_usage(rows: Vec<(Vec<u8>, i64)>) -> Result<Vec<KeyUsageRow>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for (v, n) in rows {
        let bytes: [u8; 4] = v
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("ciphertext without a key version".into()))?;
        out.push(KeyUsageRow {
            version: i64::from(u32::from_be_bytes(bytes)),
            ciphertexts: n,
        });
    }
    out.sort_by_key(|u| u.version);
    Ok(out)
}

pub(super) async fn key_usage(
    conn: &mut Conn,
    scope: &TenantScope,
) -> Result<Vec<KeyUsageRow>, StoreError> {
    let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(AssertSqlSafe(usage_sql()))
        .bind(scope.id())
        .fetch_all(&mut *conn)
        .await?;
    parse_usage(rows)
}

pub(super) async fn retired_tenant_keys(
    conn: &mut Conn,
    scope: &TenantScope,
) -> Result<Vec<RetiredKeyRow>, StoreError> {
    Ok(
        sqlx::query_as(
            "SELECT * FROM tenant_key_retirements WHERE tenant_id = $1 ORDER BY version",
        )
        .bind(scope.id())
        .fetch_all(&mut *conn)
        .await?,
    )
}

pub(super) async fn lost_tenant_keys(
    conn: &mut Conn,
    scope: &TenantScope,
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT version FROM tenant_key_losses WHERE tenant_id = $1 ORDER BY version",
    )
    .bind(scope.id())
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn all_tenant_keys(conn: &mut Conn) -> Result<Vec<TenantKeyRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM tenant_keys ORDER BY tenant_id, version")
            .fetch_all(&mut *conn)
            .await?,
    )
}

pub(super) async fn all_totp(conn: &mut Conn) -> Result<Vec<TotpRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM user_totp ORDER BY user_id")
        .fetch_all(&mut *conn)
        .await?)
}

/// The fingerprint of the root key the database's keys are sealed under, once recorded.
pub(super) async fn root_key_fingerprint(conn: &mut Conn) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT fingerprint FROM root_key WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|(fingerprint,)| fingerprint))
}

/// Records `fingerprint` as the database's root key where none is, or over `replacing` if that
/// is the one recorded (compare and set: a rotation committed meanwhile wins). Whether
/// `fingerprint` is the one recorded afterwards.
pub(super) async fn record_root_key(
    conn: &mut Conn,
    fingerprint: &str,
    replacing: Option<&str>,
) -> Result<bool, StoreError> {
    match replacing {
        None => {
            sqlx::query(
                "INSERT INTO root_key (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            )
            .bind(fingerprint)
            .execute(&mut *conn)
            .await?;
        }
        Some(was) => {
            sqlx::query("UPDATE root_key SET fingerprint = $1 WHERE id = 1 AND fingerprint = $2")
                .bind(fingerprint)
                .bind(was)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(root_key_fingerprint(conn).await?.as_deref() == Some(fingerprint))
}

/// Rows of `table` with at least one ciphertext not under `current`, by key after `after`.
pub(super) async fn stale_ciphertexts(
    conn: &mut Conn,
    scope: &TenantScope,
    table: CipherTable,
    current: i64,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<CipherRow>, StoreError> {
    let key = table.key_column();
    let cols = table.columns();
    let stale = cols
        .iter()
        .map(|c| format!("({c} IS NOT NULL AND {} <> $3)", table.version_sql(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT {key} AS row_key, {cols} FROM {tab} WHERE tenant_id = $1 AND {key} > $2 \
         AND ({stale}) ORDER BY {key} LIMIT $4",
        cols = cols.join(", "),
        tab = table.table()
    );
    // Built from static table and column names only.
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(scope.id())
        .bind(after.unwrap_or(""))
        .bind(version_bytes(current)?)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut cells = Vec::with_capacity(cols.len());
        for c in cols {
            cells.push(row.try_get::<Option<Vec<u8>>, _>(*c)?);
        }
        out.push(CipherRow {
            id: row.try_get("row_key")?,
            cells,
        });
    }
    Ok(out)
}

/// Closed or resolved cases of the tenant last changed before `cutoff`, oldest first.
pub(super) async fn expired_cases(
    conn: &mut Conn,
    scope: &TenantScope,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<CaseRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM cases WHERE tenant_id = $1 AND status IN ('closed', 'resolved') \
         AND updated_at < $2 ORDER BY updated_at, id LIMIT $3",
    )
    .bind(scope.id())
    .bind(cutoff)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn apply(conn: &mut Conn, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::ReencryptRow {
            table,
            scope,
            id,
            old,
            new,
            email_index,
        } => {
            let cols = table.columns();
            if old.len() != cols.len() || new.len() != cols.len() {
                return Err(StoreError::Corrupt("re-encryption row shape".into()));
            }
            let mut qb: QueryBuilder<Db> =
                QueryBuilder::new(format!("UPDATE {} SET ", table.table()));
            let mut set = qb.separated(", ");
            for (c, v) in cols.iter().zip(new) {
                set.push(format!("{c} = "));
                set.push_bind_unseparated(v.clone());
                if table.attachment_sealed(c) {
                    set.push(format!("{c}_version = "));
                    set.push_bind_unseparated(header_version(v.as_deref())?);
                }
            }
            if let (CipherTable::Contacts, Some(index)) = (table, email_index) {
                set.push("email_index = ");
                set.push_bind_unseparated(index.clone());
            }
            qb.push(" WHERE tenant_id = ");
            qb.push_bind(scope.id().to_owned());
            qb.push(format!(" AND {} = ", table.key_column()));
            qb.push_bind(id.clone());
            for (c, v) in cols.iter().zip(old) {
                // Compares NULLs too: a cell emptied concurrently also counts as a change.
                qb.push(format!(" AND {c} IS NOT DISTINCT FROM "));
                qb.push_bind(v.clone());
            }
            // No rows: a user write got there first, with the current key. Nothing to do.
            qb.build().execute(conn).await?;
        }
        Mutation::RetireTenantKey { scope, version, at } => {
            let newer: Option<(i64,)> = sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM tenant_keys WHERE tenant_id = $1 AND version > $2 LIMIT 1",
            )
            .bind(scope.id())
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?;
            if newer.is_none() {
                return Err(StoreError::Conflict(
                    "the current key version is never retired",
                ));
            }
            let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(AssertSqlSafe(usage_sql()))
                .bind(scope.id())
                .fetch_all(&mut *conn)
                .await?;
            if parse_usage(rows)?
                .iter()
                .any(|u| u.version == *version && u.ciphertexts > 0)
            {
                return Err(StoreError::Conflict("the key version is still in use"));
            }
            let created: Option<(i64,)> = sqlx::query_as(
                "DELETE FROM tenant_keys WHERE tenant_id = $1 AND version = $2 RETURNING created_at",
            )
            .bind(scope.id())
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((created_at,)) = created else {
                return Err(StoreError::Conflict("no such key version"));
            };
            sqlx::query(
                "INSERT INTO tenant_key_retirements (tenant_id, version, created_at, retired_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(scope.id())
            .bind(version)
            .bind(created_at)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::RewrapTenantKey {
            tenant_id,
            version,
            was,
            wrapped,
        } => {
            let done = sqlx::query(
                "UPDATE tenant_keys SET wrapped = $3 \
                 WHERE tenant_id = $1 AND version = $2 AND wrapped = $4",
            )
            .bind(tenant_id)
            .bind(version)
            .bind(wrapped)
            .bind(was)
            .execute(conn)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "the tenant key changed or went since it was read",
                ));
            }
        }
        Mutation::ResealTotp {
            user_id,
            was,
            secret,
        } => {
            let done =
                sqlx::query("UPDATE user_totp SET secret = $2 WHERE user_id = $1 AND secret = $3")
                    .bind(user_id)
                    .bind(secret)
                    .bind(was)
                    .execute(conn)
                    .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "the second factor changed or went since it was read",
                ));
            }
        }
        Mutation::RequireRootSealedCounts {
            tenant_keys,
            user_secrets,
        } => {
            let (keys, secrets): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT CAST(COUNT(*) AS BIGINT) FROM tenant_keys), \
                 (SELECT CAST(COUNT(*) AS BIGINT) FROM user_totp)",
            )
            .fetch_one(&mut *conn)
            .await?;
            if (keys, secrets) != (*tenant_keys, *user_secrets) {
                return Err(StoreError::Conflict(
                    "keys or second factors were added since the rotation read them",
                ));
            }
        }
        Mutation::RequireRootKey { fingerprint } => {
            sqlx::query(
                "INSERT INTO root_key (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            )
            .bind(fingerprint)
            .execute(&mut *conn)
            .await?;
            if root_key_fingerprint(conn).await?.as_ref() != Some(fingerprint) {
                return Err(StoreError::RootKeyRotated);
            }
        }
        Mutation::ReplaceRootKey { was, now } => {
            let done = sqlx::query(
                "INSERT INTO root_key (id, fingerprint) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint \
                 WHERE root_key.fingerprint = $2",
            )
            .bind(now)
            .bind(was)
            .execute(conn)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::RootKeyRotated);
            }
        }
        Mutation::PurgeCase {
            scope,
            case_id,
            cutoff,
            at,
        } => {
            // Not while operator access to it is pending or open, or a break-glass use of it
            // awaits the second officer's review: those records are still needed.
            let gone = sqlx::query(
                "DELETE FROM cases WHERE tenant_id = $1 AND id = $2 \
                 AND status IN ('closed', 'resolved') AND updated_at < $3 \
                 AND NOT EXISTS (SELECT 1 FROM access_requests r WHERE r.tenant_id = $1 \
                   AND r.case_id = $2 AND ((r.state = 'pending' AND r.request_expires_at > $4) \
                   OR (r.state = 'approved' AND r.ends_at > $4) \
                   OR (r.break_glass AND r.reviewed_at IS NULL)))",
            )
            .bind(scope.id())
            .bind(case_id)
            .bind(cutoff)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if gone.rows_affected() != 1 {
                return Err(StoreError::Conflict("the case is no longer due for purge"));
            }
            // The exports still holding the case or what it held end with them.
            let held: Vec<(String,)> = sqlx::query_as(
                "SELECT id FROM comments WHERE tenant_id = $1 AND case_id = $2 \
                 UNION ALL SELECT id FROM attachments WHERE tenant_id = $1 AND case_id = $2",
            )
            .bind(scope.id())
            .bind(case_id)
            .fetch_all(&mut *conn)
            .await?;
            for record in
                std::iter::once(case_id.as_str()).chain(held.iter().map(|(id,)| id.as_str()))
            {
                super::exports::end_exports_holding(conn, scope.id(), record).await?;
            }
            sqlx::query("DELETE FROM comments WHERE tenant_id = $1 AND case_id = $2")
                .bind(scope.id())
                .bind(case_id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM attachments WHERE tenant_id = $1 AND case_id = $2")
                .bind(scope.id())
                .bind(case_id)
                .execute(&mut *conn)
                .await?;
            // Justifications and decision comments are free text about the case: they go with
            // it (the audit log keeps who was granted what, by id).
            sqlx::query("DELETE FROM access_requests WHERE tenant_id = $1 AND case_id = $2")
                .bind(scope.id())
                .bind(case_id)
                .execute(conn)
                .await?;
        }
        _ => {
            return Err(StoreError::Corrupt(
                "not a key or retention mutation".into(),
            ));
        }
    }
    Ok(())
}
