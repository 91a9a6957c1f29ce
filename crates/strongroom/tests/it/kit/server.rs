//! Starting, stopping and inspecting a real `strongroom serve` process.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ADMIN_PASSWORD, Api, Db, PgSchema, Session, dump_schema, on_postgres, open_session};

/// How long a server may take to write listen.json and answer /healthz.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The strongroom binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_strongroom")
}

/// A running `strongroom serve` on a temporary data dir.
///
/// Layout: `ROOT/data` is the data dir; `ROOT/stderr.log` and
/// `ROOT/stdout.log` hold the process output (outside the data dir, so the
/// at-rest scans can tell them apart). Dropping the server SIGKILLs it; a
/// watchdog process also kills it (and removes ROOT) when the test binary
/// exits, which covers servers kept in statics, whose Drop never runs.
///
/// On PostgreSQL (`kit::backend()`), each `start*` creates a schema of its own, `restart*` keeps
/// it, `start_peer` shares it, and it is dropped with the last server using it (or by the
/// watchdog).
pub struct Server {
    root: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
    pub stdout_path: PathBuf,
    pub api: SocketAddr,
    pub ops: SocketAddr,
    pub pid: u32,
    env: Vec<(String, String)>,
    args: Vec<String>,
    cert_pem: Vec<u8>,
    child: Mutex<Option<Child>>,
    watchdog: Mutex<Option<Child>>,
    /// Declared last: dropped after the process is dead.
    pg: Option<Arc<PgSchema>>,
}

/// A new schema when the run is on PostgreSQL.
fn new_schema() -> Option<Arc<PgSchema>> {
    on_postgres().then(|| Arc::new(PgSchema::create()))
}

impl Server {
    /// A fresh server with the default configuration.
    pub fn start() -> Server {
        Server::start_with(&[], &[])
    }

    /// A fresh server with extra environment variables and `serve` flags.
    pub fn start_with(env: &[(&str, &str)], args: &[&str]) -> Server {
        let root = tempfile::Builder::new()
            .prefix("strongroom-it-")
            .tempdir()
            .expect("create temp dir");
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        launch(root, env, args, new_schema())
    }

    /// A second instance on the same store as `first` (PostgreSQL only: the same schema), with
    /// a data dir of its own holding copies of `first`'s root and log-signing keys, and the same
    /// configuration.
    pub fn start_peer(first: &Server) -> Server {
        let Some(pg) = first.pg.clone() else {
            panic!(
                "Server::start_peer needs the PostgreSQL backend (STRONGROOM_TEST_DATABASE=postgres)"
            );
        };
        let root = tempfile::Builder::new()
            .prefix("strongroom-it-")
            .tempdir()
            .expect("create temp dir");
        let keys = root.path().join("data").join("keys");
        fs::create_dir_all(&keys).expect("create keys dir");
        for dir in [root.path().join("data"), keys.clone()] {
            fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .expect("chmod 0700");
        }
        for name in ["root.key", "log-signing.key"] {
            let to = keys.join(name);
            fs::copy(first.data_dir.join("keys").join(name), &to).expect("copy key file");
            fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod 0600");
        }
        launch(root, first.env.clone(), first.args.clone(), Some(pg))
    }

    /// A server on an existing data dir at `root/data` (e.g. a restored one).
    pub fn start_in(root: tempfile::TempDir, env: &[(&str, &str)], args: &[&str]) -> Server {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        launch(root, env, args, new_schema())
    }

    /// Stops this server (SIGTERM) if it still runs, then starts a new
    /// process on the same data dir with the same configuration.
    pub async fn restart(self) -> Server {
        if self.is_running() {
            let status = self.stop().await;
            assert!(status.success(), "server exited with {status} on SIGTERM");
        }
        let mut this = self;
        this.disarm();
        let root = std::mem::replace(&mut this.root, placeholder_dir());
        let env = std::mem::take(&mut this.env);
        let args = std::mem::take(&mut this.args);
        let pg = this.pg.take();
        drop(this);
        launch(root, env, args, pg)
    }

