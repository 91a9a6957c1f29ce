//! `strongroom backup restore`: a backup into a new data dir, with the tenant keys of the live
//! deployment (see the parent module for what a backup holds and leaves out).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use strongroom_core::audit::{AuditLog, AuditRecord, ResourceRef};
use strongroom_core::clock::SystemClock;
use strongroom_crypto::RootKey;
use strongroom_store::{Mutation, SqliteStore, Store, TenantKeyRow, TenantScope, TenantShredRow};

use super::{BUSY, DB, RestoreArgs, check, create_private, extract, keys, now_ms, root_key};
use crate::config::Config;
use crate::datadir::{DataDir, PublishedCheckpointFile};

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
        Config::load(args.config.as_deref(), &args.keys_from)?
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
        args.config.as_deref(),
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
    config_file: Option<&Path>,
    store: Arc<SqliteStore>,
    shredded: &[(String, Option<String>)],
    unreadable: &[Unreadable],
) -> Result<()> {
    let config = Config::load(config_file, data_dir)?;
    let signer = dir.log_signer("strongroom")?;
    let audit = AuditLog::open_configured(
        store,
        &signer,
        &config.service,
        Arc::new(SystemClock::default()),
        "restore".to_owned(),
        Some(Arc::new(PublishedCheckpointFile::of(dir))),
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
