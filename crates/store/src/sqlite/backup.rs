//! Consistent online snapshots for backups, and the key import of a restore.
//!
//! A snapshot is `VACUUM INTO` from a read-only connection (a consistent read transaction; the
//! running server keeps writing), then the wrapped tenant keys are deleted from the copy and the
//! copy is vacuumed again, so the backup's database never holds them: a tenant shredded after
//! the backup stays shredded when the backup is restored.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use super::SqliteStore;
use crate::StoreError;
use crate::rows::{TenantKeyRow, TenantShredRow};

async fn connect(path: &Path, read_only: bool) -> Result<SqliteConnection, StoreError> {
    let url = format!("sqlite://{}", path.display());
    let mut options = SqliteConnectOptions::from_str(&url)
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .busy_timeout(Duration::from_secs(30));
    options = if read_only {
        options.read_only(true)
    } else {
        // A rollback journal would keep the deleted pages' old images in a file of its own.
        options
            .journal_mode(SqliteJournalMode::Off)
            .pragma("secure_delete", "ON")
    };
    Ok(options.connect().await?)
}

/// Row counts of every table of the database at `path` (read-only).
pub async fn table_counts(path: &Path) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut conn = connect(path, true).await?;
    let counts = counts(&mut conn).await;
    conn.close().await?;
    counts
}

async fn counts(conn: &mut SqliteConnection) -> Result<BTreeMap<String, i64>, StoreError> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = BTreeMap::new();
    for (name,) in names {
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?;
        out.insert(name, n);
    }
    Ok(out)
}

impl SqliteStore {
    /// Writes a consistent copy of the live database `live` to `into` (which must not exist),
    /// without the wrapped tenant keys and without export ciphertext (encrypted to a recipient,
    /// not under tenant keys, so shredding could not reach it in a backup; an export is
    /// short-lived and its copy comes back expired). `scratch` is a second temporary path.
    /// Returns the copy's row counts per table.
    pub async fn snapshot_without_tenant_keys(
        live: &Path,
        scratch: &Path,
        into: &Path,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut conn = connect(live, true).await?;
        sqlx::query("VACUUM INTO $1")
            .bind(scratch.display().to_string())
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let mut copy = connect(scratch, false).await?;
        sqlx::query("DELETE FROM tenant_keys")
            .execute(&mut copy)
            .await?;
        sqlx::query(concat!("UPDATE exports SET ", super::exports::expire!()))
            .execute(&mut copy)
            .await?;
        sqlx::query("VACUUM INTO $1")
            .bind(into.display().to_string())
            .execute(&mut copy)
            .await?;
        copy.close().await?;
        table_counts(into).await
    }

    /// Every wrapped tenant key and every tombstone of the database at `path` (read-only): the
    /// live deployment's keys, consulted by a restore.
    pub async fn keys_and_shreds(
        path: &Path,
    ) -> Result<(Vec<TenantKeyRow>, Vec<TenantShredRow>), StoreError> {
        let mut conn = connect(path, true).await?;
        // One snapshot: a shred committing between the two reads would otherwise leave its
        // tenant with keys and no tombstone.
        let mut snapshot = conn.begin().await?;
        let keys = sqlx::query_as("SELECT * FROM tenant_keys ORDER BY tenant_id, version")
            .fetch_all(&mut *snapshot)
            .await?;
        let shreds = sqlx::query_as("SELECT * FROM tenant_shreds ORDER BY tenant_id")
            .fetch_all(&mut *snapshot)
            .await?;
        snapshot.rollback().await?;
        conn.close().await?;
        Ok((keys, shreds))
    }

    /// Tenant ids of the database at `path` (read-only).
    pub async fn tenant_ids(path: &Path) -> Result<Vec<String>, StoreError> {
        let mut conn = connect(path, true).await?;
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM tenants ORDER BY id")
            .fetch_all(&mut conn)
            .await?;
        conn.close().await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Inserts wrapped tenant keys into a restored database (outside the audit log: a restore
    /// puts back what the log already recorded).
    pub async fn import_tenant_keys(&self, keys: &[TenantKeyRow]) -> Result<(), StoreError> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        for k in keys {
            sqlx::query(
                "INSERT INTO tenant_keys (tenant_id, version, wrapped, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&k.tenant_id)
            .bind(k.version)
            .bind(&k.wrapped)
            .bind(k.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
