//! `strongroom admin …`: access governance run by an operator on a stopped server's data dir.
//!
//! These take the data-dir lock like `serve`, so they never race a running server's audit log;
//! while a server runs, the same operations are its API (`POST /v1/admin/inactivity-sweep`,
//! `POST /v1/access-reviews`) and its hourly background sweep.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use strongroom_core::clock::parse_rfc3339;

use crate::config::Config;
use crate::datadir::DataDir;

#[derive(Debug, clap::Args)]
pub struct DataDirArgs {
    #[arg(long, env = "STRONGROOM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Configuration file (TOML); defaults to DATA_DIR/strongroom.toml when present.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// Report what would happen, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Judge as of this RFC 3339 time instead of now.
    #[arg(long)]
    pub as_of: Option<String>,
}

impl SweepArgs {
    fn as_of_ms(&self) -> Result<Option<i64>> {
        self.as_of
            .as_deref()
            .map(|text| parse_rfc3339(text).context("--as-of is not an RFC 3339 time"))
            .transpose()
    }
}

fn print_json<T: serde::Serialize>(report: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, report)?;
    writeln!(out)?;
    Ok(())
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    pub dir: DataDirArgs,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Write the review here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub(crate) async fn open(
    args: &DataDirArgs,
) -> Result<(DataDir, std::sync::Arc<strongroom_core::Vault>)> {
    let config = Config::load(args.config.as_deref(), &args.data_dir)?;
    if config.database_url.is_none() && !args.data_dir.join("strongroom.db").is_file() {
        bail!(
            "{} holds no strongroom database: not a data dir?",
            args.data_dir.display()
        );
    }
    let dir = DataDir::open_locked(&args.data_dir).context(
        "a running server holds this data dir; stop it, or use the API \
         (POST /v1/admin/inactivity-sweep, POST /v1/access-reviews)",
    )?;
    let vault = crate::serve::open_vault(&dir, &config).await?;
    Ok((dir, vault))
}

pub async fn sweep_inactive(args: SweepArgs) -> Result<()> {
    let as_of = args.as_of_ms()?;
    let (_dir, vault) = open(&args.dir).await?;
    let report = vault
        .sweep_inactive_unattended(as_of, args.dry_run, "cli.sweep-inactive")
        .await
        .map_err(|e| anyhow::anyhow!("inactivity sweep: {e}"))?;
    print_json(&report)
}

pub async fn purge_expired(args: SweepArgs) -> Result<()> {
    let as_of = args.as_of_ms()?;
    let (_dir, vault) = open(&args.dir).await?;
    let report = vault
        .purge_expired_unattended(as_of, args.dry_run, "cli.purge-expired")
        .await
        .map_err(|e| anyhow::anyhow!("retention purge: {e}"))?;
    print_json(&report)
}

pub async fn access_review(args: ReviewArgs) -> Result<()> {
    let (_dir, vault) = open(&args.dir).await?;
    let review = vault
        .create_access_review_unattended("cli.access-review")
        .await
        .map_err(|e| anyhow::anyhow!("access review: {e}"))?;
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&review)? + "\n",
        Format::Csv => review.to_csv(),
    };
    match &args.output {
        Some(path) => write_private(path, &text)?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// Reviews list every account: readable by the operator only, even when the file existed
/// before with a wider mode (the mode given to `open` applies to new files only).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
