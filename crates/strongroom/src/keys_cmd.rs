//! `strongroom keys …`: tenant key rotation and root-key rotation on a stopped server's data dir.
//!
//! Root-key rotation (`rotate-root`) with the file key provider:
//! 1. the new key is written to `keys/root.key.new` and the current one copied to
//!    `keys/root.key.old` (both mode 0600, synced);
//! 2. every tenant key is rewrapped and every user secret re-sealed under the new key in ONE
//!    database transaction; the data itself is not touched;
//! 3. `root.key.new` is renamed over `root.key`, then `root.key.old` is deleted.
//!
//! A crash before 2 commits leaves the database under the old key; after, under the new one. The
//! next start (or command) on the data dir sees `root.key.new`, finds out which key opens the
//! tenant keys and finishes or undoes the swap, so the key file always matches the database.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use strongroom_crypto::{FileKeyProvider, KeyProvider, RootKey, encode_key};
use strongroom_store::Store;

use crate::admin_cmd::{DataDirArgs, open};
use crate::datadir::{DataDir, sync_parent, write_secret};

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// The tenant whose keys get a new version.
    #[arg(long)]
    pub tenant: String,
    /// Also re-encrypt the tenant's data now (otherwise the server's job does it after start).
    #[arg(long)]
    pub reencrypt: bool,
}

#[derive(Debug, clap::Args)]
pub struct RotateRootArgs {
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// The new root key (base64 of 32 bytes, mode 0600); a fresh random key when absent.
    #[arg(long)]
    pub new_key_file: Option<PathBuf>,
}

pub async fn rotate(args: RotateArgs) -> Result<()> {
    let (_dir, vault) = open(&args.dir).await?;
    let mut status = vault
        .rotate_tenant_keys_unattended(&args.tenant, "cli.keys-rotate")
        .await
        .map_err(|e| anyhow::anyhow!("key rotation: {e}"))?;
    if args.reencrypt {
        vault
            .reencrypt_tenant(&args.tenant, "cli.keys-rotate")
            .await
            .map_err(|e| anyhow::anyhow!("re-encryption: {e}"))?;
        status = vault
            .tenant_key_status_unattended(&args.tenant)
            .await
            .map_err(|e| anyhow::anyhow!("key status: {e}"))?;
    }
    print_json(&status)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn root_paths(dir: &DataDir) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.path("keys/root.key"),
        dir.path("keys/root.key.new"),
        dir.path("keys/root.key.old"),
    )
}

pub async fn rotate_root(args: RotateRootArgs) -> Result<()> {
    let (dir, vault) = open(&args.dir).await?;
    let config = crate::config::Config::load(args.dir.config.as_deref(), &args.dir.data_dir)?;
    if config.root_key_env.is_some() {
        bail!(
            "the root key comes from the environment (root_key_env): rotate it there; \
             this command rotates the data dir's key file only"
        );
    }
    let (current, new, old) = root_paths(&dir);
    let new_key = match &args.new_key_file {
        Some(path) => FileKeyProvider::open(path)
            .and_then(|p| p.root_key())
            .with_context(|| format!("new root key from {}", path.display()))?,
        None => RootKey::generate().context("generating the new root key")?,
    };
    write_key_file(&new, &new_key)?;
    fs::copy(&current, &old).with_context(|| format!("keeping {}", old.display()))?;
    File::open(&old)?.sync_all()?;
    sync_parent(&current)?;
    let report = match vault
        .rotate_root_key(&new_key, "cli.keys-rotate-root")
        .await
    {
        Ok(r) => r,
        Err(e) => {
            // The commit may have landed with its answer lost (a dropped connection): the stored
            // keys, not the error, say which key file stays.
            let store = crate::database::open_store(&dir, &config).await?;
            recover_root_rotation(&dir, store.as_ref()).await?;
            bail!("root-key rotation failed: {e}");
        }
    };
    fs::rename(&new, &current).with_context(|| format!("replacing {}", current.display()))?;
    sync_parent(&current)?;
    fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    sync_parent(&current)?;
    print_json(&report)
}

fn write_key_file(path: &Path, key: &RootKey) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut text = encode_key(key.secret());
    text.push('\n');
    write_secret(path, text.as_bytes())
}

async fn opens(key: &RootKey, store: &dyn Store) -> Result<Option<bool>> {
    strongroom_core::root_key_opens_store(key, store)
        .await
        .context("reading the keys sealed under the root key")
}

async fn recorded_root_key(store: &dyn Store) -> Result<Option<String>> {
    store
        .root_key_fingerprint()
        .await
        .context("reading the root key's recorded fingerprint")
}

/// Finishes or undoes a root-key rotation that stopped half-way (see the module comment).
pub async fn recover_root_rotation(dir: &DataDir, store: &dyn Store) -> Result<()> {
    let (current, new, old) = root_paths(dir);
    if !new.exists() {
        if old.exists() {
            // Stopped after the new key took its place, before the old one was removed: the old
            // key must not outlive the rotation (which may have been made because it leaked).
            let current_key = FileKeyProvider::open(&current)
                .and_then(|p| p.root_key())
                .context("reading keys/root.key after a root-key rotation")?;
            let recorded = recorded_root_key(store).await?;
            if recorded.is_some_and(|recorded| recorded != current_key.fingerprint())
                || opens(&current_key, store).await? == Some(false)
            {
                bail!(
                    "keys/root.key does not open the keys the database holds, and \
                     keys/root.key.old is left from a root-key rotation: restore the right one"
                );
            }
            fs::remove_file(&old).context("removing keys/root.key.old")?;
            sync_parent(&current)?;
            eprintln!("strongroom: removed the old root key an interrupted rotation left behind");
        }
        return Ok(());
    }
    let new_key = FileKeyProvider::open(&new)
        .and_then(|p| p.root_key())
        .context("reading keys/root.key.new of an interrupted root-key rotation")?;
    let current_key = || {
        FileKeyProvider::open(&current)
            .and_then(|p| p.root_key())
            .context("reading keys/root.key of an interrupted root-key rotation")
    };
    let neither = || {
        anyhow::anyhow!(
            "neither keys/root.key nor keys/root.key.new is the key the database holds its keys \
             under; both are kept (and keys/root.key.old, if present): restore the right one"
        )
    };
    // The rotation's commit moves the recorded fingerprint: it says which key won, even when
    // nothing is sealed yet to try the keys on.
    let committed = match recorded_root_key(store).await? {
        Some(recorded) if recorded == new_key.fingerprint() => true,
        Some(recorded) if recorded == current_key()?.fingerprint() => false,
        Some(_) => return Err(neither()),
        None => match opens(&new_key, store).await? {
            Some(true) | None => true,
            Some(false) => {
                if opens(&current_key()?, store).await? != Some(true) {
                    return Err(neither());
                }
                false
            }
        },
    };
    if committed {
        fs::rename(&new, &current).context("completing the root-key rotation")?;
        eprintln!("strongroom: completed an interrupted root-key rotation");
    } else {
        fs::remove_file(&new).context("undoing the root-key rotation")?;
        eprintln!("strongroom: undid an interrupted root-key rotation (the old key stays)");
    }
    sync_parent(&current)?;
    let _ = fs::remove_file(&old);
    sync_parent(&current)?;
    Ok(())
}
