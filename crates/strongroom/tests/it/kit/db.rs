//! The database behind the test servers: SQLite in each data dir (the default) or PostgreSQL,
//! one schema per server, chosen by `STRONGROOM_TEST_DATABASE` (`sqlite` | `postgres`).
//!
//! On PostgreSQL the kit, as the administrator (`STRONGROOM_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), creates once the plain role `strongroom_app` the
//! servers connect as (never a superuser: the server refuses one), and per server a schema
//! `sr_<16 hex>` owned by it; the schema is dropped when the last server using it is dropped
//! (or, for servers kept in statics, by the watchdog when the test binary exits).
//!
//! Skipped on PostgreSQL (each via `kit::skip_on_postgres`, which prints why); keep this list
//! short and give every other SQLite-specific check a PostgreSQL equivalent (at-rest scans dump
//! the schema, see [`dump_schema`]; tampering happens in the schema; `admin`/`keys` commands get
//! `Server::store_env`, `audit verify` gets `Server::store_args`):
//! - `backup::backup_verify_restore_and_shredded_tenants_stay_shredded`: `strongroom backup`
//!   copies the SQLite database of a data dir; backups of a PostgreSQL deployment are pg_dump's
//!   job (`backup::on_postgres_data_backups_are_refused_and_key_backups_work` checks that
//!   `backup create` says so and that `backup keys` works there);
//!   `backup::a_restore_refuses_records_sealed_under_a_version_retired_since_the_backup`,
//!   `backup::an_interrupted_backup_leaves_no_copy_behind` and
//!   `backup_root::backups_are_taken_under_the_live_root_key_and_land_whole` too.
//! - `audit_recovery::a_database_copied_back_over_a_newer_one_is_refused_at_start`: it copies the
//!   SQLite database file back over a newer one.
//! - `migrate::*`: they start from a SQLite deployment and open PostgreSQL themselves, so the
//!   SQLite pass already covers both sides.
//!
//! `multi_instance` is the reverse: PostgreSQL only.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row, SqliteConnection};

use super::rand_hex;

/// Which database the test servers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend of this test run: `STRONGROOM_TEST_DATABASE` (`sqlite`, the default, or
/// `postgres`). Anything else is a mistake and panics.
pub fn backend() -> Backend {
    match std::env::var("STRONGROOM_TEST_DATABASE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") | Ok("postgresql") => Backend::Postgres,
        Ok(other) => panic!("STRONGROOM_TEST_DATABASE={other:?}: expected sqlite or postgres"),
    }
}

/// True when this run's servers use PostgreSQL.
pub fn on_postgres() -> bool {
    backend() == Backend::Postgres
}

/// The role every test server connects as.
pub const PG_APP_ROLE: &str = "strongroom_app";

