//! Raw connections to both ends of a migration, and what their schemas say: which tables to copy,
//! in which order (parents before children), and how each column is typed.
//!
//! The store's own types cover its queries, not "every row of every table": the copy reads and
//! writes rows by column name, typed by the PostgreSQL schema (SQLite's declared types do not
//! tell a boolean from an integer).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Tables never copied: each side's migration bookkeeping, runtime state (leases), and the
/// PostgreSQL-only audit head (set from the copied log instead).
pub const NOT_COPIED: [&str; 3] = ["_sqlx_migrations", "leases", "audit_head"];

// PostgreSQL transactions in platform scope (`*`): row-level security shows every tenant.
/// One consistent read snapshot of the whole source.
pub const PG_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
     SELECT set_config('strongroom.tenant', '*', true)";
pub const PG_READ: &str = "BEGIN READ ONLY; SELECT set_config('strongroom.tenant', '*', true)";
pub const PG_WRITE: &str = "BEGIN; SELECT set_config('strongroom.tenant', '*', true)";

/// How a column's values are carried across.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SQLite INTEGER / PostgreSQL BIGINT.
    Int,
    Text,
    /// SQLite BLOB / PostgreSQL BYTEA (ciphertext stays ciphertext).
    Bytes,
    /// SQLite 0/1 integer / PostgreSQL BOOLEAN.
    Bool,
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
}

/// One end of the migration.
pub enum Side {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl Side {
    pub async fn close(&self) {
        match self {
            Side::Sqlite(p) => p.close().await,
            Side::Pg(p) => p.close().await,
        }
    }
}

/// `"name"`, for names that come from the schema itself.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A connection pool on the SQLite database at `path` (which the store has created/migrated).
pub async fn open_sqlite(path: &Path, busy: Duration, read_only: bool) -> Result<SqlitePool> {
    let mut options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(busy)
        .foreign_keys(true);
    options = if read_only {
        options.read_only(true)
    } else {
        options
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("secure_delete", "ON")
    };
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// A connection pool on the PostgreSQL schema (which `PgStore::open` has checked and migrated).
/// No statement timeout: one statement streams a whole table.
pub async fn open_pg(url: &str, schema: Option<&str>) -> Result<PgPool> {
    let mut connect = PgConnectOptions::from_str(url)
        .map_err(|_| anyhow::anyhow!("the database URL is not a valid postgres:// URL"))?;
    let mut settings = vec![("statement_timeout", "0".to_owned())];
    if let Some(schema) = schema {
        settings.push(("search_path", schema.to_owned()));
    }
    connect = connect
        .options(settings)
        .application_name("strongroom-migrate");
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(connect)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))
}

/// The SQLite schema's tables (except SQLite's own) and foreign keys `(child, parent)`.
pub async fn sqlite_tables(pool: &SqlitePool) -> Result<(Vec<String>, Vec<(String, String)>)> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .context("listing the SQLite tables")?;
    let fks: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, f.\"table\" FROM sqlite_master m \
         JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .context("listing the SQLite foreign keys")?;
    Ok((tables.into_iter().map(|(t,)| t).collect(), fks))
}

async fn sqlite_columns(pool: &SqlitePool, table: &str) -> Result<BTreeSet<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info($1)")
        .bind(table)
        .fetch_all(pool)
        .await
        .with_context(|| format!("listing the SQLite columns of {table}"))?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

/// PostgreSQL columns per table of the current schema, in column order.
async fn pg_columns(pool: &PgPool) -> Result<BTreeMap<String, Vec<Column>>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
         ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(pool)
    .await
    .context("listing the PostgreSQL columns")?;
    let mut out: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for (table, name, data_type) in rows {
        if NOT_COPIED.contains(&table.as_str()) {
            continue;
        }
        let kind = match data_type.as_str() {
            "bigint" | "integer" | "smallint" => Kind::Int,
            "text" | "character varying" => Kind::Text,
            "bytea" => Kind::Bytes,
            "boolean" => Kind::Bool,
            other => bail!("column {table}.{name} has a type the migration does not know: {other}"),
        };
        out.entry(table).or_default().push(Column { name, kind });
    }
    Ok(out)
}

