//! `strongroom audit verify`: offline verification of a data dir, or monitoring of a live server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use strongroom_core::audit::{VerifyError, verify_store_against};
use strongroom_ledger::{
    Hash, MAX_NOTE_SIZE, NoteSigner, NoteVerifier, check_checkpoint_consistency, key_id,
};
use strongroom_store::{PgStore, SqliteStore, Store};
use zeroize::Zeroizing;

/// No `Debug`: the database URL may hold a password.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Verify the log stored in this data directory (offline).
    #[arg(long, conflicts_with = "url")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (TOML) of the deployment; defaults to DATA_DIR/strongroom.toml when
    /// present. Its `audit_origin` and `root_key_env` matter here.
    #[arg(long, requires = "data_dir")]
    pub config: Option<PathBuf>,
    /// Monitor a running server: fetch its checkpoint and check it against the trusted state.
    #[arg(long, requires = "state")]
    pub url: Option<String>,
    /// File holding the last checkpoint a monitor trusted: kept up to date with --url; with
    /// --data-dir, the stored log must hold that checkpoint (an anchor outside the data dir).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// CA certificate (PEM) to trust for --url (e.g. DATA_DIR/tls/cert.pem).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Verifier key (note format) to check signatures with; read from the server or data dir when absent.
    #[arg(long)]
    pub verifier_key: Option<String>,
    /// The log is in this PostgreSQL database (the data dir then only supplies the key).
    #[arg(long, requires = "data_dir")]
    pub database_url: Option<String>,
    /// PostgreSQL schema of the deployment.
    #[arg(long, requires = "database_url")]
    pub database_schema: Option<String>,
}

pub async fn verify(args: VerifyArgs) -> Result<()> {
    match (&args.data_dir, &args.url, &args.state) {
        (Some(dir), None, state) => {
            offline(
                dir,
                args.config.as_deref(),
                args.verifier_key.as_deref(),
                state.as_deref(),
                args.database_url.clone(),
                args.database_schema.clone(),
            )
            .await
        }
        (None, Some(url), Some(state)) => {
            monitor(
                url,
                state,
                args.ca_cert.as_deref(),
                args.verifier_key.as_deref(),
            )
            .await
        }
        _ => bail!("give either --data-dir DIR, or --url URL with --state FILE"),
    }
}

// ---- Offline: the whole stored log ----

