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
mod restore;

pub use keys::KeysArgs;
pub use restore::restore;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use strongroom_core::audit::verify_store;
use strongroom_crypto::{BackupKey, EnvKeyProvider, FileKeyProvider, KeyProvider, RootKey};
use strongroom_ledger::NoteVerifier;
use strongroom_store::{SqliteStore, Store, table_counts};

use crate::config::Config;
use crate::datadir::DataDir;
use format::{ChunkReader, ChunkWriter, read_header};
use progress::{Counted, Progress};
use zeroize::Zeroizing;

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
    /// Configuration file (TOML) of the deployment; defaults to DATA_DIR/strongroom.toml when
    /// present. Its `audit_origin` and `root_key_env` matter here.
    #[arg(long, requires = "data_dir")]
    pub config: Option<PathBuf>,
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
    /// Configuration file (TOML) of the deployment, for the live data dir (`--keys-from`) and
    /// the restored one alike (its `audit_origin` goes on signing the restored log); defaults to
    /// each dir's strongroom.toml when present.
    #[arg(long)]
    pub config: Option<PathBuf>,
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

/// What a backup reads besides the live database.
struct Sources {
    /// The snapshot taken of the live database, without the tenant keys.
    snapshot: PathBuf,
    signing_key: PathBuf,
    config: PathBuf,
}

/// Writes the encrypted backup of the snapshot (holding `tables`) to `partial`, then renames it
/// to `out`; returns its manifest.
async fn write_backup(
    tables: BTreeMap<String, i64>,
    sources: Sources,
    (partial, out_path): (&Path, &Path),
    root: &RootKey,
    verifier: NoteVerifier,
) -> Result<Manifest> {
    let store = SqliteStore::open_read_only(&sources.snapshot, BUSY).await?;
    let latest = store.latest_checkpoint().await?.map(|c| c.note);
    store.close().await;

    let database_bytes = fs::metadata(&sources.snapshot)?.len();
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
    let key = BackupKey::derive(root, &id).context("backup key")?;
    let out = BufWriter::new(create_private(partial)?);
    // Ours from here on (another run's file of that name made `create_private` fail above):
    // removed however this ends, unless renamed into place first.
    let _partial = Cleanup(vec![partial.to_path_buf()]);
    // Blocking file work, off this task so that an interruption is heard while it runs.
    let write = move || -> Result<()> {
        let mut w = ChunkWriter::new(out, key, &id)?;
        w.section(
            MANIFEST,
            manifest_bytes.len() as u64,
            &mut manifest_bytes.as_slice(),
        )?;
        let mut progress = Progress::new("backup", database_bytes);
        let mut db = Counted {
            inner: BufReader::new(File::open(&sources.snapshot)?),
            progress: &mut progress,
        };
        w.section(DB, database_bytes, &mut db)?;
        progress.finish();
        let signing =
            Zeroizing::new(fs::read(&sources.signing_key).context("reading the log signing key")?);
        w.section(SIGNING_KEY, signing.len() as u64, &mut signing.as_slice())?;
        // The configuration may hold a database URL with its password.
        if let Ok(cfg) = fs::read(&sources.config).map(Zeroizing::new) {
            w.section(CONFIG, cfg.len() as u64, &mut cfg.as_slice())?;
        }
        let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    };
    tokio::task::spawn_blocking(write)
        .await
        .context("writing the backup")?
        .context("writing the backup")?;
    put_in_place(partial, out_path)?;
    Ok(manifest)
}

/// Gives the finished `staged` file its name `out`, refusing a file put there meanwhile (a link,
/// unlike a rename, never replaces one), and makes the name durable.
fn put_in_place(staged: &Path, out: &Path) -> Result<()> {
    let linked = fs::hard_link(staged, out);
    let _ = fs::remove_file(staged);
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists; refusing to overwrite it", out.display())
        }
        linked => linked.with_context(|| format!("naming {}", out.display()))?,
    }
    crate::datadir::sync_parent(out)
}

/// Where a backup is written before it is renamed to `out`: beside it, under a name no `--out`
/// can collide with (`NAME.partial` given as the output would otherwise be renamed onto itself,
/// then removed as an unfinished copy).
fn staged_beside(out: &Path) -> Result<PathBuf> {
    let mut staged = out.as_os_str().to_owned();
    staged.push(format!(".{}.partial", random_name("staged")?));
    Ok(PathBuf::from(staged))
}

/// Refuses a root key the database's keys are not sealed under: a backup encrypted with it would
/// be found useless only at the restore that needs it. A root-key rotation left half-done
/// (`keys/root.key.new`) is finished or undone first, by the server's next start.
pub(crate) async fn refuse_foreign_root(
    root: &RootKey,
    data_dir: &Path,
    store: &dyn Store,
) -> Result<()> {
    if data_dir.join("keys/root.key.new").exists() {
        bail!(
            "{}: a root-key rotation was left half-done (keys/root.key.new); start the server \
             once, which finishes or undoes it, then take the backup",
            data_dir.display()
        );
    }
    let recorded = store
        .root_key_fingerprint()
        .await
        .context("reading the root key's recorded fingerprint")?;
    if recorded.is_some_and(|recorded| recorded != root.fingerprint()) {
        bail!(
            "the root key given is not the one the database's keys are sealed under: a backup \
             under it could never be restored"
        );
    }
    Ok(())
}

fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Creates `path` empty (mode 0600) and locks it for as long as the returned file is held.
fn hold_copy(path: &Path) -> Result<File> {
    let file = create_private(path)?;
    file.try_lock()
        .map_err(|e| anyhow::anyhow!("locking {}: {e}", path.display()))?;
    Ok(file)
}

