//! `strongroom migrate`: moves a deployment's data between its data dir's SQLite database and
//! PostgreSQL, in either direction, then verifies the copy.
//!
//! - Nothing may write the source meanwhile: the data-dir lock keeps a server off the data dir,
//!   and a PostgreSQL source with live instance leases is refused.
//! - The target must be empty (a new database or schema: the store's migrations create the
//!   tables, the copy fills them).
//! - Rows are copied as stored: ciphertext stays ciphertext, nothing is decrypted to be copied.
//!   Tables go parents first, in batches, each batch in one transaction. `leases` (runtime
//!   state) and each side's migration bookkeeping are not copied; PostgreSQL's audit head is set
//!   to the number of copied entries.
//! - The verification (also alone with `--verify-only`) compares row counts, recomputes the audit
//!   log on both sides, and decrypts a random sample of contacts and cases on both sides with the
//!   root key. It prints no plaintext, and exits non-zero on any mismatch.

mod copy;
mod db;
mod sample;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use strongroom_crypto::{EnvKeyProvider, FileKeyProvider, KeyProvider, RootKey};
use strongroom_store::{PgOptions, PgStore, SqliteStore, Store};

use crate::config::Config;
use crate::datadir::DataDir;
use db::{Side, Table};

/// Where the data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// From DATA_DIR/strongroom.db into PostgreSQL.
    Postgres,
    /// From PostgreSQL into DATA_DIR/strongroom.db (which must not exist yet, or be empty).
    Sqlite,
}

/// No `Debug`: the database URL may hold a password.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The data dir: its SQLite database is the source (`--to postgres`) or the target
    /// (`--to sqlite`); its root key and log signing key verify the copy. No server may run on it.
    #[arg(long, env = "STRONGROOM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Direction of the migration.
    #[arg(long, value_enum)]
    pub to: Target,
    /// The PostgreSQL database (`postgres://user@host/db`): the target, or the source. Give a
    /// URL with a password in the environment, not on the command line, where other local users
    /// can read it.
    #[arg(long, env = "STRONGROOM_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// PostgreSQL schema holding Strongroom's tables (must exist, owned by the role).
    #[arg(long, env = "STRONGROOM_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,
    /// Configuration file (TOML) of the deployment; defaults to DATA_DIR/strongroom.toml when
    /// present. Its `audit_origin` and `root_key_env` matter here.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only compare source and target (row counts, audit log, decrypted sample); copy nothing.
    #[arg(long)]
    pub verify_only: bool,
    /// Contacts and cases per tenant decrypted on both sides by the verification.
    #[arg(long, default_value_t = 20)]
    pub sample: usize,
}