/// `tables` ordered so that every table comes after the tables it references (Kahn's algorithm;
/// ties by name, so the order is stable). Self-references are ignored; a cycle is an error.
pub fn fk_order(tables: &[String], fks: &[(String, String)]) -> Result<Vec<String>> {
    let known: BTreeSet<&str> = tables.iter().map(String::as_str).collect();
    let mut parents: BTreeMap<&str, BTreeSet<&str>> =
        known.iter().map(|t| (*t, BTreeSet::new())).collect();
    for (child, parent) in fks {
        if child == parent || !known.contains(parent.as_str()) {
            continue;
        }
        if let Some(set) = parents.get_mut(child.as_str()) {
            set.insert(parent.as_str());
        }
    }
    let mut order = Vec::with_capacity(tables.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while placed.len() < known.len() {
        let ready: Vec<&str> = parents
            .iter()
            .filter(|(t, ps)| !placed.contains(*t) && ps.iter().all(|p| placed.contains(p)))
            .map(|(t, _)| *t)
            .collect();
        if ready.is_empty() {
            bail!("the foreign keys between the tables form a cycle");
        }
        for t in ready {
            placed.insert(t);
            order.push(t.to_owned());
        }
    }
    Ok(order)
}

/// The tables to copy, parents first, typed by PostgreSQL. Fails unless both schemas hold the
/// same tables with the same columns (both sides are migrated by this binary, so they do).
pub async fn plan(sqlite: &SqlitePool, pg: &PgPool) -> Result<Vec<Table>> {
    let (tables, fks) = sqlite_tables(sqlite).await?;
    let copied: Vec<String> = tables
        .into_iter()
        .filter(|t| !NOT_COPIED.contains(&t.as_str()))
        .collect();
    let mut pg_cols = pg_columns(pg).await?;
    let pg_tables: BTreeSet<String> = pg_cols
        .keys()
        .filter(|t| !NOT_COPIED.contains(&t.as_str()))
        .cloned()
        .collect();
    let sqlite_set: BTreeSet<String> = copied.iter().cloned().collect();
    if pg_tables != sqlite_set {
        let only_pg: Vec<_> = pg_tables.difference(&sqlite_set).collect();
        let only_sqlite: Vec<_> = sqlite_set.difference(&pg_tables).collect();
        bail!(
            "the two schemas differ: tables only in PostgreSQL {only_pg:?}, only in SQLite \
             {only_sqlite:?}"
        );
    }
    let mut out = Vec::with_capacity(copied.len());
    for name in fk_order(&copied, &fks)? {
        let columns = pg_cols.remove(&name).unwrap_or_default();
        let names: BTreeSet<String> = columns.iter().map(|c| c.name.clone()).collect();
        if names != sqlite_columns(sqlite, &name).await? {
            bail!("the two schemas differ in the columns of table {name}");
        }
        out.push(Table { name, columns });
    }
    Ok(out)
}

/// Row counts of `tables` (and of `leases`), read in one transaction that sees every tenant.
pub async fn counts(side: &Side, tables: &[Table]) -> Result<BTreeMap<String, i64>> {
    let mut names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    names.push("leases");
    let mut out = BTreeMap::new();
    match side {
        Side::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for name in names {
                let sql = format!("SELECT COUNT(*) FROM {}", quote(name));
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut *tx)
                    .await
                    .with_context(|| format!("counting the rows of {name}"))?;
                out.insert(name.to_owned(), n);
            }
            tx.rollback().await?;
        }
        Side::Pg(pool) => {
            let mut tx = pool.begin_with(PG_SNAPSHOT).await?;
            for name in names {
                let sql = format!("SELECT COUNT(*) FROM {}", quote(name));
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut *tx)
                    .await
                    .with_context(|| format!("counting the rows of {name}"))?;
                out.insert(name.to_owned(), n);
            }
            tx.rollback().await?;
        }
    }
    Ok(out)
}

/// PostgreSQL's audit head: `(size, entries, max idx + 1)`.
pub async fn pg_audit_head(pool: &PgPool) -> Result<(i64, i64, i64)> {
    let mut tx = pool.begin_with(PG_READ).await?;
    let (size,): (i64,) = sqlx::query_as("SELECT size FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await
        .context("reading the audit head")?;
    let (count, next): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(idx) + 1, 0) FROM audit_entries")
            .fetch_one(&mut *tx)
            .await?;
    tx.rollback().await?;
    Ok((size, count, next))
}

/// Leases that show a running instance: `(name, milliseconds left)`. Job leases (`job:*`) are
/// schedule markers held for a job's whole period (up to a day) and outlive a clean stop, so
/// they do not count; the audit signer's lease (5 s, renewed every second while any instance
/// runs) and the shared locks do.
pub async fn live_leases(pool: &PgPool, now_ms: i64) -> Result<Vec<(String, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, expires_at - $1 FROM leases \
         WHERE expires_at > $1 AND name NOT LIKE 'job:%' ORDER BY name",
    )
    .bind(now_ms)
    .fetch_all(pool)
    .await
    .context("reading the leases")?;
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn order_puts_parents_first_and_finds_cycles() {
        let tables = s(&["c", "b", "a", "d"]);
        let fks = vec![
            ("c".to_owned(), "b".to_owned()),
            ("b".to_owned(), "a".to_owned()),
            ("d".to_owned(), "d".to_owned()),
            ("d".to_owned(), "unknown".to_owned()),
        ];
        assert_eq!(fk_order(&tables, &fks).unwrap(), s(&["a", "d", "b", "c"]));
        let cycle = vec![
            ("a".to_owned(), "b".to_owned()),
            ("b".to_owned(), "a".to_owned()),
        ];
        assert!(fk_order(&s(&["a", "b"]), &cycle).is_err());
    }

    /// The order derived from the real SQLite schema covers every table but the excluded ones,
    /// and puts every referenced table before the tables referencing it.
    #[tokio::test]
    async fn order_of_the_real_schema_covers_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strongroom.db");
        let store = strongroom_store::SqliteStore::open(&path, Duration::from_secs(5))
            .await
            .unwrap();
        store.close().await;
        let pool = open_sqlite(&path, Duration::from_secs(5), true)
            .await
            .unwrap();
        let (tables, fks) = sqlite_tables(&pool).await.unwrap();
        let copied: Vec<String> = tables
            .iter()
            .filter(|t| !NOT_COPIED.contains(&t.as_str()))
            .cloned()
            .collect();
        let order = fk_order(&copied, &fks).unwrap();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, copied);
        for must in [
            "tenants",
            "users",
            "contacts",
            "cases",
            "comments",
            "audit_entries",
        ] {
            assert!(order.iter().any(|t| t == must), "{must} missing");
        }
        assert!(!order.iter().any(|t| t == "leases"));
        let pos = |t: &str| order.iter().position(|x| x == t);
        assert!(!fks.is_empty());
        for (child, parent) in &fks {
            if let (Some(c), Some(p)) = (pos(child), pos(parent)) {
                assert!(p < c, "{parent} must come before {child}");
            }
        }
        pool.close().await;
    }
}