async fn offline(
    dir: &Path,
    config_file: Option<&Path>,
    vkey: Option<&str>,
    state: Option<&Path>,
    database_url: Option<String>,
    database_schema: Option<String>,
) -> Result<()> {
    let mut config = crate::config::Config::load(config_file, dir)?;
    if let Some(url) = database_url {
        config.database_url = Some(crate::config::DatabaseUrl::new(url));
        config.database_schema = database_schema;
    }
    // Its frozen SQLite file against the checkpoint the live deployment keeps publishing would
    // read as a removed tail: a false alarm.
    crate::backup::refuse_moved_store(dir, &config)?;
    let verifier = match vkey {
        Some(v) => NoteVerifier::parse(v.trim()).context("parsing --verifier-key")?,
        None => {
            // The key comes from the directory under check: whoever could rewrite the log there
            // could also replace the key and re-sign. Said once, with the way out.
            println!(
                "note: the verifier key is taken from this data dir's signing key; pass \
                 --verifier-key with the published key to check against a key held elsewhere"
            );
            verifier_from_data_dir(dir, &config.service.audit_origin)?
        }
    };
    let store: Box<dyn Store> = match crate::database::pg_options(&config) {
        Some(options) => {
            println!("verifying the audit log in PostgreSQL");
            Box::new(
                PgStore::open(&options)
                    .await
                    .context("opening the PostgreSQL database")?,
            )
        }
        None => {
            let db = dir.join("strongroom.db");
            if !db.is_file() {
                bail!(
                    "{} does not exist: not a strongroom data dir?",
                    db.display()
                );
            }
            let busy = Duration::from_millis(config.store_busy_timeout_ms);
            println!("verifying the audit log in {}", db.display());
            Box::new(
                SqliteStore::open_read_only(&db, busy)
                    .await
                    .with_context(|| format!("opening {} read-only", db.display()))?,
            )
        }
    };
    println!("verifier key: {}", verifier.to_vkey());
    let mut trusted = match state {
        None => Vec::new(),
        Some(path) => vec![trusted_note(path, &verifier)?],
    };
    // The last checkpoint this data dir's server published: checkpoints removed from the store
    // cannot hide a rewrite of what it covers.
    match std::fs::read_to_string(dir.join(crate::datadir::PUBLISHED_CHECKPOINT)) {
        Ok(note) => {
            println!("also checking the checkpoint this data dir last published");
            trusted.push(note);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("reading the last published checkpoint"),
    }
    let outcome = verify_store_against(store.as_ref(), &verifier, &trusted).await;
    match outcome {
        // The server signs as soon as it opens a log and within a second of any append, so
        // entries that no checkpoint above size 0 covers mean the checkpoints were removed:
        // nothing vouches for these entries, however well they hash together.
        Ok(report)
            if report.entries > 0 && report.latest.as_ref().is_none_or(|cp| cp.size == 0) =>
        {
            println!(
                "FAILED at index 0: {} entries and no signed checkpoint covering any of them \
                 (were the checkpoints removed? a server stopped before its first signature \
                 signs them at its next start)",
                report.entries
            );
            bail!(
                "audit log verification failed; first bad index 0: no signed checkpoint covers \
                 the {} entries",
                report.entries
            )
        }
        Ok(report) => {
            println!(
                "OK: {} entries and {} signed checkpoints verified ({} bytes hashed in {:.3} s)",
                report.entries,
                report.checkpoints,
                report.bytes_hashed,
                report.elapsed.as_secs_f64()
            );
            match &report.latest {
                Some(cp) => println!(
                    "latest checkpoint: size {}, root {}",
                    cp.size,
                    STANDARD.encode(cp.root)
                ),
                None => println!("latest checkpoint: none (the log has never been signed)"),
            }
            println!(
                "recomputed tree:   size {}, root {}",
                report.entries,
                STANDARD.encode(report.root)
            );
            if report.unsigned_tail() > 0 {
                println!(
                    "note: the last {} entries are not yet covered by a signed checkpoint",
                    report.unsigned_tail()
                );
            }
            Ok(())
        }
        Err(VerifyError::Invalid(failure)) => {
            println!("FAILED at index {}: {}", failure.index, failure.kind);
            println!(
                "verified before the failure: {} entries, {} signed checkpoints",
                failure.entries_verified, failure.checkpoints_verified
            );
            bail!(
                "audit log verification failed; first bad index {}: {}",
                failure.index,
                failure.kind
            )
        }
        Err(e) => Err(e).context("audit log verification could not run"),
    }
}

/// The verifier of the data dir's log key, named as `strongroom serve` names it.
/// The checkpoint a monitor's state file trusts, for the offline check: the state must trust
/// the key the log is checked with.
fn trusted_note(path: &Path, verifier: &NoteVerifier) -> Result<String> {
    let Some(state) = read_state(path)? else {
        bail!("{}: no monitor state there", path.display());
    };
    if state.vkey.trim() != verifier.to_vkey() {
        println!("state's verifier key: {}", state.vkey.trim());
        bail!(
            "{} trusts another verifier key than the one the log is checked with",
            path.display()
        );
    }
    let checkpoint = verifier
        .verify_checkpoint(&state.note)
        .with_context(|| format!("the checkpoint in {} does not verify", path.display()))?;
    println!(
        "trusted checkpoint from {}: size {}, root {}",
        path.display(),
        checkpoint.size,
        STANDARD.encode(checkpoint.root)
    );
    Ok(state.note)
}

pub(crate) fn verifier_from_data_dir(dir: &Path, configured_origin: &str) -> Result<NoteVerifier> {
    let path = dir.join("keys/log-signing.key");
    let text = Zeroizing::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (or pass --verifier-key)", path.display()))?,
    );
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .with_context(|| format!("{} is not base64", path.display()))?,
    );
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes
            .as_slice()
            .try_into()
            .with_context(|| format!("{} does not hold 32 bytes", path.display()))?,
    );
    let public = NoteSigner::from_bytes("strongroom", &seed)
        .context("loading the log signing key")?
        .verifier()
        .public_key();
    // Same rule as `Vault::open`: the configured origin, else one derived from the key id.
    let origin = if configured_origin.is_empty() {
        format!(
            "strongroom.local/audit/{:08x}",
            key_id("strongroom", &public)
        )
    } else {
        configured_origin.to_owned()
    };
    NoteVerifier::from_public_key(&origin, &public).context("building the log verifier")
}

