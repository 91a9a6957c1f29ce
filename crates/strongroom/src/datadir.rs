//! The data directory: its layout, its lock, and what the first start creates in it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use strongroom_ledger::NoteSigner;
use zeroize::Zeroizing;

/// Present (relative to the data dir) while the live data is in PostgreSQL after `migrate`.
pub const MOVED_TO_POSTGRES: &str = "run/moved-to-postgres";

pub struct DataDir {
    root: PathBuf,
    _lock: Option<File>,
}

impl DataDir {
    /// Creates the layout if needed (mode 0700) and takes the exclusive lock.
    pub fn open_locked(root: &Path) -> Result<Self> {
        let mut dir = Self::open_unlocked(root)?;
        dir.make_private()?;
        let lock_path = dir.path("run/lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            bail!(
                "data directory {} is already in use by another strongroom process",
                root.display()
            );
        }
        dir._lock = Some(lock);
        dir.sweep_stale_backup_copies();
        dir.sweep_partial_secrets();
        Ok(dir)
    }

    /// Closes the directory to everyone but its owner. It may have been made beforehand (by an
    /// operator's `mkdir`, a systemd `StateDirectory`) open to others, and SQLite creates the
    /// database (password hashes, the audit log) with the umask's mode, 0644 by default; inside
    /// a 0700 directory nobody else reaches it.
    fn make_private(&self) -> Result<()> {
        for sub in ["", "keys", "tls", "run", "logs"] {
            let path = self.path(sub);
            let mode = fs::metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).with_context(
                    || format!("closing {} to other users (mode 0700)", path.display()),
                )?;
                eprintln!(
                    "strongroom: {} was open to other users (mode {:o}); it is now 0700",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        Ok(())
    }

    /// Removes what a [`write_secret`] stopped by a crash left staged (a copy of a key, once
    /// linked): under the lock, no write is in flight.
    fn sweep_partial_secrets(&self) {
        for sub in ["keys", "tls"] {
            let Ok(entries) = fs::read_dir(self.path(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let staged = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(".partial"));
                if staged && fs::remove_file(entry.path()).is_ok() {
                    report_swept(
                        "removed a secret file an interrupted write left staged",
                        &entry.path(),
                    );
                }
            }
        }
    }

    /// Removes the temporary database copies of backups, and the plaintext of verifications, that
    /// no process holds any more (each locks its files while it lives): an interrupted backup's
    /// copy holds every wrapped tenant key, so it must not outlive a shred. Run at open, before
    /// each backup, and every minute by a serving instance.
    pub fn sweep_stale_backup_copies(&self) {
        let Ok(entries) = fs::read_dir(self.path("run")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            // A verification's extracted plaintext, held by its lock file.
            if name.starts_with(crate::backup::VERIFY_DIR_PREFIX) {
                let held = entry.path().join(crate::backup::VERIFY_DIR_LOCK);
                if abandoned(&held, &entry.path()) && fs::remove_dir_all(entry.path()).is_ok() {
                    report_swept(
                        "removed what an interrupted backup verification extracted",
                        &entry.path(),
                    );
                }
                continue;
            }
            // The copy itself, or the journal SQLite kept beside it.
            let Some(copy) = name
                .strip_prefix("backup-")
                .and_then(|rest| rest.find(".db"))
                .map(|end| &name[..end + "backup-".len() + ".db".len()])
            else {
                continue;
            };
            if !abandoned(&self.path("run").join(copy), &entry.path()) {
                continue;
            }
            if fs::remove_file(entry.path()).is_ok() {
                report_swept(
                    "removed a temporary copy an interrupted backup left behind",
                    &entry.path(),
                );
            }
        }
    }

    /// The layout without the lock, for read-only tools (`audit verify`).
    pub fn open_unlocked(root: &Path) -> Result<Self> {
        for sub in ["", "keys", "tls", "run", "logs"] {
            let p = root.join(sub);
            if !p.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&p)
                    .with_context(|| format!("creating {}", p.display()))?;
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            _lock: None,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn database(&self) -> PathBuf {
        self.path("strongroom.db")
    }

    /// The log signing key, created on first start (32 random bytes, base64, mode 0600).
    pub fn log_signer(&self, name: &str) -> Result<NoteSigner> {
        let path = self.path("keys/log-signing.key");
        if !path.exists() {
            let signer = NoteSigner::generate(name).context("generating the log signing key")?;
            let text = Zeroizing::new(STANDARD.encode(*signer.secret_bytes()));
            write_secret(&path, text.as_bytes())?;
        }
        check_private(&path)?;
        let text = Zeroizing::new(
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
        );
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .with_context(|| format!("{} is not base64", path.display()))?,
        );
        let secret: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .with_context(|| format!("{} does not hold 32 bytes", path.display()))?,
        );
        NoteSigner::from_bytes(name, &secret).context("loading the log signing key")
    }

    /// A self-signed certificate for localhost/127.0.0.1, created on first start.
    pub fn ensure_tls(&self) -> Result<(PathBuf, PathBuf)> {
        let cert = self.path("tls/cert.pem");
        let key = self.path("tls/key.pem");
        if cert.exists() && key.exists() {
            return Ok((cert, key));
        }
        // A first start stopped between the two files: neither is of use without the other.
        for half in [&cert, &key] {
            if half.exists() {
                fs::remove_file(half).with_context(|| format!("removing {}", half.display()))?;
            }
        }
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let certified =
            rcgen::generate_simple_self_signed(names).context("generating the TLS certificate")?;
        let pem = Zeroizing::new(certified.signing_key.serialize_pem());
        write_secret(&key, pem.as_bytes())?;
        // Whole or not at all, like the key: a truncated certificate beside a good key would
        // pass the check above and fail every start after it.
        write_secret(&cert, certified.cert.pem().as_bytes())?;
        Ok((cert, key))
    }

    /// Tells tools where the server listens (written atomically once both listeners are bound).
    pub fn write_listen_file(&self, api: &str, ops: &str) -> Result<()> {
        let body = serde_json::json!({ "api": api, "ops": ops, "pid": std::process::id() });
        let tmp = self.path("run/listen.json.tmp");
        fs::write(&tmp, body.to_string())?;
        fs::rename(&tmp, self.path("run/listen.json"))?;
        Ok(())
    }

    pub fn remove_listen_file(&self) {
        let _ = fs::remove_file(self.path("run/listen.json"));
    }
}

