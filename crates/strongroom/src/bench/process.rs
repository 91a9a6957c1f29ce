//! The server under test: a `strongroom serve` child process on a throwaway data dir.

use super::*;

// ---------------------------------------------------------------------------------------------------
// The server process.

pub(super) struct ServerProcess {
    pub(super) child: Child,
    pub(super) pid: u32,
    pub(super) root: PathBuf,
    pub(super) api: String,
    /// The server's self-signed certificate, the only trust root of the clients.
    pub(super) cert: Option<reqwest::Certificate>,
    pub(super) keep: bool,
}

impl ServerProcess {
    pub(super) async fn start(keep: bool) -> Result<Self> {
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
        let log = std::fs::File::create(root.join("server.log")).context("creating server.log")?;
        let mut cmd =
            Command::new(std::env::current_exe().context("locating the strongroom binary")?);
        cmd.arg("serve").arg("--data-dir").arg(&data).args([
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
        ]);
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
            cert: None,
            keep,
        };
        this.wait_ready(&data).await?;
        let pem = std::fs::read(data.join("tls/cert.pem")).context("reading tls/cert.pem")?;
        this.cert = Some(reqwest::Certificate::from_pem(&pem).context("parsing tls/cert.pem")?);
        Ok(this)
    }

    /// Polls for `run/listen.json`, then for `/healthz` on the ops listener.
    pub(super) async fn wait_ready(&mut self, data: &Path) -> Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut ops = None;
        loop {
            self.check_alive()?;
            if let Some(ops) = &ops {
                let health = http.get(format!("http://{ops}/healthz")).send().await;
                if health.is_ok_and(|r| r.status().is_success()) {
                    return Ok(());
                }
            } else if let Ok(text) = std::fs::read_to_string(data.join("run/listen.json"))
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && let (Some(api), Some(o)) = (v["api"].as_str(), v["ops"].as_str())
            {
                (self.api, ops) = (api.to_owned(), Some(o.to_owned()));
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

pub(super) fn client(cert: &reqwest::Certificate, per_connection: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([cert.clone()])
        .no_proxy()
        .timeout(Duration::from_secs(30));
    if per_connection {
        b = b.http1_only().pool_max_idle_per_host(1);
    }
    b.build().context("building the HTTP client")
}