/// Removes the listed files when dropped (temporary copies of the database), with the journal
/// SQLite keeps beside a copy being written (its `-journal`, or `-wal` and `-shm`).
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
            for suffix in ["-journal", "-wal", "-shm"] {
                let mut beside = p.clone().into_os_string();
                beside.push(suffix);
                let _ = fs::remove_file(beside);
            }
        }
    }
}

/// Refuses the data dir's SQLite file once `migrate` moved the data to PostgreSQL and no database
/// URL says where it went: that file is no longer the live store, and its keys include tenants
/// shredded since the move.
pub(crate) fn refuse_moved_store(data_dir: &Path, config: &Config) -> Result<()> {
    if config.database_url.is_none() && data_dir.join(crate::datadir::MOVED_TO_POSTGRES).exists() {
        bail!(
            "{}: this deployment's data moved to PostgreSQL, so the SQLite file here is not the \
             live store; set STRONGROOM_DATABASE_URL (and STRONGROOM_DATABASE_SCHEMA) or \
             database_url in the configuration",
            data_dir.display()
        );
    }
    Ok(())
}

pub async fn create(args: CreateArgs) -> Result<()> {
    // Before any copy exists, so that a signal never finds one without being heard.
    let mut interruption =
        crate::serve::Interruption::listen().context("listening for interruptions")?;
    let config = Config::load(args.config.as_deref(), &args.data_dir)?;
    refuse_moved_store(&args.data_dir, &config)?;
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
    {
        let live = SqliteStore::open_read_only(&live_db, BUSY)
            .await
            .context("opening the database")?;
        let refused = refuse_foreign_root(&root, &args.data_dir, &live).await;
        live.close().await;
        refused?;
    }
    let dir = DataDir::open_unlocked(&args.data_dir)?;
    let verifier =
        crate::audit_cmd::verifier_from_data_dir(&args.data_dir, &config.service.audit_origin)?;

    // Temporary copies inside the data dir: same file system, same protection as the original.
    // The scratch copy holds the wrapped tenant keys until they are deleted from it, so every
    // copy goes however the backup ends: an error, a panic, or an interruption.
    dir.sweep_stale_backup_copies();
    let scratch = dir.path(&format!("run/{}.db", random_name("backup-scratch")?));
    let snapshot = dir.path(&format!("run/{}.db", random_name("backup")?));
    let partial = staged_beside(&args.out)?;
    let _cleanup = Cleanup(vec![scratch.clone(), snapshot.clone()]);
    // Each copy is made empty and locked before SQLite fills it (VACUUM INTO takes an empty
    // file), and stays locked while this backup lives: a sweep removes only copies nobody holds,
    // whatever their age, so one an interrupted backup left goes at the server's next sweep.
    let _held = [hold_copy(&scratch)?, hold_copy(&snapshot)?];
    let tables = {
        let snapshotting = SqliteStore::snapshot_without_tenant_keys(&live_db, &scratch, &snapshot);
        tokio::pin!(snapshotting);
        tokio::select! {
            tables = &mut snapshotting => tables.context("snapshotting the database")?,
            () = interruption.recv() => {
                // SQLite's statements run on in their own thread whatever is dropped here: wait
                // for them, so that every copy they make exists when the copies are removed.
                let _ = snapshotting.await;
                bail!("backup failed; its temporary copies were removed: interrupted");
            }
        }
    };
    let sources = Sources {
        snapshot,
        signing_key: dir.path(SIGNING_KEY),
        config: dir.path(CONFIG),
    };
    let _ = fs::remove_file(&scratch);
    let written = tokio::select! {
        written = write_backup(tables, sources, (&partial, &args.out), &root, verifier) => written,
        () = interruption.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    let manifest = written.context("backup failed; its temporary copies were removed")?;
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
    // Before the plaintext is extracted, so that a signal never finds it without being heard.
    let mut interruption =
        crate::serve::Interruption::listen().context("listening for interruptions")?;
    let config = match &args.data_dir {
        Some(d) => Some(Config::load(args.config.as_deref(), d)?),
        None => None,
    };
    let root = root_key(&args.key, args.data_dir.as_deref(), config.as_ref())?;
    // Beside the live data when a data dir is named (the same protection; if a kill leaves it,
    // the serving instance sweeps it like a backup's copies), else in the temporary directory.
    let base = match &args.data_dir {
        Some(dir) => dir.join("run"),
        None => std::env::temp_dir(),
    };
    let scratch = Scratch(base.join(random_name(VERIFY_DIR_PREFIX)?));
    private_dir(&scratch.0.join("keys"))?;
    let _held = hold_copy(&scratch.0.join(VERIFY_DIR_LOCK))?;
    let (file, into) = (args.file.clone(), scratch.0.clone());
    // The extraction runs off this task, so that an interruption is heard while it runs.
    let outcome = tokio::select! {
        outcome = async {
            let manifest = tokio::task::spawn_blocking(move || extract(&file, &root, &into))
                .await
                .context("extracting the backup")??;
            check(&scratch.0, &manifest, args.verifier_key.as_deref()).await
        } => outcome,
        () = interruption.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    drop(scratch);
    let summary = outcome.context("backup verification failed")?;
    println!("OK: {}: {summary}", args.file.display());
    Ok(())
}

/// A verification's private directory (`DATA_DIR/run/backup-verify-…`), and the file it holds
/// locked inside while it runs.
pub(crate) const VERIFY_DIR_PREFIX: &str = "backup-verify";
pub(crate) const VERIFY_DIR_LOCK: &str = "held";

/// The plaintext a verification extracts (usernames, password hashes, the log-signing key):
/// removed however the verification ends, by an error, a panic or an interruption.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub async fn create_keys(args: KeysArgs) -> Result<()> {
    keys::create(args).await
}