/// The last checkpoint published from this data dir, beside the key that signed it: the log
/// refuses to open a store that does not extend it (rolled back or replaced; see
/// `strongroom_core::audit::CheckpointWitness`). Written whole or not at all, and synced.
pub struct PublishedCheckpointFile(PathBuf);

/// Where [`PublishedCheckpointFile`] lives, relative to the data dir.
pub const PUBLISHED_CHECKPOINT: &str = "keys/published-checkpoint.note";

impl PublishedCheckpointFile {
    pub fn of(dir: &DataDir) -> Self {
        Self(dir.path(PUBLISHED_CHECKPOINT))
    }
}

impl strongroom_core::audit::CheckpointWitness for PublishedCheckpointFile {
    fn last(&self) -> std::io::Result<Option<String>> {
        match fs::read_to_string(&self.0) {
            Ok(note) => Ok(Some(note)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn record(&self, note: &str) -> std::io::Result<()> {
        let mut staged = self.0.clone().into_os_string();
        staged.push(".new");
        let staged = PathBuf::from(staged);
        let _ = fs::remove_file(&staged);
        write_secret(&staged, note.as_bytes()).map_err(std::io::Error::other)?;
        fs::rename(&staged, &self.0)?;
        sync_parent(&self.0).map_err(std::io::Error::other)
    }
}

/// Says what a sweep removed, on standard error: the sweeps at open run before the server's log
/// is set up, and the commands that open a data dir keep no log.
fn report_swept(what: &str, path: &Path) {
    eprintln!("strongroom: {what}: {}", path.display());
}

/// Writes a new secret file (mode 0600) whole or not at all, a crash or power cut included: a
/// partial one would fail every start after it. The bytes go to `NAME.partial` first, synced,
/// which is then linked to its name (a link, unlike a rename, refuses to replace a file already
/// there) and removed; the directory is synced so that the file survives a power cut.
pub(crate) fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    let staged = partial_of(path);
    // Left by a write that stopped before its link: never the secret's only copy.
    let _ = fs::remove_file(&staged);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&staged)
        .with_context(|| format!("creating {}", staged.display()))?;
    if let Err(err) = f.write_all(bytes).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = fs::remove_file(&staged);
        return Err(err).with_context(|| format!("writing {}", path.display()));
    }
    drop(f);
    let linked =
        fs::hard_link(&staged, path).with_context(|| format!("creating {}", path.display()));
    let _ = fs::remove_file(&staged);
    linked?;
    sync_parent(path)
}