/// The administrator's URL (creates the role and the schemas, inspects and tampers).
pub fn pg_admin_url() -> String {
    std::env::var("STRONGROOM_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The servers' URL: the administrator's, with `strongroom_app` as the user (and no password).
pub fn pg_app_url() -> String {
    let admin = pg_admin_url();
    let (scheme, rest) = admin.split_once("://").unwrap_or(("postgres", &admin));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{PG_APP_ROLE}@{host}")
}

/// Runs an async block to completion on a thread of its own (with its own runtime), so that it
/// can be called from sync code, from `Drop`, and from inside a test's runtime alike.
pub fn block_on<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a runtime")
            .block_on(f())
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// An administrator connection (5 s to connect).
pub async fn pg_admin_connect() -> Result<PgConnection, String> {
    let url = pg_admin_url();
    let opts: PgConnectOptions = url
        .parse()
        .map_err(|e| format!("bad PostgreSQL URL {url}: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(5), opts.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("cannot connect to {url}: {e}")),
        Err(_) => Err(format!("cannot connect to {url}: no answer within 5 s")),
    }
}

/// Whether the administrator URL answers (for the PostgreSQL pass of the suite).
pub fn pg_reachable() -> Result<(), String> {
    block_on(|| async {
        let mut conn = pg_admin_connect().await?;
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot query {}: {e}", pg_admin_url()))?;
        let _ = conn.close().await;
        Ok(())
    })
}

/// Creates the application role if it is missing (or repairs its attributes), safely against
/// other tests and test processes doing the same: an advisory lock serialises them.
async fn ensure_app_role(conn: &mut PgConnection) -> Result<(), String> {
    const LOCK: i64 = 0x5354_524f_4e47; // "STRONG"
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK)
        .execute(&mut *conn)
        .await
        .map_err(|e| format!("advisory lock: {e}"))?;
    let result = async {
        let exists: Option<(bool,)> =
            sqlx::query_as("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1")
                .bind(PG_APP_ROLE)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| format!("read pg_roles: {e}"))?;
        let sql = match exists {
            None => {
                "CREATE ROLE strongroom_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            }
            Some((true,)) => {
                "ALTER ROLE strongroom_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            }
            Some((false,)) => return Ok(()),
        };
        match sqlx::query(sql).execute(&mut *conn).await {
            Ok(_) => Ok(()),
            // Another cluster user created it between our look and our create.
            Err(e) if e.to_string().contains("already exists") => Ok(()),
            Err(e) => Err(format!("{sql}: {e}")),
        }
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK)
        .execute(&mut *conn)
        .await;
    result
}

/// One server's schema (shared by its peers and kept across restarts): dropped, best effort,
/// when the last holder drops it.
#[derive(Debug)]
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    /// Creates `sr_<16 hex>` owned by `strongroom_app` (creating the role first if needed).
    pub fn create() -> PgSchema {
        let name = format!("sr_{}", rand_hex(8));
        let schema = name.clone();
        let done: Result<(), String> = block_on(move || async move {
            let mut conn = pg_admin_connect().await?;
            ensure_app_role(&mut conn).await?;
            let sql = format!("CREATE SCHEMA {schema} AUTHORIZATION {PG_APP_ROLE}");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .map_err(|e| format!("create schema {schema}: {e}"))?;
            let _ = conn.close().await;
            Ok(())
        });
        if let Err(e) = done {
            panic!("PostgreSQL backend: {e}");
        }
        PgSchema { name }
    }

    /// `--database-url URL --database-schema NAME` for `serve` and `audit verify`.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--database-url".into(),
            pg_app_url(),
            "--database-schema".into(),
            self.name.clone(),
        ]
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let schema = self.name.clone();
        let done: Result<(), String> = block_on(move || async move {
            let mut conn = pg_admin_connect().await?;
            // The servers using it are dead; their connections may take a moment to close.
            let _ = sqlx::query("SET lock_timeout = '10s'")
                .execute(&mut conn)
                .await;
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.close().await;
            Ok(())
        });
        if let Err(e) = done {
            eprintln!("note: could not drop schema {}: {e}", self.name);
        }
    }
}

/// A bound parameter for [`Db`] queries.
#[derive(Clone, Debug)]
pub enum Arg {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_owned())
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(v.clone())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Arg {
        Arg::Bytes(v.to_vec())
    }
}
impl From<&Vec<u8>> for Arg {
    fn from(v: &Vec<u8>) -> Arg {
        Arg::Bytes(v.clone())
    }
}

macro_rules! bound {
    ($sql:expr, $args:expr) => {{
        let mut q = sqlx::query(sqlx::AssertSqlSafe($sql.to_owned()));
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(n) => q.bind(*n),
                Arg::Bytes(b) => q.bind(b.clone()),
            };
        }
        q
    }};
}

