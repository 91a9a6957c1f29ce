//! `strongroom serve`: bootstrap the data dir, open the vault, serve until a signal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use strongroom_core::clock::SystemClock;
use strongroom_core::{Vault, VaultParts};
use strongroom_crypto::{EnvKeyProvider, FileKeyProvider, KeyProvider};
use strongroom_policy::PolicyEngine;
use strongroom_server::ListenConfig;
use strongroom_store::SqliteStore;

use crate::config::Config;
use crate::datadir::DataDir;

pub struct ServeArgs {
    pub data_dir: PathBuf,
    pub config: Config,
    pub demo: bool,
}

/// Opens the vault on a (locked) data dir: keys, policy, store, audit log.
pub async fn open_vault(dir: &DataDir, config: &Config) -> Result<Arc<Vault>> {
    if config.root_key_env.is_none() {
        crate::keys_cmd::recover_root_rotation(
            dir,
            Duration::from_millis(config.store_busy_timeout_ms),
        )
        .await?;
    }
    let provider: Box<dyn KeyProvider> = match &config.root_key_env {
        Some(var) => Box::new(EnvKeyProvider::new(var.clone())),
        None => Box::new(
            FileKeyProvider::open_or_create(dir.path("keys/root.key")).context("root key")?,
        ),
    };
    let root_key = provider
        .root_key()
        .with_context(|| format!("root key from {}", provider.describe()))?;
    let policy =
        PolicyEngine::load(config.policy_dir.as_deref()).context("policy set does not validate")?;
    let store = SqliteStore::open(
        &dir.database(),
        Duration::from_millis(config.store_busy_timeout_ms),
    )
    .await
    .context("opening the database")?;
    let log_signer = dir.log_signer("strongroom")?;
    let vault = Vault::open(VaultParts {
        store: Arc::new(store),
        policy,
        root_key,
        log_signer,
        settings: config.service.clone(),
        clock: Arc::new(SystemClock::default()),
    })
    .await
    .map_err(|e| anyhow::anyhow!("opening the vault: {e}"))?;
    Ok(vault)
}

fn generated_password() -> Result<String> {
    let bytes: [u8; 18] = strongroom_crypto::random_bytes().context("random")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let dir = DataDir::open_locked(&args.data_dir)?;
    crate::logging::init(
        args.config.log_format,
        &args.config.log_level,
        Some(&dir.path("logs/strongroom.log")),
    )?;
    let (tls_cert, tls_key) = match (&args.config.tls_cert, &args.config.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => dir.ensure_tls()?,
    };
    let vault = open_vault(&dir, &args.config).await?;

    let env_password = std::env::var("STRONGROOM_ADMIN_PASSWORD").ok();
    let admin_password = match &env_password {
        Some(p) => p.clone(),
        None => generated_password()?,
    };
    let created = vault
        .bootstrap_admin(&admin_password)
        .await
        .map_err(|e| anyhow::anyhow!("creating the administrator: {e}"))?;
    if created && env_password.is_none() {
        eprintln!(
            "strongroom: created platform administrator `admin` with password: {admin_password}"
        );
        eprintln!("strongroom: this password is shown once; store it now.");
    }
    if args.demo && created {
        crate::demo::load(&vault, &admin_password).await?;
    }

    spawn_inactivity_sweep(&vault);
    spawn_export_sweep(&vault);
    spawn_key_job(&vault);
    spawn_retention_sweep(&vault);
    crate::webhooks::spawn(&vault);

    let metrics = strongroom_server::install_metrics();
    let listen = ListenConfig {
        api: args.config.listen,
        ops: args.config.ops_listen,
        tls_cert,
        tls_key,
        max_body_bytes: args.config.max_body_bytes,
        grace: Duration::from_secs(args.config.shutdown_grace_secs),
    };
    let mut bound_result = Ok(());
    strongroom_server::serve(
        vault,
        listen,
        metrics,
        |bound| {
            bound_result = dir.write_listen_file(&bound.api.to_string(), &bound.ops.to_string());
            eprintln!(
                "strongroom: listening on https://{} (ops http://{})",
                bound.api, bound.ops
            );
        },
        shutdown_signal(),
    )
    .await
    .context("serving")?;
    bound_result.context("writing run/listen.json")?;
    dir.remove_listen_file();
    tracing::info!("stopped");
    Ok(())
}

/// Drops the ciphertext of expired exports every configured interval.
fn spawn_export_sweep(vault: &Arc<Vault>) {
    let secs = vault.settings().export_sweep_interval_secs;
    if secs == 0 {
        return;
    }
    let vault = Arc::clone(vault);
    tokio::spawn(async move {
        let period = Duration::from_secs(secs);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            match vault.sweep_expired_exports("job.export-sweep").await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "export sweep"),
                Err(err) => tracing::error!(error = %err.message, "export sweep failed"),
            }
        }
    });
}

/// Runs the inactivity sweep every configured interval (the first one interval after start).
fn spawn_inactivity_sweep(vault: &Arc<Vault>) {
    let secs = vault.settings().inactivity_sweep_interval_secs;
    if secs == 0 {
        return;
    }
    let vault = Arc::clone(vault);
    tokio::spawn(async move {
        let period = Duration::from_secs(secs);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            match vault
                .sweep_inactive_unattended(None, false, "job.inactivity-sweep")
                .await
            {
                Ok(report) => tracing::info!(
                    suspended = report.suspended.len(),
                    warned = report.warned.len(),
                    "inactivity sweep"
                ),
                Err(err) => tracing::error!(error = %err.message, "inactivity sweep failed"),
            }
        }
    });
}

/// Re-encrypts ciphertext under older key versions: at start (which resumes a run cut short by a
/// crash: progress is in the data), right after each rotation, and every configured interval.
fn spawn_key_job(vault: &Arc<Vault>) {
    let secs = vault.settings().key_job_interval_secs;
    if secs == 0 {
        return;
    }
    let vault = Arc::clone(vault);
    tokio::spawn(async move {
        loop {
            match vault.reencrypt_all("job.reencrypt").await {
                Ok(report)
                    if report.rows_reencrypted > 0 || !report.versions_retired.is_empty() =>
                {
                    tracing::info!(
                        rows = report.rows_reencrypted,
                        retired = report.versions_retired.len(),
                        "re-encryption"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err.message, "re-encryption failed"),
            }
            vault
                .reencryption_requested(Duration::from_secs(secs))
                .await;
        }
    });
}

/// Purges closed cases past their tenant's retention every configured interval.
fn spawn_retention_sweep(vault: &Arc<Vault>) {
    let secs = vault.settings().retention_sweep_interval_secs;
    if secs == 0 {
        return;
    }
    let vault = Arc::clone(vault);
    tokio::spawn(async move {
        let period = Duration::from_secs(secs);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            match vault
                .purge_expired_unattended(None, false, "job.retention-purge")
                .await
            {
                Ok(report) => tracing::info!(purged = report.purged.len(), "retention purge"),
                Err(err) => tracing::error!(error = %err.message, "retention purge failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