    /// Restarts with `version` as the current confidentiality agreement; `staff` (a session
    /// made before) comes back on the same token, stating `case-resolution`.
    pub async fn restart_with_agreement(self, version: &str, staff: &Api) -> (Server, Api) {
        let token = staff.token().expect("a session").to_owned();
        let server = self
            .restart_with_env(&[("STRONGROOM_CONFIDENTIALITY_VERSION", version)])
            .await;
        let staff = server
            .anon()
            .with_token(Some(&token))
            .with_purpose(Some("case-resolution"));
        (server, staff)
    }

    /// Like [`Server::restart`], with `env` set on top of the configuration (a new release of
    /// the configuration, as an operator would roll out).
    pub async fn restart_with_env(mut self, env: &[(&str, &str)]) -> Server {
        for (k, v) in env {
            self.env.retain(|(key, _)| key != k);
            self.env.push(((*k).to_owned(), (*v).to_owned()));
        }
        self.restart().await
    }

    /// `https://127.0.0.1:PORT{path}` on the API listener.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.api)
    }

    /// `http://127.0.0.1:PORT{path}` on the ops listener.
    pub fn ops_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ops)
    }

    /// The directory holding the data dir and the captured output.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The server's certificate (PEM), the only trust root of test clients.
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// A reqwest client that trusts only the server's certificate.
    pub fn http_client(&self) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(&self.cert_pem).expect("parse cert.pem");
        reqwest::Client::builder()
            .tls_certs_only([cert])
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build reqwest client")
    }

    /// An unauthenticated API client.
    pub fn anon(&self) -> Api {
        Api::new(self.http_client(), self.url(""))
    }

    /// A session of the built-in platform administrator (no purpose header,
    /// no confidentiality acknowledgement).
    pub async fn admin(&self) -> Session {
        open_session(self, "admin", ADMIN_PASSWORD, "platform_admin").await
    }

    /// The PostgreSQL schema of this server (None on SQLite).
    pub fn schema(&self) -> Option<&str> {
        self.pg.as_ref().map(|pg| pg.name.as_str())
    }

    /// The flags that point a command (`audit verify`) at this server's store besides
    /// `--data-dir`: `--database-url … --database-schema …` on PostgreSQL, none on SQLite.
    pub fn store_args(&self) -> Vec<String> {
        self.pg.as_ref().map(|pg| pg.flags()).unwrap_or_default()
    }

    /// The environment that points a command (`admin …`, `keys …`) at this server's store:
    /// `STRONGROOM_DATABASE_URL`/`_SCHEMA` on PostgreSQL, nothing on SQLite.
    pub fn store_env(&self) -> Vec<(String, String)> {
        match &self.pg {
            Some(pg) => vec![
                ("STRONGROOM_DATABASE_URL".into(), super::pg_app_url()),
                ("STRONGROOM_DATABASE_SCHEMA".into(), pg.name.clone()),
            ],
            None => Vec::new(),
        }
    }

    /// `serve` again on this stopped server's data dir and store, expected to refuse to start:
    /// its stderr.
    pub fn refused_restart(&self) -> String {
        let env = self.store_env();
        let env: Vec<(&str, &std::ffi::OsStr)> = env
            .iter()
            .map(|(k, v)| (k.as_str(), std::ffi::OsStr::new(v)))
            .collect();
        refused_serve(&self.data_dir, &env).0
    }

    /// A connection to this server's store (see [`Db`]).
    pub async fn db(&self) -> Db {
        match &self.pg {
            Some(pg) => Db::postgres(&pg.name).await,
            None => Db::sqlite(&self.data_dir).await,
        }
    }

    /// Every file holding this server's data at rest: the files under the data dir and, on
    /// PostgreSQL, a text dump of every row of its schema (written outside the data dir, see
    /// [`super::dump_schema`]).
    pub async fn at_rest_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut stack = vec![self.data_dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("read dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.is_file() {
                    files.push(path);
                }
            }
        }
        if let Some(pg) = &self.pg {
            let out = self
                .root()
                .join(format!("pg-dump-{}.txt", super::rand_hex(4)));
            files.push(dump_schema(&pg.name, &out).await);
        }
        files
    }

    /// The value of a metric on the ops listener's `/metrics` (its first series; None if absent).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (status, body) = plain_get(self.ops, "/metrics").ok()?;
        if status != 200 {
            return None;
        }
        body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (key, value) = l.rsplit_once(char::is_whitespace)?;
            let key = key.trim();
            let bare = key.split_once('{').map_or(key, |(k, _)| k);
            (bare == name).then(|| value.trim().parse().ok())?
        })
    }

    /// SIGKILL: the process dies at once, without any shutdown.
    pub fn kill(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = guard.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still alive.
    pub fn is_running(&self) -> bool {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Graceful stop: `kill -TERM <pid>`, then waits (≤ 60 s) for the exit.
    /// Async on purpose: while it waits, this test's runtime keeps serving
    /// its client connections (an HTTP/2 client must answer the server's
    /// GOAWAY/PING for a graceful close).
    pub async fn stop(&self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
                let child = guard.as_mut().expect("server already reaped");
                if let Some(status) = child.try_wait().expect("wait for server") {
                    return status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    drop(guard);
                    panic!(
                        "server did not exit within 60 s of SIGTERM\n{}",
                        self.stderr_tail(60)
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// The last `n` lines of stderr, for failure messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        let all = self.stderr();
        let lines: Vec<&str> = all.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "---- server stderr (last {n} lines of {}) ----\n{}\n----",
            self.stderr_path.display(),
            lines[start..].join("\n")
        )
    }

    /// Kills the watchdog without letting it act (the server is handled
    /// by the caller).
    fn disarm(&mut self) {
        let mut guard = self.watchdog.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut dog) = guard.take() {
            let _ = dog.kill();
            drop(dog.stdin.take());
            let _ = dog.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_tail(80));
        }
        {
            let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut child) = guard.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.disarm();
    }
}

