//! The copy: every row of every table, as stored (ciphertext stays ciphertext), read from one
//! consistent snapshot of the source and written to the target in batches, each batch in its own
//! transaction, parents before children.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use futures_util::TryStreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, QueryBuilder, Row, Sqlite};

use super::db::{Kind, Side, Table, quote};

/// Rows per INSERT, at most (also bounded by the bind-parameter limit and by bytes).
const BATCH_ROWS: usize = 500;
const BATCH_PARAMS: usize = 30_000;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// One cell, typed by its column.
enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl Val {
    fn size(&self) -> usize {
        match self {
            Val::Int(_) | Val::Bool(_) => 8,
            Val::Text(v) => v.as_ref().map_or(0, String::len),
            Val::Bytes(v) => v.as_ref().map_or(0, Vec::len),
        }
    }
}

fn decode_sqlite(row: &SqliteRow, table: &Table) -> Result<Vec<Val>> {
    let mut out = Vec::with_capacity(table.columns.len());
    for (i, col) in table.columns.iter().enumerate() {
        let what = || format!("reading {}.{}", table.name, col.name);
        out.push(match col.kind {
            Kind::Int => Val::Int(row.try_get(i).with_context(what)?),
            Kind::Text => Val::Text(row.try_get(i).with_context(what)?),
            Kind::Bytes => Val::Bytes(row.try_get(i).with_context(what)?),
            // Stored as 0/1.
            Kind::Bool => Val::Bool(
                row.try_get::<Option<i64>, _>(i)
                    .with_context(what)?
                    .map(|v| v != 0),
            ),
        });
    }
    Ok(out)
}

fn decode_pg(row: &PgRow, table: &Table) -> Result<Vec<Val>> {
    let mut out = Vec::with_capacity(table.columns.len());
    for (i, col) in table.columns.iter().enumerate() {
        let what = || format!("reading {}.{}", table.name, col.name);
        out.push(match col.kind {
            Kind::Int => Val::Int(row.try_get(i).with_context(what)?),
            Kind::Text => Val::Text(row.try_get(i).with_context(what)?),
            Kind::Bytes => Val::Bytes(row.try_get(i).with_context(what)?),
            Kind::Bool => Val::Bool(row.try_get(i).with_context(what)?),
        });
    }
    Ok(out)
}

fn select_sql(table: &Table) -> String {
    let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    format!("SELECT {} FROM {}", cols.join(", "), quote(&table.name))
}

fn insert_head(table: &Table) -> String {
    let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    format!("INSERT INTO {} ({}) ", quote(&table.name), cols.join(", "))
}

/// The progress bars: overall rows, and the current table.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Bars {
    pub fn new(total: u64) -> Self {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(total));
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>28} [{bar:32}] {pos}/{len} rows ({eta})")
        {
            overall.set_style(style.progress_chars("#>-"));
        }
        overall.set_prefix("all tables");
        Self { multi, overall }
    }

    fn table(&self, name: &str, rows: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(rows));
        if let Ok(style) = ProgressStyle::with_template("{prefix:>28} [{bar:32}] {pos}/{len}") {
            bar.set_style(style.progress_chars("#>-"));
        }
        bar.set_prefix(name.to_owned());
        bar
    }

    /// Whether nothing is drawn (stderr is not a terminal): then one line per table is printed.
    fn hidden(&self) -> bool {
        self.multi.is_hidden()
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

/// Where a table's rows go: batches into the target.
struct Sink<'a> {
    target: &'a Side,
    table: &'a Table,
    rows: Vec<Vec<Val>>,
    bytes: usize,
    max_rows: usize,
    written: u64,
    bar: ProgressBar,
    overall: &'a ProgressBar,
}

