//! `strongroom backup create | verify | restore`.
//!
//! A backup is one file: a consistent online snapshot of the database (audit log included) WITHOUT
//! the wrapped tenant keys, the log signing key, and the configuration file, encrypted with a key
//! derived from the root key (see `format.rs`). Tenant keys live only in the live deployment: a
//! restore takes them from a live data dir (`--keys-from`), so a tenant shredded there after the
//! backup was taken comes back without keys, and the restore removes its rows. See README
//! "Backups and restore" for the guarantee.

mod format;
mod keys;
mod progress;

pub use keys::KeysArgs;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use strongroom_core::audit::{AuditLog, AuditRecord, ResourceRef, verify_store};
use strongroom_core::clock::SystemClock;
use strongroom_crypto::{BackupKey, EnvKeyProvider, FileKeyProvider, KeyProvider, RootKey};
use strongroom_ledger::NoteVerifier;
use strongroom_store::{
    Mutation, SqliteStore, Store, TenantKeyRow, TenantScope, TenantShredRow, table_counts,
};

use crate::config::Config;
use crate::datadir::DataDir;
use format::{ChunkReader, ChunkWriter, read_header};
use progress::{Counted, Progress};

const DB: &str = "strongroom.db";
const SIGNING_KEY: &str = "keys/log-signing.key";
const CONFIG: &str = "strongroom.toml";
const MANIFEST: &str = "manifest.json";
const BUSY: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct RootKeyArgs {
    /// Root key file (default: DATA_DIR/keys/root.key, unless the configuration names an
    /// environment variable).
    #[arg(long)]
    pub root_key_file: Option<PathBuf>,
    /// Environment variable holding the root key (base64).
    #[arg(long, conflicts_with = "root_key_file")]
    pub root_key_env: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The live data dir (its server may be running).
    #[arg(long, env = "STRONGROOM_DATA_DIR")]
    pub data_dir: PathBuf,
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The backup file to write (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub key: RootKeyArgs,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    pub file: PathBuf,
    /// A data dir of the deployment, to find the root key (and configuration).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The log's verifier key, trusted out of band (default: the one recorded in the backup,
    /// checked against the signing key inside it).
    #[arg(long)]
    pub verifier_key: Option<String>,
    #[command(flatten)]
    pub key: RootKeyArgs,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    pub file: PathBuf,
    /// The new data dir (must not exist, or be empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Where the tenant keys come from: the live data dir (normally), or an unexpired key backup
    /// file (`backup keys`) when the live deployment is lost. Tenants without keys there
    /// (shredded since the backup) are removed from the restored data.
    #[arg(long)]
    pub keys_from: PathBuf,
    #[arg(long)]
    pub verifier_key: Option<String>,
    /// Restore even where records are sealed under key versions the key source no longer holds
    /// (retired since the backup was taken): those records stay unreadable.
    #[arg(long)]
    pub accept_unreadable: bool,
    #[command(flatten)]
    pub key: RootKeyArgs,
}

/// What a backup holds, written first inside the encrypted payload.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: String,
    verifier_key: String,
    database_bytes: u64,
    /// Row counts per table of the database in the backup.
    tables: BTreeMap<String, i64>,
    /// The latest signed checkpoint in the backup's log.
    latest_checkpoint: Option<String>,
    /// Always "excluded": tenant keys stay in the live deployment.
    tenant_keys: String,
}

/// The root key: an explicit file or variable, else the deployment's configuration.
fn root_key(
    args: &RootKeyArgs,
    data_dir: Option<&Path>,
    config: Option<&Config>,
) -> Result<RootKey> {
    let provider: Box<dyn KeyProvider> = match (&args.root_key_file, &args.root_key_env) {
        (Some(file), _) => Box::new(FileKeyProvider::open(file).context("root key file")?),
        (None, Some(var)) => Box::new(EnvKeyProvider::new(var.clone())),
        (None, None) => match (config.and_then(|c| c.root_key_env.clone()), data_dir) {
            (Some(var), _) => Box::new(EnvKeyProvider::new(var)),
            (None, Some(dir)) => {
                Box::new(FileKeyProvider::open(dir.join("keys/root.key")).context("root key file")?)
            }
            (None, None) => bail!("give --root-key-file, --root-key-env or --data-dir"),
        },
    };
    provider
        .root_key()
        .with_context(|| format!("root key from {}", provider.describe()))
}

