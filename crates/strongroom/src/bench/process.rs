//! The server under test: a `strongroom serve` child process on a throwaway data dir.

use super::*;

// ---------------------------------------------------------------------------------------------------
// The server process.

pub(super) struct ServerProcess {
    pub(super) child: Child,
    pub(super) pid: u32,
    pub(super) root: PathBuf,
    pub(super) api: String,
    /// The loopback ops listener (`/healthz`, `/metrics`).
    pub(super) ops: String,
    /// The server's self-signed certificate (PEM), the only trust root of the clients.
    pub(super) cert_pem: Vec<u8>,
    pub(super) keep: bool,
}

impl ServerProcess {
    /// Starts a server on a fresh data dir: SQLite in it, or the PostgreSQL schema `db`. With
    /// `keys_from` (another instance's `keys/`), the data dir starts with copies of its root key
    /// and log signing key, so this instance joins the same deployment.
    pub(super) async fn start(
        keep: bool,
        db: Option<&PgSchema>,
        keys_from: Option<&Path>,
    ) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let root =
            std::env::temp_dir().join(format!("strongroom-bench-{}-{nanos:x}", std::process::id()));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&root)
                .with_context(|| format!("creating {}", root.display()))?;
        }
        let data = root.join("data");
        if let Some(from) = keys_from {
            copy_keys(from, &data.join("keys"))?;
        }
        let log = std::fs::File::create(root.join("server.log")).context("creating server.log")?;
        let mut cmd =
            Command::new(std::env::current_exe().context("locating the strongroom binary")?);
        cmd.arg("serve").arg("--data-dir").arg(&data).args([
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
        ]);
        if let Some(db) = db {
            cmd.arg("--database-url")
                .arg(&db.url)
                .arg("--database-schema")
                .arg(&db.name);
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("STRONGROOM_") {
                cmd.env_remove(key);
            }
        }
        // STRONGROOM_LOG (a tracing filter) passes through, for diagnosing a run.
        if let Ok(filter) = std::env::var("STRONGROOM_LOG") {
            cmd.env("STRONGROOM_LOG", filter);
        }
        // The bench measures the data path; its throwaway accounts log in with passwords only.
        cmd.env("STRONGROOM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("STRONGROOM_MFA_REQUIRED_FOR_STAFF", "false")
            .env("STRONGROOM_MFA_REQUIRED_FOR_TENANT_ADMINS", "false")
            .env("STRONGROOM_LOG_LEVEL", "warn")
            // Its load connections stand for a fleet of callers, all from this one address.
            .env("STRONGROOM_MAX_CONNECTIONS", "100000")
            .env("STRONGROOM_MAX_CONNECTIONS_PER_CLIENT", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("server.log")?)
            .stderr(log);
        let child = cmd.spawn().context("spawning strongroom serve")?;
        let pid = child.id();
        let mut this = Self {
            child,
            pid,
            root,
            api: String::new(),
            ops: String::new(),
            cert_pem: Vec::new(),
            keep,
        };
        this.wait_ready(&data).await?;
        this.cert_pem = std::fs::read(data.join("tls/cert.pem")).context("reading tls/cert.pem")?;
        Ok(this)
    }

    /// Polls for `run/listen.json`, then for `/healthz` on the ops listener.
    pub(super) async fn wait_ready(&mut self, data: &Path) -> Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_alive()?;
            if !self.ops.is_empty() {
                let health = http
                    .get(format!("http://{}/healthz", self.ops))
                    .send()
                    .await;
                if health.is_ok_and(|r| r.status().is_success()) {
                    return Ok(());
                }
            } else if let Ok(text) = std::fs::read_to_string(data.join("run/listen.json"))
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && let (Some(api), Some(o)) = (v["api"].as_str(), v["ops"].as_str())
            {
                (self.api, self.ops) = (api.to_owned(), o.to_owned());
                continue;
            }
            if Instant::now() > deadline {
                bail!("server not ready within 60 s\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => bail!("server exited early with {status}\n{}", self.log_tail()),
            Ok(None) => Ok(()),
            Err(e) => Err(anyhow!("waiting for the server: {e}")),
        }
    }

    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM (graceful shutdown), then waits up to 30 s before killing.
    pub(super) fn terminate(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill")?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("server did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.keep {
            eprintln!("bench: kept {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Copies the root key and the log signing key (mode 0600) into a new `keys/` dir (mode 0700).
fn copy_keys(from: &Path, to: &Path) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .with_context(|| format!("creating {}", to.display()))?;
    for name in ["root.key", "log-signing.key"] {
        let bytes = std::fs::read(from.join(name))
            .with_context(|| format!("reading {}", from.join(name).display()))?;
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(to.join(name))
            .with_context(|| format!("creating {}", to.join(name).display()))?;
        f.write_all(&bytes)?;
    }
    Ok(())
}

/// The server's metrics page (Prometheus text), or `None` when it cannot be fetched.
pub(super) async fn scrape(ops: &str) -> Option<String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let resp = http
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .ok()?;
    resp.error_for_status().ok()?.text().await.ok()
}

/// The sum of the samples named exactly `name` (any labels) in a Prometheus text page.
pub(super) fn metric_sum(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// The set-up and sampling client (the load phases use [`super::load`]'s connections).
pub(super) fn client(cert_pem: &[u8]) -> Result<reqwest::Client> {
    let cert = reqwest::Certificate::from_pem(cert_pem).context("parsing tls/cert.pem")?;
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}