// ---- Monitor: a live server against the last trusted checkpoint ----

/// What a monitor remembers between runs.
#[derive(Debug, Serialize, Deserialize)]
struct MonitorState {
    vkey: String,
    note: String,
}

async fn monitor(
    url: &str,
    state_path: &Path,
    ca: Option<&Path>,
    vkey: Option<&str>,
) -> Result<()> {
    let http = http_client(ca)?;
    let base = url.trim_end_matches('/');
    let previous = read_state(state_path)?;

    let vkey = match vkey {
        Some(v) => v.trim().to_owned(),
        None => fetch_text(&http, &format!("{base}/v1/audit/verifier-key"))
            .await?
            .trim()
            .to_owned(),
    };
    if let Some(prev) = &previous
        && prev.vkey != vkey
    {
        println!("trusted verifier key: {}", prev.vkey);
        println!("offered verifier key: {vkey}");
        bail!(
            "the log's verifier key changed (state file {}): refusing to trust a new key",
            state_path.display()
        );
    }
    let verifier = NoteVerifier::parse(&vkey).context("parsing the verifier key")?;

    let note = fetch_text(&http, &format!("{base}/v1/audit/checkpoint")).await?;
    let new = match verifier.verify_checkpoint(&note) {
        Ok(cp) => cp,
        Err(e) => {
            print_evidence(previous.as_ref().map(|p| p.note.as_str()), &note, None);
            bail!("the server's checkpoint does not verify: {e}");
        }
    };
    if new.origin != verifier.name() {
        print_evidence(previous.as_ref().map(|p| p.note.as_str()), &note, None);
        bail!(
            "checkpoint origin {:?} differs from the key name {:?}",
            new.origin,
            verifier.name()
        );
    }

    let old = match &previous {
        None => {
            println!("first run: trusting verifier key {vkey} (trust on first use)");
            None
        }
        Some(prev) => Some(verifier.verify_checkpoint(&prev.note).with_context(|| {
            format!("the checkpoint in {} does not verify", state_path.display())
        })?),
    };
    if let (Some(old), Some(prev)) = (&old, &previous) {
        if new.size == 0 && old.size > 0 {
            print_evidence(Some(&prev.note), &note, None);
            bail!(
                "the server offers an empty log after size {} was trusted",
                old.size
            );
        }
        // A checkpoint older than the trusted one (an instance that has not caught up yet) must
        // be a prefix of it: checked the other way round, and the trusted one kept.
        let (earlier, later) = if new.size < old.size {
            (&new, old)
        } else {
            (old, &new)
        };
        let proof = if earlier.size == 0 || earlier.size == later.size {
            Vec::new()
        } else {
            match fetch_consistency(&http, base, earlier.size, later.size).await {
                Ok(proof) => proof,
                // A server that withholds the proof may be hiding a fork: the evidence is shown.
                Err(e) => {
                    print_evidence(Some(&prev.note), &note, None);
                    bail!(
                        "no consistency proof between sizes {} and {} could be obtained, so the \
                         offered checkpoint is not trusted: {e:#}",
                        earlier.size,
                        later.size
                    );
                }
            }
        };
        if let Err(e) = check_checkpoint_consistency(earlier, later, &proof) {
            print_evidence(Some(&prev.note), &note, Some(&proof));
            bail!(
                "the log is not consistent with the trusted checkpoint (size {} -> {}): {e}",
                old.size,
                new.size
            );
        }
        if new.size < old.size {
            println!(
                "stale: the server offered size {}, a prefix of the trusted size {} ({} proof \
                 hashes); the trusted checkpoint is kept",
                new.size,
                old.size,
                proof.len()
            );
            return Ok(());
        }
        println!(
            "consistent: size {} -> {} ({} proof hashes)",
            old.size,
            new.size,
            proof.len()
        );
    }
    write_state(state_path, &MonitorState { vkey, note })?;
    println!(
        "OK: checkpoint size {}, root {} (saved to {})",
        new.size,
        STANDARD.encode(new.root),
        state_path.display()
    );
    Ok(())
}

