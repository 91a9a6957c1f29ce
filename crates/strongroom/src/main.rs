//! `strongroom`: the HTTPS API server and the operator CLI.

mod admin_cmd;
mod audit_cmd;
mod backup;
mod bench;
mod config;
mod database;
mod datadir;
mod demo;
mod jobs;
mod keys_cmd;
mod logging;
mod migrate;
mod serve;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Many small, short-lived allocations cross threads here (requests, entries, statements);
/// mimalloc serves them faster than glibc's arenas (docs/benchmarks.md, 2026-12-04).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "Customer-data vault for support organisations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTPS API server (and the ops listener).
    Serve {
        #[arg(long, env = "STRONGROOM_DATA_DIR")]
        data_dir: PathBuf,
        /// Configuration file (TOML); defaults to DATA_DIR/strongroom.toml when present.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[arg(long)]
        ops_listen: Option<SocketAddr>,
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// Keep the data in PostgreSQL (`postgres://user@host/db`) instead of the data dir.
        #[arg(long)]
        database_url: Option<String>,
        /// PostgreSQL schema for Strongroom's tables (must exist, owned by the role).
        #[arg(long)]
        database_schema: Option<String>,
        /// Load the demo data set on first start and print its credentials.
        #[arg(long)]
        demo: bool,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Access governance on a data dir whose server is stopped.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Tenant key and root key rotation on a data dir whose server is stopped.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Benchmark a real server over HTTPS (see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Encrypted online backups: create, verify, restore (README "Backups and restore").
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Move a deployment between SQLite and PostgreSQL (servers stopped), then verify the copy.
    Migrate(migrate::MigrateArgs),
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Back up a data dir while its server runs (tenant keys excluded).
    Create(backup::CreateArgs),
    /// Check a backup without restoring it: integrity, audit log against its checkpoint, counts.
    Verify(backup::VerifyArgs),
    /// Restore into a new data dir, with the tenant keys of a live deployment.
    Restore(backup::RestoreArgs),
    /// Back up the tenant keys alone, with a short retention (for losing the live deployment).
    Keys(backup::KeysArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Suspend accounts inactive past the configured period (and warn those close to it).
    SweepInactive(admin_cmd::SweepArgs),
    /// Snapshot every account for an access review; print it as JSON or CSV.
    AccessReview(admin_cmd::ReviewArgs),
    /// Purge closed cases older than their tenant's retention_days (with their comments and files).
    PurgeExpired(admin_cmd::SweepArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a key version to a tenant: new writes use it; older ciphertext is re-encrypted.
    Rotate(keys_cmd::RotateArgs),
    /// Rewrap every tenant key under a new root key (the data is not touched).
    RotateRoot(keys_cmd::RotateRootArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the log: offline from a data dir, or as a monitor of a running server.
    Verify(audit_cmd::VerifyArgs),
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve {
            data_dir,
            config,
            listen,
            ops_listen,
            tls_cert,
            tls_key,
            database_url,
            database_schema,
            demo,
        } => {
            let mut cfg = config::Config::load(config.as_deref(), &data_dir)?;
            if let Some(a) = listen {
                cfg.listen = a;
            }
            if let Some(a) = ops_listen {
                cfg.ops_listen = a;
            }
            if let Some(url) = database_url {
                cfg.database_url = Some(config::DatabaseUrl::new(url));
            }
            if database_schema.is_some() {
                cfg.database_schema = database_schema;
            }
            if tls_cert.is_some() {
                cfg.tls_cert = tls_cert;
            }
            if tls_key.is_some() {
                cfg.tls_key = tls_key;
            }
            if cfg.tls_cert.is_some() != cfg.tls_key.is_some() {
                anyhow::bail!(
                    "tls_cert and tls_key go together (as --tls-cert and --tls-key, \
                     STRONGROOM_TLS_CERT and _KEY, or in the file): give both, or neither for the \
                     data dir's own certificate"
                );
            }
            serve::run(serve::ServeArgs {
                data_dir,
                config: cfg,
                demo,
            })
            .await
        }
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => audit_cmd::verify(args).await,
        Command::Admin {
            command: AdminCommand::SweepInactive(args),
        } => admin_cmd::sweep_inactive(args).await,
        Command::Admin {
            command: AdminCommand::AccessReview(args),
        } => admin_cmd::access_review(args).await,
        Command::Admin {
            command: AdminCommand::PurgeExpired(args),
        } => admin_cmd::purge_expired(args).await,
        Command::Keys {
            command: KeysCommand::Rotate(args),
        } => keys_cmd::rotate(args).await,
        Command::Keys {
            command: KeysCommand::RotateRoot(args),
        } => keys_cmd::rotate_root(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Backup { command } => match command {
            BackupCommand::Create(args) => backup::create(args).await,
            BackupCommand::Verify(args) => backup::verify(args).await,
            BackupCommand::Restore(args) => backup::restore(args).await,
            BackupCommand::Keys(args) => backup::create_keys(args).await,
        },
        Command::Migrate(args) => migrate::run(args).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strongroom: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // A command interrupted while a blocking task runs (a backup's write, a verification's
    // extraction) has already removed what that task wrote; the task is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strongroom: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