/// A connection to a server's store, whichever the backend: SQLite on `DATA/strongroom.db`, or
/// PostgreSQL as the administrator with `search_path` set to the server's schema. Queries use
/// `$1…` placeholders and SQL both databases accept (`CAST(x AS BIGINT)` for integers).
pub enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Db {
    /// SQLite `DATA/strongroom.db` (read-write, 10 s busy timeout).
    pub async fn sqlite(data_dir: &Path) -> Db {
        let conn = SqliteConnectOptions::new()
            .filename(data_dir.join("strongroom.db"))
            .busy_timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("open {}/strongroom.db: {e}", data_dir.display()));
        Db::Sqlite(conn)
    }

    /// PostgreSQL, as the administrator, in `schema`.
    pub async fn postgres(schema: &str) -> Db {
        let mut conn = pg_admin_connect().await.unwrap_or_else(|e| panic!("{e}"));
        let sql = format!("SET search_path TO {schema}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("set search_path");
        Db::Postgres(conn)
    }

    /// Runs a statement; returns the rows affected.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> u64 {
        let what = sql.to_owned();
        match self {
            Db::Sqlite(c) => bound!(sql, args)
                .execute(c)
                .await
                .map(|r| r.rows_affected()),
            Db::Postgres(c) => bound!(sql, args)
                .execute(c)
                .await
                .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The first column of every row.
    pub async fn column<T>(&mut self, sql: &str, args: &[Arg]) -> Vec<T>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        let what = sql.to_owned();
        match self {
            Db::Sqlite(c) => bound!(sql, args)
                .fetch_all(c)
                .await
                .and_then(|rows| rows.iter().map(|r| r.try_get::<T, _>(0)).collect()),
            Db::Postgres(c) => bound!(sql, args)
                .fetch_all(c)
                .await
                .and_then(|rows| rows.iter().map(|r| r.try_get::<T, _>(0)).collect()),
        }
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The first column of the one row `sql` returns.
    pub async fn one<T>(&mut self, sql: &str, args: &[Arg]) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        let mut rows = self.column::<T>(sql, args).await;
        assert_eq!(rows.len(), 1, "{sql}: expected one row");
        rows.remove(0)
    }

    /// An integer (COUNT, MAX, …), NULL as 0.
    pub async fn int(&mut self, sql: &str, args: &[Arg]) -> i64 {
        self.one::<Option<i64>>(sql, args).await.unwrap_or(0)
    }

    pub async fn close(self) {
        let _ = match self {
            Db::Sqlite(c) => c.close().await,
            Db::Postgres(c) => c.close().await,
        };
    }
}

/// Every row of every table of `schema`, as text (`row_to_json`), written to `out`; each bytea
/// value (`\x…` hex in the text) is also appended decoded, so a scan finds raw bytes too, as it
/// does in SQLite files.
pub async fn dump_schema(schema: &str, out: &Path) -> PathBuf {
    let mut conn = pg_admin_connect().await.unwrap_or_else(|e| panic!("{e}"));
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1")
            .bind(schema)
            .fetch_all(&mut conn)
            .await
            .expect("list tables");
    assert!(!tables.is_empty(), "schema {schema} has no tables");
    let mut text = Vec::new();
    for (table,) in &tables {
        let sql = format!("SELECT row_to_json(t)::text FROM {schema}.\"{table}\" t");
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("dump {schema}.{table}: {e}"));
        for (row,) in rows {
            writeln!(text, "{table}: {row}").expect("write");
            text.extend(decoded_bytea(&row));
            text.push(b'\n');
        }
    }
    let _ = conn.close().await;
    std::fs::write(out, &text).expect("write the dump");
    out.to_path_buf()
}

/// The bytes of every `\\x<hex>` (a bytea in JSON) in `json`, concatenated with newlines.
fn decoded_bytea(json: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = json;
    while let Some(at) = rest.find("\\\\x") {
        let tail = &rest[at + 3..];
        let len = tail.bytes().take_while(u8::is_ascii_hexdigit).count() / 2 * 2;
        if let Ok(bytes) = hex::decode(&tail[..len]) {
            out.extend(bytes);
            out.push(b'\n');
        }
        rest = &tail[len..];
    }
    out
}

#[test]
fn bytea_in_json_is_decoded() {
    let got = decoded_bytea(r#"{"a":"\\x414243","b":"x","c":"\\x00ff1"}"#);
    assert_eq!(got, b"ABC\n\x00\xff\n");
}

#[test]
fn app_url_keeps_host_and_database() {
    // Only the default: the environment of the run may override it.
    if std::env::var("STRONGROOM_TEST_PG_URL").is_err() {
        assert_eq!(
            pg_app_url(),
            "postgres://strongroom_app@127.0.0.1:5432/test"
        );
    }
}