fn random_name(prefix: &str) -> Result<String> {
    let bytes: [u8; 8] = strongroom_crypto::random_bytes().context("random")?;
    Ok(format!("{prefix}-{}", hex_lower(&bytes)))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Removes the listed files when dropped (temporary copies of the database).
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

pub async fn create(args: CreateArgs) -> Result<()> {
    let config = Config::load(args.config.as_deref(), &args.data_dir)?;
    if config.database_url.is_some() {
        bail!(
            "this deployment keeps its data in PostgreSQL: back it up with PostgreSQL's own tools \
             (pg_dump, or base backups with WAL archiving), and keep `backup keys` for the keys; \
             see docs/postgresql.md"
        );
    }
    let live_db = args.data_dir.join(DB);
    if !live_db.is_file() {
        bail!("{} holds no strongroom database", args.data_dir.display());
    }
    if args.out.exists() {
        bail!("{} exists; refusing to overwrite it", args.out.display());
    }
    let root = root_key(&args.key, Some(&args.data_dir), Some(&config))?;
    let dir = DataDir::open_unlocked(&args.data_dir)?;
    let verifier =
        crate::audit_cmd::verifier_from_data_dir(&args.data_dir, &config.service.audit_origin)?;

    // Temporary copies inside the data dir: same file system, same protection as the original.
    dir.sweep_stale_backup_copies();
    let scratch = dir.path(&format!("run/{}.db", random_name("backup-scratch")?));
    let snapshot = dir.path(&format!("run/{}.db", random_name("backup")?));
    let _cleanup = Cleanup(vec![scratch.clone(), snapshot.clone()]);
    let tables = SqliteStore::snapshot_without_tenant_keys(&live_db, &scratch, &snapshot)
        .await
        .context("snapshotting the database")?;
    let _ = fs::remove_file(&scratch);
    let store = SqliteStore::open_read_only(&snapshot, BUSY).await?;
    let latest = store.latest_checkpoint().await?.map(|c| c.note);
    store.close().await;

    let database_bytes = fs::metadata(&snapshot)?.len();
    let manifest = Manifest {
        format: 1,
        created_at: strongroom_core::clock::rfc3339(now_ms()),
        verifier_key: verifier.to_vkey(),
        database_bytes,
        tables,
        latest_checkpoint: latest,
        tenant_keys: "excluded".into(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;

    let id: [u8; 32] = strongroom_crypto::random_bytes().context("random")?;
    let key = BackupKey::derive(&root, &id).context("backup key")?;
    let partial = args.out.with_extension("partial");
    let out = BufWriter::new(create_private(&partial)?);
    let write = || -> Result<()> {
        let mut w = ChunkWriter::new(out, key, &id)?;
        w.section(
            MANIFEST,
            manifest_bytes.len() as u64,
            &mut manifest_bytes.as_slice(),
        )?;
        let mut progress = Progress::new("backup", database_bytes);
        let mut db = Counted {
            inner: BufReader::new(File::open(&snapshot)?),
            progress: &mut progress,
        };
        w.section(DB, database_bytes, &mut db)?;
        progress.finish();
        let signing = fs::read(dir.path(SIGNING_KEY)).context("reading the log signing key")?;
        w.section(SIGNING_KEY, signing.len() as u64, &mut signing.as_slice())?;
        if let Ok(cfg) = fs::read(dir.path(CONFIG)) {
            w.section(CONFIG, cfg.len() as u64, &mut cfg.as_slice())?;
        }
        let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&partial);
        return Err(e.context("writing the backup"));
    }
    fs::rename(&partial, &args.out)?;
    println!(
        "backup written to {} ({} tables, {} audit entries, tenant keys excluded)",
        args.out.display(),
        manifest.tables.len(),
        manifest.tables.get("audit_entries").copied().unwrap_or(0)
    );
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Decrypts `file` into `into` (laid out as a data dir); returns the manifest.
fn extract(file: &Path, root: &RootKey, into: &Path) -> Result<Manifest> {
    let mut input =
        BufReader::new(File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let id = read_header(&mut input)?;
    let key = BackupKey::derive(root, &id).context("backup key")?;
    let total = fs::metadata(file)?.len();
    let mut progress = Progress::new("decrypt", total);
    progress.advance((format::MAGIC.len() + id.len()) as u64);
    let mut manifest: Option<Manifest> = None;
    let reader = ChunkReader::new(
        Counted {
            inner: input,
            progress: &mut progress,
        },
        key,
        &id,
    );
    reader
        .sections(|name, len, body| {
            if name == MANIFEST {
                let mut bytes = Vec::new();
                body.read_to_end(&mut bytes)?;
                manifest = Some(serde_json::from_slice(&bytes).map_err(std::io::Error::other)?);
                return Ok(());
            }
            let rel = match name {
                DB | SIGNING_KEY | CONFIG => name,
                _ => return Err(std::io::Error::other("backup holds an unknown section")),
            };
            let mut out = create_private(&into.join(rel)).map_err(std::io::Error::other)?;
            let copied = std::io::copy(body, &mut out)?;
            if copied != len {
                return Err(std::io::Error::other("section shorter than announced"));
            }
            out.sync_all()
        })
        .context("reading the backup")?;
    progress.finish();
    manifest.context("the backup has no manifest")
}

/// The checks of `verify` on an extracted backup: the log verifies against a signed checkpoint,
/// the signing key matches, the row counts match the manifest, no tenant key is inside.
async fn check(dir: &Path, manifest: &Manifest, trusted: Option<&str>) -> Result<String> {
    let vkey = trusted.unwrap_or(&manifest.verifier_key);
    let verifier = NoteVerifier::parse(vkey.trim()).context("parsing the verifier key")?;
    let inside = crate::audit_cmd::verifier_from_data_dir(dir, verifier.name())?;
    if inside.public_key() != verifier.public_key() {
        bail!("the log signing key in the backup does not match the verifier key");
    }
    let db = dir.join(DB);
    let store = SqliteStore::open_read_only(&db, BUSY).await?;
    let outcome = verify_store(&store, &verifier).await;
    store.close().await;
    let report =
        outcome.map_err(|e| anyhow::anyhow!("the backup's audit log does not verify: {e:?}"))?;
    let latest = report
        .latest
        .as_ref()
        .context("the backup's log has no signed checkpoint")?;
    let recorded = manifest
        .latest_checkpoint
        .as_deref()
        .context("the manifest names no checkpoint")?;
    let recorded = verifier
        .verify_checkpoint(recorded)
        .context("the manifest's checkpoint does not verify")?;
    if recorded.size != latest.size || recorded.root != latest.root {
        bail!("the manifest's checkpoint is not the log's latest");
    }
    let counts = table_counts(&db).await?;
    if counts != manifest.tables {
        bail!("row counts differ from the manifest");
    }
    if counts.get("tenant_keys").copied().unwrap_or(0) != 0 {
        bail!("the backup holds tenant keys; it must not");
    }
    Ok(format!(
        "{} audit entries verified against the signed checkpoint of size {} (root {}); \
         recomputed root {}; {} tables with the recorded row counts",
        report.entries,
        latest.size,
        STANDARD.encode(latest.root),
        STANDARD.encode(report.root),
        counts.len()
    ))
}

fn private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

pub async fn verify(args: VerifyArgs) -> Result<()> {
    let config = match &args.data_dir {
        Some(d) => Some(Config::load(None, d)?),
        None => None,
    };
    let root = root_key(&args.key, args.data_dir.as_deref(), config.as_ref())?;
    let tmp = std::env::temp_dir().join(random_name("strongroom-verify")?);
    private_dir(&tmp.join("keys"))?;
    let outcome = async {
        let manifest = extract(&args.file, &root, &tmp)?;
        check(&tmp, &manifest, args.verifier_key.as_deref()).await
    }
    .await;
    let _ = fs::remove_dir_all(&tmp);
    let summary = outcome.context("backup verification failed")?;
    println!("OK: {}: {summary}", args.file.display());
    Ok(())
}

pub async fn restore(args: RestoreArgs) -> Result<()> {
    if args.data_dir.exists()
        && fs::read_dir(&args.data_dir)
            .with_context(|| format!("reading {}", args.data_dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty; restore only into a new data dir",
            args.data_dir.display()
        );
    }
    let from_file = keys::is_key_file(&args.keys_from);
    let live_config = if from_file {
        Config::default()
    } else {
        Config::load(None, &args.keys_from)?
    };
    if live_config.database_url.is_some()
        || (!from_file
            && args
                .keys_from
                .join(crate::datadir::MOVED_TO_POSTGRES)
                .exists())
    {
        bail!(
            "--keys-from {}: that deployment keeps its data in PostgreSQL, so the database in its \
             data dir is not the live one (its keys may include tenants shredded since); give a \
             key backup file (`strongroom backup keys`) instead",
            args.keys_from.display()
        );
    }
    let live_dir = (!from_file).then_some(args.keys_from.as_path());
    let root = root_key(&args.key, live_dir, Some(&live_config))?;
    let (live_keys, live_shreds) = if from_file {
        (keys::read(&args.keys_from, &root)?, Vec::new())
    } else {
        let live_db = args.keys_from.join(DB);
        if !live_db.is_file() {
            bail!(
                "--keys-from {} holds no strongroom database",
                args.keys_from.display()
            );
        }
        SqliteStore::keys_and_shreds(&live_db)
            .await
            .context("reading the live deployment's tenant keys")?
    };
    let dir = DataDir::open_locked(&args.data_dir)?;
    let key_in_env = args.key.root_key_env.is_some() || live_config.root_key_env.is_some();
    let outcome = restore_into(&args, &root, &dir, (&live_keys, &live_shreds), key_in_env).await;
    if outcome.is_err() {
        // Leave no half-restored data dir behind.
        for entry in fs::read_dir(&args.data_dir)?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                let _ = fs::remove_dir_all(&p);
            } else {
                let _ = fs::remove_file(&p);
            }
        }
    }
    outcome
}

fn live_dir_of(args: &RestoreArgs) -> Option<&Path> {
    (!keys::is_key_file(&args.keys_from)).then_some(args.keys_from.as_path())
}

async fn restore_into(
    args: &RestoreArgs,
    root: &RootKey,
    dir: &DataDir,
    (live_keys, live_shreds): (&[TenantKeyRow], &[TenantShredRow]),
    key_in_env: bool,
) -> Result<()> {
    let manifest = extract(&args.file, root, &args.data_dir)?;
    let summary = check(&args.data_dir, &manifest, args.verifier_key.as_deref()).await?;
    println!("backup verified: {summary}");

    let tenants = SqliteStore::tenant_ids(&dir.database()).await?;
    let store = Arc::new(SqliteStore::open(&dir.database(), BUSY).await?);
    let (mut restored, mut shredded, mut unreadable) = (0usize, Vec::new(), Vec::new());
    for tenant in &tenants {
        // Shredded in the live deployment since the backup (a tombstone wins over any key
        // found), or never keyed there: its rows go.
        let tombstone = live_shreds.iter().find(|s| &s.tenant_id == tenant);
        let keys: Vec<_> = live_keys
            .iter()
            .filter(|k| &k.tenant_id == tenant)
            .cloned()
            .collect();
        if tombstone.is_none() && !keys.is_empty() {
            unreadable.extend(versions_missing(&store, tenant, &keys).await?);
            store.import_tenant_keys(&keys).await?;
            restored += 1;
            continue;
        }
        shredded.push((tenant.clone(), tombstone.map(|s| s.request_ref.clone())));
    }
    if !unreadable.is_empty() && !args.accept_unreadable {
        store.close().await;
        // The caller's error path empties the new data dir.
        let lines: Vec<String> = unreadable.iter().map(ToString::to_string).collect();
        let remedy = if unreadable.iter().any(|u| u.newer_than_source) {
            "the key source is older than the backup: take the keys from the live deployment, or \
             from a key backup made after this data backup"
        } else {
            "those versions were retired since the backup was taken: restore with a key backup \
             made before the retirement (`--keys-from KEYFILE`)"
        };
        bail!(
            "the key source lacks key versions that records in the backup are sealed with, so \
             they would be unreadable: {}. {remedy}; or pass --accept-unreadable to restore \
             anyway (reads and lists that meet those records then fail)",
            lines.join("; ")
        );
    }
    settle_restored(
        dir,
        &args.data_dir,
        Arc::clone(&store),
        &shredded,
        &unreadable,
    )
    .await?;
    let _ = store.purge_journal().await;
    store.close().await;

    if !key_in_env {
        let from = match (&args.key.root_key_file, live_dir_of(args)) {
            (Some(f), _) => f.clone(),
            (None, Some(d)) => d.join("keys/root.key"),
            (None, None) => bail!("give --root-key-file (or --root-key-env) with a key backup"),
        };
        let bytes = zeroize::Zeroizing::new(fs::read(&from).context("reading the root key file")?);
        let mut f = create_private(&dir.path("keys/root.key"))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    println!(
        "restored into {}: {} tenants with their live keys, {} tenants shredded since the backup removed",
        args.data_dir.display(),
        restored,
        shredded.len()
    );
    for (t, _) in shredded {
        println!("removed (no live key): tenant {t}");
    }
    for line in unreadable {
        println!("unreadable (no key for it in the key source): {line}");
    }
    println!(
        "every session and API key in the backup was revoked: users log in again, and API keys \
         are issued anew"
    );
    Ok(())
}

/// Ciphertexts of the restored data sealed under a key version the key source lacks.
struct Unreadable {
    tenant: String,
    version: i64,
    ciphertexts: i64,
    /// Newer than every version the key source holds for the tenant: the key source is older
    /// than the backup (not a retirement since).
    newer_than_source: bool,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tenant {}: key version {} ({} ciphertexts)",
            self.tenant, self.version, self.ciphertexts
        )
    }
}

/// The key versions that `tenant`'s restored ciphertexts name and `keys` lacks: retired after the
/// backup was taken, or created after the key source was.
async fn versions_missing(
    store: &SqliteStore,
    tenant: &str,
    keys: &[TenantKeyRow],
) -> Result<Vec<Unreadable>> {
    let usage = store
        .key_usage(&TenantScope::new(tenant))
        .await
        .with_context(|| format!("reading the key versions of tenant {tenant} in the backup"))?;
    let newest = keys.iter().map(|k| k.version).max().unwrap_or(0);
    Ok(usage
        .iter()
        .filter(|u| u.ciphertexts > 0 && !keys.iter().any(|k| k.version == u.version))
        .map(|u| Unreadable {
            tenant: tenant.to_owned(),
            version: u.version,
            ciphertexts: u.ciphertexts,
            newer_than_source: u.version > newest,
        })
        .collect())
}

/// Brings the restored data up to what the live deployment has decided since the backup, each
/// change in a commit with an entry in the restored log saying so, then waits for a signed
/// checkpoint covering them, so the restored log explains it:
/// - removes the tenants shredded since (or without keys in the live deployment):
///   `tenant.restore_removed`, with the deletion's request reference when there is one;
/// - revokes every session and API key (`auth.restore_revoke_credentials`): one revoked after
///   the backup, because it leaked, would otherwise work again;
/// - records each key version restored without its key (`tenant.restore_unreadable`, accepted
///   with `--accept-unreadable`), so the log says why those records cannot be opened.
async fn settle_restored(
    dir: &DataDir,
    data_dir: &Path,
    store: Arc<SqliteStore>,
    shredded: &[(String, Option<String>)],
    unreadable: &[Unreadable],
) -> Result<()> {
    let config = Config::load(None, data_dir)?;
    let signer = dir.log_signer("strongroom")?;
    let audit = AuditLog::open_configured(
        store,
        &signer,
        &config.service,
        Arc::new(SystemClock::default()),
        "restore".to_owned(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the restored audit log: {e}"))?;
    let request_id = format!("restore-{}", now_ms());
    let mut last = 0;
    for (tenant, reference) in shredded {
        let mut record = AuditRecord::new("tenant.restore_removed", &request_id);
        record.tenant_id = Some(tenant.clone());
        record.resource = Some(ResourceRef {
            kind: "tenant",
            id: Some(tenant.clone()),
        });
        record.justification = reference.as_ref().map(|r| format!("request_reference:{r}"));
        record.reason = Some(if reference.is_some() {
            "shredded_since_backup"
        } else {
            "no_live_key"
        });
        let removal = Mutation::ShredTenant {
            scope: TenantScope::new(tenant.clone()),
            request_ref: reference
                .clone()
                .unwrap_or_else(|| "restore:no-live-key".to_owned()),
            at: now_ms(),
        };
        last = audit
            .commit(vec![record], vec![removal])
            .await
            .map_err(|e| {
                anyhow::anyhow!("removing a shredded tenant from the restored data: {e}")
            })?;
    }
    for missing in unreadable {
        let mut record = AuditRecord::new("tenant.restore_unreadable", &request_id);
        record.tenant_id = Some(missing.tenant.clone());
        record.resource = Some(ResourceRef {
            kind: "tenant_key",
            id: Some(missing.version.to_string()),
        });
        record.reason = Some("key_version_missing");
        let loss = Mutation::RecordKeyLoss {
            scope: TenantScope::new(missing.tenant.clone()),
            version: missing.version,
            at: now_ms(),
        };
        last = audit
            .commit(vec![record], vec![loss])
            .await
            .map_err(|e| anyhow::anyhow!("recording an unreadable key version: {e}"))?
            .max(last);
    }
    let mut record = AuditRecord::new("auth.restore_revoke_credentials", &request_id);
    record.reason = Some("restored_from_backup");
    last = audit
        .commit(
            vec![record],
            vec![Mutation::RevokeAllCredentials { at: now_ms() }],
        )
        .await
        .map_err(|e| anyhow::anyhow!("revoking the restored credentials: {e}"))?
        .max(last);
    audit
        .checkpoint_covering(last, Duration::from_secs(10))
        .await
        .map_err(|e| anyhow::anyhow!("signing the restored log's checkpoint: {e}"))?;
    Ok(())
}

pub async fn create_keys(args: KeysArgs) -> Result<()> {
    keys::create(args).await
}
