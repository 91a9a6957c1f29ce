//! `strongroom backup keys`: the tenant keys, backed up apart from the data and with a short
//! retention, for a restore when the live deployment itself is lost.
//!
//! The file (same encrypted container as a data backup, one `tenant-keys.json` section) carries
//! its expiry inside the authenticated payload; `backup restore` refuses it once expired. A tenant
//! shredded after a key backup was taken is recoverable from that key backup and a data backup
//! until the key backup expires: the retention is the guarantee's window (README).

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use strongroom_crypto::{BackupKey, RootKey};
use strongroom_store::{PgStore, SqliteStore, Store, TenantKeyRow};

use super::format::{ChunkReader, ChunkWriter, read_header};
use super::{DB, RootKeyArgs, create_private, now_ms, root_key};
use crate::config::Config;

const SECTION: &str = "tenant-keys.json";
const DAY_MS: i64 = 86_400_000;
/// Longest retention a key backup may carry: the guarantee's worst-case window.
pub const MAX_RETENTION_DAYS: u32 = 30;

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[arg(long, env = "STRONGROOM_DATA_DIR")]
    pub data_dir: PathBuf,
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
    /// Days after which restores refuse this file (1 to 30).
    #[arg(long, default_value_t = 7)]
    pub retention_days: u32,
    #[command(flatten)]
    pub key: RootKeyArgs,
}

#[derive(Serialize, Deserialize)]
struct KeyBackup {
    format: u32,
    created_at_ms: i64,
    expires_at_ms: i64,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    tenant_id: String,
    version: i64,
    /// Base64 of the wrapped keys (still wrapped under the root key).
    wrapped: String,
    created_at: i64,
}

pub async fn create(args: KeysArgs) -> Result<()> {
    if !(1..=MAX_RETENTION_DAYS).contains(&args.retention_days) {
        bail!("--retention-days must be between 1 and {MAX_RETENTION_DAYS}");
    }
    if args.out.exists() {
        bail!("{} exists; refusing to overwrite it", args.out.display());
    }
    let config = Config::load(args.config.as_deref(), &args.data_dir)?;
    super::refuse_moved_store(&args.data_dir, &config)?;
    let root = root_key(&args.key, Some(&args.data_dir), Some(&config))?;
    let rows = match crate::database::pg_options(&config) {
        // A PostgreSQL deployment: its data is backed up by PostgreSQL's tools, its keys here.
        Some(options) => {
            let store = PgStore::open(&options)
                .await
                .context("opening the PostgreSQL database")?;
            super::refuse_foreign_root(&root, &args.data_dir, &store).await?;
            store
                .all_tenant_keys()
                .await
                .context("reading the tenant keys")?
        }
        None => {
            let live = args.data_dir.join(DB);
            let store = SqliteStore::open_read_only(&live, super::BUSY)
                .await
                .context("opening the database")?;
            let refused = super::refuse_foreign_root(&root, &args.data_dir, &store).await;
            store.close().await;
            refused?;
            SqliteStore::keys_and_shreds(&live)
                .await
                .context("reading the tenant keys")?
                .0
        }
    };
    let now = now_ms();
    let backup = KeyBackup {
        format: 1,
        created_at_ms: now,
        expires_at_ms: now + i64::from(args.retention_days) * DAY_MS,
        keys: rows
            .into_iter()
            .map(|k| KeyEntry {
                tenant_id: k.tenant_id,
                version: k.version,
                wrapped: STANDARD.encode(&k.wrapped),
                created_at: k.created_at,
            })
            .collect(),
    };
    let body = serde_json::to_vec(&backup)?;
    let id: [u8; 32] = strongroom_crypto::random_bytes().context("random")?;
    let key = BackupKey::derive(&root, &id).context("backup key")?;
    // Written beside, then renamed: a partial key backup would only be found out at the restore
    // that needs it.
    let staged = super::staged_beside(&args.out)?;
    let out = create_private(&staged)?;
    let written = (|| -> Result<()> {
        let mut w = ChunkWriter::new(BufWriter::new(out), key, &id)?;
        w.section(SECTION, body.len() as u64, &mut body.as_slice())?;
        let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        super::put_in_place(&staged, &args.out)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&staged);
        return Err(err.context(format!("writing {}", args.out.display())));
    }
    println!(
        "tenant keys of {} key versions written to {}; restores refuse it after {}",
        backup.keys.len(),
        args.out.display(),
        strongroom_core::clock::rfc3339(backup.expires_at_ms)
    );
    Ok(())
}

/// The keys of an unexpired key backup.
pub fn read(file: &Path, root: &RootKey) -> Result<Vec<TenantKeyRow>> {
    let mut input =
        BufReader::new(File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let id = read_header(&mut input)?;
    let key = BackupKey::derive(root, &id).context("backup key")?;
    let mut parsed: Option<KeyBackup> = None;
    ChunkReader::new(input, key, &id)
        .sections(|name, _, body| {
            if name != SECTION {
                return Err(std::io::Error::other("not a key backup"));
            }
            let mut bytes = Vec::new();
            body.read_to_end(&mut bytes)?;
            parsed = Some(serde_json::from_slice(&bytes).map_err(std::io::Error::other)?);
            Ok(())
        })
        .context("reading the key backup")?;
    let backup = parsed.context("the key backup is empty")?;
    if now_ms() >= backup.expires_at_ms {
        bail!(
            "the key backup expired at {}; expired key backups are never used (delete the file)",
            strongroom_core::clock::rfc3339(backup.expires_at_ms)
        );
    }
    backup
        .keys
        .into_iter()
        .map(|k| {
            Ok(TenantKeyRow {
                wrapped: STANDARD
                    .decode(&k.wrapped)
                    .context("key backup: bad wrapped key")?,
                tenant_id: k.tenant_id,
                version: k.version,
                created_at: k.created_at,
            })
        })
        .collect()
}

/// Whether `path` is a key backup file rather than a data dir.
pub fn is_key_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, root: &RootKey, expires_at_ms: i64) -> PathBuf {
        let body = serde_json::to_vec(&KeyBackup {
            format: 1,
            created_at_ms: 0,
            expires_at_ms,
            keys: vec![KeyEntry {
                tenant_id: "t1".into(),
                version: 1,
                wrapped: STANDARD.encode([9u8; 40]),
                created_at: 0,
            }],
        })
        .unwrap();
        let id = [3u8; 32];
        let path = dir.join(name);
        let out = File::create(&path).unwrap();
        let mut w = ChunkWriter::new(out, BackupKey::derive(root, &id).unwrap(), &id).unwrap();
        w.section(SECTION, body.len() as u64, &mut body.as_slice())
            .unwrap();
        w.finish().unwrap();
        path
    }

    #[test]
    fn an_expired_key_backup_is_refused() {
        let dir = std::env::temp_dir().join(format!("sr-keys-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let root = RootKey::from_bytes(&[5; 32]).unwrap();
        let fresh = write(&dir, "fresh", &root, now_ms() + DAY_MS);
        let keys = read(&fresh, &root).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].wrapped, vec![9u8; 40]);
        let stale = write(&dir, "stale", &root, now_ms() - 1);
        let err = read(&stale, &root).unwrap_err();
        assert!(format!("{err:#}").contains("expired"), "{err:#}");
        let other = RootKey::from_bytes(&[6; 32]).unwrap();
        assert!(read(&fresh, &other).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
