//! `strongroom serve`: bootstrap the data dir, open the vault, serve until a signal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use strongroom_core::clock::SystemClock;
use strongroom_core::{RootKeyAdoption, Vault, VaultParts};
use strongroom_crypto::{EnvKeyProvider, FileKeyProvider, KeyProvider};
use strongroom_policy::PolicyEngine;
use strongroom_server::{ListenConfig, TrustedProxies};
use strongroom_store::Store;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::datadir::{DataDir, PublishedCheckpointFile};

pub struct ServeArgs {
    pub data_dir: PathBuf,
    pub config: Config,
    pub demo: bool,
}

/// Opens the vault on a (locked) data dir: keys, policy, store, audit log.
pub async fn open_vault(dir: &DataDir, config: &Config) -> Result<Arc<Vault>> {
    let store = crate::database::open_store(dir, config).await?;
    if config.root_key_env.is_none() {
        crate::keys_cmd::recover_root_rotation(dir, store.as_ref()).await?;
    }
    let provider: Box<dyn KeyProvider> = match &config.root_key_env {
        Some(var) => Box::new(EnvKeyProvider::new(var.clone())),
        None => {
            let path = dir.path("keys/root.key");
            if !path.exists() && holds_sealed_keys(store.as_ref()).await? {
                bail!(
                    "keys/root.key is missing, but the database holds keys sealed under a root \
                     key: restore the key file (a new key would open none of them)"
                );
            }
            Box::new(FileKeyProvider::open_or_create(path).context("root key")?)
        }
    };
    let root_key = provider
        .root_key()
        .with_context(|| format!("root key from {}", provider.describe()))?;
    match strongroom_core::adopt_root_key(&root_key, store.as_ref())
        .await
        .context("checking the root key against the stored keys")?
    {
        RootKeyAdoption::Adopted => {}
        RootKeyAdoption::DoesNotOpen => bail!(
            "the root key from {} does not open the keys the database holds: wrong key",
            provider.describe()
        ),
        RootKeyAdoption::NotTheRecordedKey => bail!(
            "the root key from {} is not the one the database records (another instance's, or \
             one a rotation replaced): wrong key",
            provider.describe()
        ),
        RootKeyAdoption::ChangedMeanwhile => bail!(
            "the database's root key changed while this instance started (a rotation?): start again"
        ),
    }
    let policy =
        PolicyEngine::load(config.policy_dir.as_deref()).context("policy set does not validate")?;
    let log_signer = dir.log_signer("strongroom")?;
    let vault = Vault::open(VaultParts {
        store,
        policy,
        root_key,
        log_signer,
        settings: config.service.clone(),
        clock: Arc::new(SystemClock::default()),
        witness: Some(Arc::new(PublishedCheckpointFile::of(dir))),
    })
    .await
    .map_err(|e| anyhow::anyhow!("opening the vault: {e}"))?;
    Ok(vault)
}

/// Whether the store keeps anything sealed under a root key (tenant keys, second-factor seeds).
async fn holds_sealed_keys(store: &dyn Store) -> Result<bool> {
    Ok(!store.all_tenant_keys().await?.is_empty() || !store.all_totp().await?.is_empty())
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
    // Checked before anything is opened or created (the administrator, above all): a certificate
    // that does not load or match its key stops the start with nothing done.
    strongroom_server::check_tls(&tls_cert, &tls_key).context("the TLS certificate and key")?;
    let vault = open_vault(&dir, &args.config).await?;

    // Our copy is wiped on drop; the process environment's copy cannot be.
    let env_password = std::env::var("STRONGROOM_ADMIN_PASSWORD").ok();
    let from_env = env_password.is_some();
    let admin_password = Zeroizing::new(match env_password {
        Some(p) => p,
        None => generated_password()?,
    });
    let created = vault
        .bootstrap_admin(&admin_password)
        .await
        .map_err(|e| anyhow::anyhow!("creating the administrator: {e}"))?;
    if created && !from_env {
        eprintln!(
            "strongroom: created platform administrator `admin` with password: {}",
            admin_password.as_str()
        );
        eprintln!("strongroom: this password is shown once; store it now.");
    }
    if args.demo && created {
        crate::demo::load(&vault, &admin_password).await?;
    }

    crate::jobs::spawn_all(&vault);
    crate::webhooks::spawn(&vault);
    spawn_backup_copy_sweep(&args.data_dir);

    if !args.config.ops_listen.ip().is_loopback() {
        tracing::warn!(
            ops = %args.config.ops_listen,
            "the ops listener (plain HTTP: health and metrics) is reachable beyond this host; \
             keep it on a private network"
        );
    }
    let metrics = strongroom_server::install_metrics();
    let listen = ListenConfig {
        api: args.config.listen,
        ops: args.config.ops_listen,
        tls_cert,
        tls_key,
        max_body_bytes: args.config.max_body_bytes,
        grace: Duration::from_secs(args.config.shutdown_grace_secs),
        idle: Duration::from_secs(args.config.connection_idle_secs),
        max_connections: args.config.max_connections,
        max_connections_per_client: args.config.max_connections_per_client,
        trusted_proxies: TrustedProxies::new(args.config.trusted_proxies.clone()),
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

/// SIGTERM or Ctrl-C (SIGINT).
pub(crate) async fn shutdown_signal() {
    match Interruption::listen() {
        Ok(mut interruption) => interruption.recv().await,
        Err(_) => std::future::pending().await,
    }
}

/// SIGTERM and SIGINT, heard from the moment this is made: one that lands before would end the
/// process outright, leaving behind what it was making (a backup's copy of every wrapped key).
pub(crate) struct Interruption {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Interruption {
    pub(crate) fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {},
            _ = self.interrupt.recv() => {},
        }
    }
}

/// Every minute, removes the database copies of backups that ended without removing them (a
/// kill, a power cut): they hold every wrapped tenant key, so a tenant shredded since would stay
/// readable from the data dir while one lasts.
fn spawn_backup_copy_sweep(root: &std::path::Path) {
    let Ok(dir) = DataDir::open_unlocked(root) else {
        return;
    };
    let dir = Arc::new(dir);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticks.tick().await;
            let dir = Arc::clone(&dir);
            let _ = tokio::task::spawn_blocking(move || dir.sweep_stale_backup_copies()).await;
        }
    });
}