/// Where [`write_secret`] stages `path`.
fn partial_of(path: &Path) -> PathBuf {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".partial");
    PathBuf::from(staged)
}

/// Makes the directory entries of `path`'s directory durable (a rename, a new or removed file).
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", parent.display()))?;
    }
    Ok(())
}

fn check_private(path: &Path) -> Result<()> {
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Whether the backup (or verification) that `lock` belongs to is gone, so that `file` (the
/// lock itself, a journal beside it, a verification's directory) may go: the lock can be opened
/// and taken, or is gone, and `file` is older than a few seconds (a backup makes its copy, then
/// locks it). One that cannot be checked (another user's, say) is left alone.
fn abandoned(lock: &Path, file: &Path) -> bool {
    const GRACE: std::time::Duration = std::time::Duration::from_secs(10);
    let old_enough = fs::symlink_metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok())
        .is_some_and(|age| age > GRACE);
    if !old_enough {
        return false;
    }
    match fs::File::open(lock) {
        Ok(held) => held.try_lock().is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_written_whole_under_their_name_and_never_over_another() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("secret.key");
        // A staged copy left by a crash is replaced, not mistaken for the file.
        fs::write(partial_of(&path), b"trunc").unwrap();
        write_secret(&path, b"whole secret\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole secret\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!partial_of(&path).exists());
        // Like create_new: an existing file is neither replaced nor left with a staged copy.
        assert!(write_secret(&path, b"another").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"whole secret\n");
        assert!(!partial_of(&path).exists());
    }

    #[test]
    fn secrets_left_staged_are_swept_at_open() {
        let root = tempfile::tempdir().unwrap();
        let staged = {
            let dir = DataDir::open_locked(root.path()).unwrap();
            let staged = dir.path("keys/root.key.new.partial");
            fs::write(&staged, b"key").unwrap();
            staged
        };
        let _dir = DataDir::open_locked(root.path()).unwrap();
        assert!(!staged.exists());
    }

    #[test]
    fn copies_an_interrupted_backup_left_are_swept_and_running_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::open_unlocked(root.path()).unwrap();
        let a_minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let age = |p: &Path| {
            File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(a_minute_ago)
                .unwrap();
        };
        let left = dir.path("run/backup-scratch-0123.db");
        let left_journal = dir.path("run/backup-scratch-0123.db-journal");
        let running = dir.path("run/backup-4567.db");
        let running_journal = dir.path("run/backup-4567.db-journal");
        let just_made = dir.path("run/backup-89ab.db");
        let other = dir.path("run/listen.json");
        for p in [
            &left,
            &left_journal,
            &running,
            &running_journal,
            &just_made,
            &other,
        ] {
            fs::write(p, b"x").unwrap();
        }
        for p in [&left, &left_journal, &running, &running_journal, &other] {
            age(p);
        }
        // A running backup holds its copy locked; a second process sees the lock. A copy just
        // made is not locked yet.
        let held = File::open(&running).unwrap();
        held.try_lock().unwrap();
        dir.sweep_stale_backup_copies();
        assert!(!left.exists(), "a copy nobody holds stays");
        assert!(!left_journal.exists(), "its journal stays");
        assert!(running.exists(), "a running backup's copy went");
        assert!(running_journal.exists(), "a running backup's journal went");
        assert!(
            just_made.exists(),
            "a copy made a moment ago went before its lock"
        );
        assert!(other.exists(), "a file that is no backup copy went");
        drop(held);
        dir.sweep_stale_backup_copies();
        assert!(!running.exists() && !running_journal.exists());

        // A verification's extracted plaintext: kept while its lock is held, then removed.
        let verifying = dir.path("run/backup-verify-89ab");
        fs::create_dir_all(verifying.join("keys")).unwrap();
        fs::write(verifying.join("strongroom.db"), b"x").unwrap();
        let lock = verifying.join(crate::backup::VERIFY_DIR_LOCK);
        fs::write(&lock, b"").unwrap();
        let held = File::open(&lock).unwrap();
        held.try_lock().unwrap();
        std::fs::File::open(&verifying)
            .unwrap()
            .set_modified(a_minute_ago)
            .unwrap();
        dir.sweep_stale_backup_copies();
        assert!(verifying.exists(), "a running verification's files went");
        drop(held);
        dir.sweep_stale_backup_copies();
        assert!(
            !verifying.exists(),
            "an interrupted verification's files stay"
        );
    }
}