fn root_key(config: &Config, data_dir: &Path) -> Result<RootKey> {
    let provider: Box<dyn KeyProvider> = match &config.root_key_env {
        Some(var) => Box::new(EnvKeyProvider::new(var.clone())),
        None => Box::new(
            FileKeyProvider::open(data_dir.join("keys/root.key")).context(
                "root key file (copy keys/root.key and keys/log-signing.key from the deployment \
                 into the data dir)",
            )?,
        ),
    };
    provider
        .root_key()
        .with_context(|| format!("root key from {}", provider.describe()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Both ends, opened: raw pools for the copy, stores for the verification.
struct Opened {
    sqlite_pool: sqlx::SqlitePool,
    pg_pool: sqlx::PgPool,
    sqlite_store: SqliteStore,
    pg_store: PgStore,
    tables: Vec<Table>,
}

async fn open_ends(args: &MigrateArgs, dir: &DataDir, config: &Config) -> Result<Opened> {
    let busy = Duration::from_millis(config.store_busy_timeout_ms);
    let db_path = dir.database();
    let options = PgOptions {
        url: args.database_url.clone(),
        schema: args.database_schema.clone(),
        max_connections: 4,
        acquire_timeout: Duration::from_millis(config.store_busy_timeout_ms.max(5_000)),
        statement_timeout: Duration::from_millis(config.database_statement_timeout_ms),
    };
    // The stores create (or check) each schema and run its migrations.
    let pg_store = PgStore::open(&options)
        .await
        .context("opening the PostgreSQL database")?;
    let pg_pool = db::open_pg(&args.database_url, args.database_schema.as_deref()).await?;
    if args.to == Target::Sqlite {
        let live = db::live_leases(&pg_pool, now_ms()).await?;
        if let Some(longest) = live.iter().map(|(_, ms)| *ms).max() {
            let names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
            bail!(
                "strongroom instances still run on this PostgreSQL database (live leases: {}); \
                 stop every server that uses it, wait {} s for the leases to lapse, and retry",
                names.join(", "),
                longest / 1000 + 1
            );
        }
    }
    // Opening read-write first recovers a journal left by a crash; the lock keeps servers off.
    let store = SqliteStore::open(&db_path, busy)
        .await
        .with_context(|| format!("opening {}", db_path.display()))?;
    store.close().await;
    let sqlite_pool = db::open_sqlite(&db_path, busy, args.to == Target::Postgres).await?;
    let sqlite_store = SqliteStore::open_read_only(&db_path, busy)
        .await
        .with_context(|| format!("opening {} read-only", db_path.display()))?;
    let tables = db::plan(&sqlite_pool, &pg_pool).await?;
    Ok(Opened {
        sqlite_pool,
        pg_pool,
        sqlite_store,
        pg_store,
        tables,
    })
}

pub async fn run(args: MigrateArgs) -> Result<()> {
    let db_file = args.data_dir.join("strongroom.db");
    if (args.to == Target::Postgres || args.verify_only) && !db_file.is_file() {
        bail!(
            "{} holds no strongroom database to migrate",
            args.data_dir.display()
        );
    }
    let dir = DataDir::open_locked(&args.data_dir)
        .context("migrate needs the data dir to itself: stop the server that uses it")?;
    let config = Config::load(args.config.as_deref(), &args.data_dir)?;
    if dir.path("keys/root.key.new").exists() {
        bail!(
            "a root-key rotation was interrupted on this data dir; start the server once (it \
             completes or undoes the rotation), stop it, and migrate then"
        );
    }
    let root = root_key(&config, &args.data_dir)?;
    let verifier =
        crate::audit_cmd::verifier_from_data_dir(&args.data_dir, &config.service.audit_origin)?;

    let ends = open_ends(&args, &dir, &config).await?;
    let (source, target) = match args.to {
        Target::Postgres => (
            Side::Sqlite(ends.sqlite_pool.clone()),
            Side::Pg(ends.pg_pool.clone()),
        ),
        Target::Sqlite => (
            Side::Pg(ends.pg_pool.clone()),
            Side::Sqlite(ends.sqlite_pool.clone()),
        ),
    };
    let (from, to) = names(&args, &db_file);
    let outcome = async {
        if !args.verify_only {
            check_empty(&target, &ends.tables, &to).await?;
            let mut expected = db::counts(&source, &ends.tables).await?;
            expected.remove("leases");
            println!(
                "copying {} rows in {} tables from {from} to {to}",
                verify::total(&expected),
                ends.tables.len()
            );
            let copied = match copy::copy_all(&source, &target, &ends.tables, &expected).await {
                Ok(c) => c,
                Err(e) => {
                    let undo = copy::empty_target(&target, &ends.tables).await;
                    return Err(match undo {
                        Ok(()) => e.context("copying failed; the target was emptied again"),
                        Err(u) => e.context(format!(
                            "copying failed, and emptying the target failed too ({u}); empty \
                             it by hand before running migrate again"
                        )),
                    });
                }
            };
            copy::set_audit_head(&target).await?;
            println!(
                "copied {} rows in {} tables",
                verify::total(&copied),
                copied.len()
            );
        }
        let (source_store, target_store): (&dyn Store, &dyn Store) = match args.to {
            Target::Postgres => (&ends.sqlite_store, &ends.pg_store),
            Target::Sqlite => (&ends.pg_store, &ends.sqlite_store),
        };
        println!("verifying {to} against {from}");
        let ends_v = verify::Ends {
            source: &source,
            target: &target,
            source_store,
            target_store,
        };
        verify::run(&ends_v, &ends.tables, &verifier, &root, args.sample).await
    }
    .await;
    ends.sqlite_store.close().await;
    ends.pg_store.close().await;
    source.close().await;
    target.close().await;
    let findings = outcome?;
    for line in &findings.ok {
        println!("OK: {line}");
    }
    if !findings.bad.is_empty() {
        for line in &findings.bad {
            println!("MISMATCH: {line}");
        }
        bail!(
            "verification failed: {} mismatches between {from} and {to}; do not switch over",
            findings.bad.len()
        );
    }
    println!("verified: {to} holds the same data as {from}");
    if !args.verify_only {
        mark_moved(&dir, args.to)?;
        next_steps(&args, &config);
    }
    Ok(())
}

/// Human names of both ends (no URL: it may hold a password).
fn names(args: &MigrateArgs, db_file: &Path) -> (String, String) {
    let pg = match &args.database_schema {
        Some(s) => format!("PostgreSQL (schema {s})"),
        None => "PostgreSQL".to_owned(),
    };
    let sqlite = format!("SQLite ({})", db_file.display());
    match args.to {
        Target::Postgres => (sqlite, pg),
        Target::Sqlite => (pg, sqlite),
    }
}

/// Refuses a target holding any row: migrate fills only a new database or schema.
async fn check_empty(target: &Side, tables: &[Table], name: &str) -> Result<()> {
    let counts = db::counts(target, tables).await?;
    let full: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(t, n)| format!("{t}: {n} rows"))
        .collect();
    let (head, hint) = match target {
        Side::Pg(pool) => (db::pg_audit_head(pool).await?.0, " or schema"),
        Side::Sqlite(_) => (0, " (DATA_DIR/strongroom.db must not exist yet)"),
    };
    if !full.is_empty() || head != 0 {
        bail!(
            "the target {name} is not empty ({}); migrate only into a new, empty database{hint}",
            if full.is_empty() {
                format!("audit head at {head}")
            } else {
                full.join(", ")
            }
        );
    }
    Ok(())
}

/// Marks the data dir's SQLite file as no longer the live store once the data moved to
/// PostgreSQL (and unmarks it when it moved back): a restore must not take tenant keys from it,
/// since tenants shredded after the move keep their keys there.
fn mark_moved(dir: &DataDir, to: Target) -> Result<()> {
    let marker = dir.path(crate::datadir::MOVED_TO_POSTGRES);
    match to {
        // Synced: lost in a crash, the old file would pass for the live store again.
        Target::Postgres => {
            let _ = std::fs::remove_file(&marker);
            crate::datadir::write_secret(&marker, b"the live data is in PostgreSQL\n")
        }
        Target::Sqlite => match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => crate::datadir::sync_parent(&marker),
        },
    }
    .with_context(|| format!("marking {}", marker.display()))
}

fn next_steps(args: &MigrateArgs, config: &Config) {
    let dir = args.data_dir.display();
    let schema = args
        .database_schema
        .as_ref()
        .map(|s| format!(" --database-schema {s}"))
        .unwrap_or_default();
    println!();
    println!("next steps:");
    match args.to {
        Target::Postgres => {
            println!(
                "  1. start the servers with STRONGROOM_DATABASE_URL=<URL> in their environment \
                 and `strongroom serve --data-dir {dir}{schema}` (or database_url/database_schema \
                 in strongroom.toml)"
            );
            println!(
                "     every instance needs this data dir's keys/root.key (or root_key_env) and \
                 keys/log-signing.key"
            );
            println!(
                "  2. {dir}/strongroom.db is no longer used: keep it as a fallback only until you \
                 trust the new deployment, then delete it (it holds the wrapped tenant keys: a \
                 tenant deleted later stays recoverable from it while it exists)"
            );
        }
        Target::Sqlite => {
            println!("  1. start the server with `strongroom serve --data-dir {dir}`");
            if config.database_url.is_some() {
                println!(
                    "     remove database_url from its configuration (strongroom.toml or \
                     STRONGROOM_DATABASE_URL) first, or it keeps using PostgreSQL"
                );
            }
            println!(
                "  2. the PostgreSQL schema is no longer used: keep it as a fallback only until you \
                 trust the new deployment, then drop it (it holds the wrapped tenant keys)"
            );
        }
    }
}