/// A temp dir that only fills the slot of a server being restarted.
fn placeholder_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create temp dir")
}

fn launch(
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
    args: Vec<String>,
    pg: Option<Arc<PgSchema>>,
) -> Server {
    let data_dir = root.path().join("data");
    let stderr_path = root.path().join("stderr.log");
    let stdout_path = root.path().join("stdout.log");
    let listen_json = data_dir.join("run").join("listen.json");
    // A restart must not read the previous process's listen.json.
    let _ = fs::remove_file(&listen_json);
    let open = |p: &Path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("open output file")
    };
    let mut cmd = Command::new(binary());
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .args(pg.as_ref().map(|pg| pg.flags()).unwrap_or_default())
        .args(&args);
    for (key, _) in std::env::vars() {
        if key.starts_with("STRONGROOM_") {
            cmd.env_remove(key);
        }
    }
    // Second factor off unless the caller turns it on (mfa.rs): with it, every staff login would
    // need a TOTP code, and replay protection allows one per 30-second step per user.
    cmd.env("STRONGROOM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("STRONGROOM_MFA_REQUIRED_FOR_STAFF", "false")
        .env("STRONGROOM_MFA_REQUIRED_FOR_TENANT_ADMINS", "false")
        // Every test logs in from 127.0.0.1, many failing on purpose against a shared server:
        // the count by address is exercised where it is set low (edge_limits.rs).
        .env("STRONGROOM_LOGIN_SOURCE_MAX_FAILURES", "100000")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(open(&stdout_path))
        .stderr(open(&stderr_path));
    let mut child = cmd.spawn().expect("spawn strongroom serve");
    let watchdog = spawn_watchdog(child.id(), root.path(), pg.as_deref());

    let fail = |child: &mut Child, why: String| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        let err = String::from_utf8_lossy(&fs::read(&stderr_path).unwrap_or_default()).into_owned();
        panic!("server start failed: {why}\n---- stderr ----\n{err}\n----");
    };

    let deadline = Instant::now() + START_TIMEOUT;
    let listen: Value = loop {
        if let Ok(Some(status)) = child.try_wait() {
            fail(&mut child, format!("process exited early with {status}"));
        }
        if let Ok(text) = fs::read_to_string(&listen_json)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            break v;
        }
        if Instant::now() > deadline {
            fail(&mut child, "no run/listen.json within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let addr = |key: &str| -> SocketAddr {
        listen[key]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("listen.json has no valid {key:?}: {listen}"))
    };
    let (api, ops) = (addr("api"), addr("ops"));
    let pid = listen["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_else(|| panic!("listen.json has no pid: {listen}"));
    assert_eq!(pid, child.id(), "listen.json pid is not the child's pid");

    loop {
        if let Ok(Some(status)) = child.try_wait() {
            fail(&mut child, format!("process exited early with {status}"));
        }
        if let Ok((200, body)) = plain_get(ops, "/healthz")
            && body.trim() == "ok"
        {
            break;
        }
        if Instant::now() > deadline {
            fail(&mut child, "/healthz not ok within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cert_pem = match fs::read(data_dir.join("tls").join("cert.pem")) {
        Ok(pem) => pem,
        Err(e) => fail(&mut child, format!("cannot read tls/cert.pem: {e}")),
    };
    Server {
        root,
        data_dir,
        stderr_path,
        stdout_path,
        api,
        ops,
        pid,
        env,
        args,
        cert_pem,
        child: Mutex::new(Some(child)),
        watchdog: Mutex::new(Some(watchdog)),
        pg,
    }
}

/// A shell that waits for EOF on stdin (our end closes when the test
/// process exits, however it exits), then kills the server and removes ROOT
/// (and, on PostgreSQL, drops the schema with `psql` when it is installed).
fn spawn_watchdog(pid: u32, root: &Path, pg: Option<&PgSchema>) -> Child {
    let (schema, url) = match pg {
        Some(pg) => (pg.name.clone(), super::pg_admin_url()),
        None => (String::new(), String::new()),
    };
    Command::new("sh")
        .arg("-c")
        .arg(concat!(
            "cat >/dev/null; kill -9 \"$0\" 2>/dev/null; rm -rf \"$1\"; ",
            "if [ -n \"$2\" ] && command -v psql >/dev/null; then sleep 1; ",
            "psql -q -d \"$3\" -c \"DROP SCHEMA IF EXISTS $2 CASCADE\" >/dev/null 2>&1; fi",
        ))
        .arg(pid.to_string())
        .arg(root)
        .arg(schema)
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watchdog")
}

/// A minimal HTTP/1.1 GET over plain TCP (the ops listener), returning the
/// status code and body.
pub fn plain_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {head:?}")))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A server shared by the tests of one module (started on first use).
/// The guard prints the server's stderr when the test using it fails.
pub struct Shared(&'static Server);

impl Deref for Shared {
    type Target = Server;
    fn deref(&self) -> &Server {
        self.0
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.0.stderr_tail(60));
        }
    }
}

/// Gets or starts the module's shared server.
pub fn shared(cell: &'static OnceLock<Server>, env: &[(&str, &str)]) -> Shared {
    Shared(cell.get_or_init(|| Server::start_with(env, &[])))
}

/// Runs `strongroom serve` on `data_dir` with `env`, expecting it to refuse to start within 30 s;
/// returns its stderr and stdout. Panics if it keeps running or exits successfully.
pub fn refused_serve(data_dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> (String, String) {
    let mut command = Command::new(binary());
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .env("STRONGROOM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn strongroom serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for serve") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve kept running where it had to refuse to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let mut out = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    assert!(!status.success(), "serve exited with {status}: {err}");
    (err, out)
}

/// A TLS connection to the server's API trusting only its certificate, for writing a request by
/// hand.
pub async fn raw_tls(server: &Server) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    try_raw_tls(server).await.unwrap()
}

/// [`raw_tls`], or why the connection or its handshake failed.
pub async fn try_raw_tls(
    server: &Server,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    try_raw_tls_from(server, None).await
}

/// [`try_raw_tls`] from the loopback address `from` (`127.0.0.2`: another client to the server).
pub async fn try_raw_tls_from(
    server: &Server,
    from: Option<std::net::IpAddr>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(server.cert_pem()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = match from {
        None => tokio::net::TcpStream::connect(server.api).await?,
        Some(from) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(std::net::SocketAddr::new(from, 0))?;
            socket.connect(server.api).await?
        }
    };
    let name = rustls_pki_types::ServerName::IpAddress(server.api.ip().into());
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
}