fn http_client(ca: Option<&Path>) -> Result<reqwest::Client> {
    // No redirects: the checkpoint, the key and the proofs come from the log named, never from
    // another one it points at.
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("parsing {}", path.display()))?;
        builder = builder.tls_certs_merge([cert]);
    }
    builder.build().context("building the HTTPS client")
}

/// GET with a size cap: a checkpoint or key is never larger than a note may be.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>> {
    let mut resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.with_context(|| format!("GET {url}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_NOTE_SIZE {
            bail!("GET {url}: answer larger than {MAX_NOTE_SIZE} bytes");
        }
    }
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

async fn fetch_text(http: &reqwest::Client, url: &str) -> Result<String> {
    String::from_utf8(fetch(http, url).await?).with_context(|| format!("GET {url}: not UTF-8"))
}

#[derive(Deserialize)]
struct ConsistencyAnswer {
    from: u64,
    to: u64,
    hashes: Vec<String>,
}

async fn fetch_consistency(
    http: &reqwest::Client,
    base: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>> {
    let url = format!("{base}/v1/audit/proofs/consistency?from={from}&to={to}");
    let answer: ConsistencyAnswer = serde_json::from_slice(&fetch(http, &url).await?)
        .with_context(|| format!("GET {url}: not a proof"))?;
    if (answer.from, answer.to) != (from, to) {
        bail!("GET {url}: proof is for {} -> {}", answer.from, answer.to);
    }
    answer
        .hashes
        .iter()
        .map(|h| {
            let raw = STANDARD
                .decode(h)
                .with_context(|| format!("proof hash {h:?} is not base64"))?;
            Hash::try_from(raw.as_slice())
                .map_err(|_| anyhow::anyhow!("proof hash {h:?} is not 32 bytes"))
        })
        .collect()
}

fn print_evidence(old: Option<&str>, new: &str, proof: Option<&[Hash]>) {
    println!("---- trusted checkpoint ----");
    println!("{}", old.unwrap_or("(none)").trim_end());
    println!("---- offered checkpoint ----");
    println!("{}", new.trim_end());
    if let Some(proof) = proof {
        println!("---- consistency proof ({} hashes) ----", proof.len());
        for h in proof {
            println!("{}", STANDARD.encode(h));
        }
    }
    println!("----");
}

fn read_state(path: &Path) -> Result<Option<MonitorState>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaces the state file atomically and durably, so neither a crash nor a power loss leaves
/// a half-written or missing trust anchor (which would fall back to trusting the next
/// checkpoint on first use): a file of this process's own beside it, synced, renamed over it,
/// and the directory synced.
fn write_state(path: &Path, state: &MonitorState) -> Result<()> {
    use std::io::Write as _;
    let body = serde_json::to_vec_pretty(state).context("encoding the state")?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| -> std::io::Result<()> {
        // A new file only: one planted at that name (a link elsewhere) is not written through.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("replacing {}", path.display()))
}