impl Sink<'_> {
    async fn push(&mut self, row: Vec<Val>) -> Result<()> {
        self.bytes += row.iter().map(Val::size).sum::<usize>();
        self.rows.push(row);
        if self.rows.len() >= self.max_rows || self.bytes >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let table = &self.table.name;
        self.write()
            .await
            .with_context(|| format!("writing the rows of {table}"))
    }

    async fn write(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let head = insert_head(self.table);
        let n = self.rows.len() as u64;
        match self.target {
            Side::Pg(pool) => {
                let mut qb = QueryBuilder::<Postgres>::new(head);
                qb.push_values(self.rows.drain(..), |mut b, row| {
                    for v in row {
                        match v {
                            Val::Int(x) => b.push_bind(x),
                            Val::Text(x) => b.push_bind(x),
                            Val::Bytes(x) => b.push_bind(x),
                            Val::Bool(x) => b.push_bind(x),
                        };
                    }
                });
                let mut tx = pool.begin_with(super::db::PG_WRITE).await?;
                qb.build().execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Side::Sqlite(pool) => {
                let mut qb = QueryBuilder::<Sqlite>::new(head);
                qb.push_values(self.rows.drain(..), |mut b, row| {
                    for v in row {
                        match v {
                            Val::Int(x) => b.push_bind(x),
                            Val::Text(x) => b.push_bind(x),
                            Val::Bytes(x) => b.push_bind(x),
                            // 0/1, as the SQLite store writes them.
                            Val::Bool(x) => b.push_bind(x.map(i64::from)),
                        };
                    }
                });
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                qb.build().execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        self.bytes = 0;
        self.written += n;
        self.bar.inc(n);
        self.overall.inc(n);
        Ok(())
    }
}

/// Copies every table of `tables` from `source` to `target`; returns the rows copied per table.
/// The source is read in one read-only snapshot transaction, so the copy is consistent even if
/// something wrote to the source meanwhile (the callers make sure nothing does).
pub async fn copy_all(
    source: &Side,
    target: &Side,
    tables: &[Table],
    expected: &BTreeMap<String, i64>,
) -> Result<BTreeMap<String, i64>> {
    let total: i64 = expected.values().sum();
    let bars = Bars::new(u64::try_from(total).unwrap_or(0));
    let mut copied = BTreeMap::new();
    match source {
        Side::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for table in tables {
                let mut sink = sink(target, table, expected, &bars);
                {
                    let sql = select_sql(table);
                    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *tx);
                    while let Some(row) = rows.try_next().await? {
                        sink.push(decode_sqlite(&row, table)?).await?;
                    }
                }
                done(&mut sink, &bars, &mut copied).await?;
            }
            tx.rollback().await?;
        }
        Side::Pg(pool) => {
            let mut tx = pool.begin_with(super::db::PG_SNAPSHOT).await?;
            for table in tables {
                let mut sink = sink(target, table, expected, &bars);
                {
                    let sql = select_sql(table);
                    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *tx);
                    while let Some(row) = rows.try_next().await? {
                        sink.push(decode_pg(&row, table)?).await?;
                    }
                }
                done(&mut sink, &bars, &mut copied).await?;
            }
            tx.rollback().await?;
        }
    }
    bars.finish();
    Ok(copied)
}

fn sink<'a>(
    target: &'a Side,
    table: &'a Table,
    expected: &BTreeMap<String, i64>,
    bars: &'a Bars,
) -> Sink<'a> {
    let rows = expected.get(&table.name).copied().unwrap_or(0);
    Sink {
        target,
        table,
        rows: Vec::new(),
        bytes: 0,
        max_rows: (BATCH_PARAMS / table.columns.len().max(1)).clamp(1, BATCH_ROWS),
        written: 0,
        bar: bars.table(&table.name, u64::try_from(rows).unwrap_or(0)),
        overall: &bars.overall,
    }
}

async fn done(sink: &mut Sink<'_>, bars: &Bars, copied: &mut BTreeMap<String, i64>) -> Result<()> {
    sink.flush().await?;
    sink.bar.finish_and_clear();
    let n = i64::try_from(sink.written).unwrap_or(i64::MAX);
    if bars.hidden() {
        eprintln!("copied {:>8} rows of {}", n, sink.table.name);
    }
    copied.insert(sink.table.name.clone(), n);
    Ok(())
}

/// Sets PostgreSQL's audit head to the number of copied entries (they are gap-free from 0).
pub async fn set_audit_head(target: &Side) -> Result<()> {
    let Side::Pg(pool) = target else {
        return Ok(());
    };
    let mut tx = pool.begin_with(super::db::PG_WRITE).await?;
    let (count, next): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(idx) + 1, 0) FROM audit_entries")
            .fetch_one(&mut *tx)
            .await?;
    if count != next {
        bail!("the copied audit log has gaps ({count} entries, last index {next} - 1)");
    }
    sqlx::query("UPDATE audit_head SET size = $1 WHERE id = 1")
        .bind(count)
        .execute(&mut *tx)
        .await
        .context("setting the audit head")?;
    tx.commit().await?;
    Ok(())
}

/// Empties what a failed copy left in the target, so the migration can simply be run again.
pub async fn empty_target(target: &Side, tables: &[Table]) -> Result<()> {
    match target {
        Side::Pg(pool) => {
            let names: Vec<String> = tables.iter().map(|t| quote(&t.name)).collect();
            if !names.is_empty() {
                let sql = format!("TRUNCATE {}", names.join(", "));
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
            }
            sqlx::query("UPDATE audit_head SET size = 0 WHERE id = 1")
                .execute(pool)
                .await?;
        }
        Side::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            for t in tables.iter().rev() {
                let sql = format!("DELETE FROM {}", quote(&t.name));
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}
