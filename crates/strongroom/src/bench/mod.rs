//! `strongroom bench`: drives a real server over HTTPS and reports throughput and latency.
//!
//! It starts `strongroom serve` on a throwaway data dir, loads contacts and cases through the public API
//! (so the data is exactly what production would hold), then runs fixed-length phases with C keep-alive
//! HTTP/1.1 connections, one client per task, like a fleet of independent callers. The load generator
//! shares the machine's cores with the server, so CPU shares are reported next to the figures.
//!
//! With `--database-url` the servers keep their data in a fresh PostgreSQL schema instead, and with
//! `--instances N` several servers share it; the connections are spread over them round robin.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::sleep_until;

mod load;
mod measure;
mod pg;
mod process;

use load::*;
use measure::*;
use pg::*;
use process::*;

const ADMIN_PASSWORD: &str = "Quiet harbour beacon 5823 lantern!";
const USER_PASSWORD: &str = "Umbrella quartz lantern 7 ridge!";
const STAFF_PURPOSE: &str = "case-resolution";
const CUSTOMER_PURPOSE: &str = "customer-self-service";
/// Linux reports process times in USER_HZ ticks, 100 per second on every mainstream architecture.
const TICKS_PER_SEC: f64 = 100.0;
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Contacts to load (each with one case assigned to the benchmark engineer).
    #[arg(long, default_value_t = 1000)]
    pub contacts: usize,
    /// Concurrent keep-alive connections per run.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Unmeasured seconds at the start of each run (TLS handshakes, caches).
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Runs to perform, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["ceiling", "read", "create"])]
    pub runs: Vec<RunKind>,
    /// Keep the temporary data dirs, the servers' output and the PostgreSQL schema (printed on stderr).
    #[arg(long)]
    pub keep: bool,
    /// Run the servers on PostgreSQL, connecting as this URL's role (NOSUPERUSER NOBYPASSRLS),
    /// e.g. postgres://strongroom_app@127.0.0.1:5432/test. Needs `psql` on the PATH.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The schema to create for the run (must not exist); a fresh bench_* name by default.
    #[arg(long, requires = "database_url")]
    pub database_schema: Option<String>,
    /// The URL `psql` uses to create the role (if missing) and the schema, and to drop the schema.
    #[arg(
        long,
        requires = "database_url",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_admin_url: String,
    /// Servers sharing the PostgreSQL schema (the 2nd and later with copies of the first one's keys).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Size of the file the upload and download runs send and fetch, in KiB. The servers scan
    /// with whatever `STRONGROOM_ATTACHMENT_SCANNER` this process has (built-in by default).
    #[arg(long, default_value_t = 256)]
    pub file_kib: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunKind {
    /// GET /v1/me as the engineer: authentication and the HTTP stack, no data.
    Ceiling,
    /// GET a contact as the engineer with a purpose: policy, decryption, masking, audit.
    Read,
    /// POST a contact as the tenant admin: encryption, blind index, durable write, audit.
    Create,
    /// POST a file to a case as the tenant admin: base64, malware scan, sealing, durable write.
    Upload,
    /// GET a file's content as the engineer: policy, opening, a second scan, audit.
    Download,
}

impl RunKind {
    fn label(self) -> &'static str {
        match self {
            RunKind::Ceiling => "ceiling: GET /v1/me",
            RunKind::Read => "protected read: GET contact (masked)",
            RunKind::Create => "durable create: POST contact",
            RunKind::Upload => "upload: POST file to a case",
            RunKind::Download => "download: GET file content (rescanned)",
        }
    }
}

pub async fn run(args: BenchArgs) -> Result<()> {
    if args.contacts == 0 || args.connections == 0 || args.seconds == 0 || args.file_kib == 0 {
        bail!("--contacts, --connections, --seconds and --file-kib must be at least 1");
    }
    if args.instances == 0 {
        bail!("--instances must be at least 1");
    }
    if args.instances > 1 && args.database_url.is_none() {
        bail!("--instances above 1 needs --database-url: instances share one PostgreSQL schema");
    }
    // Declared before the servers, so it is dropped after they have stopped.
    let schema = match &args.database_url {
        Some(url) => Some(PgSchema::create(
            url,
            args.database_schema.as_deref(),
            &args.database_admin_url,
            args.keep,
        )?),
        None => None,
    };
    if let Some(s) = &schema {
        eprintln!("bench: PostgreSQL schema {}", s.name);
    }
    let mut servers: Vec<ServerProcess> = Vec::with_capacity(args.instances);
    for i in 0..args.instances {
        let keys = servers.first().map(|s| s.root.join("data/keys"));
        let server = ServerProcess::start(args.keep, schema.as_ref(), keys.as_deref()).await?;
        eprintln!(
            "bench: server {} pid {} on {} (data {})",
            i + 1,
            server.pid,
            server.api,
            server.root.display()
        );
        servers.push(server);
    }
    let outcome = drive(&args, &servers, schema.as_ref()).await;
    let stops: Vec<Result<ExitStatus>> = servers.iter_mut().map(|s| s.terminate()).collect();
    let results = outcome?;
    print!("{}", report(&args, schema.as_ref(), &results));
    println!();
    for (i, stop) in stops.into_iter().enumerate() {
        match stop? {
            status if status.success() => println!("Server {} stopped cleanly on SIGTERM.", i + 1),
            status => println!("Server {} exit on SIGTERM: {status}.", i + 1),
        }
    }
    Ok(())
}

async fn drive(
    args: &BenchArgs,
    servers: &[ServerProcess],
    schema: Option<&PgSchema>,
) -> Result<Vec<RunResult>> {
    let fixture = Arc::new(setup(args, servers).await?);
    let mut results = Vec::with_capacity(args.runs.len());
    for &kind in &args.runs {
        eprintln!(
            "bench: {} for {}+{} s with {} connections",
            kind.label(),
            args.warmup,
            args.seconds,
            args.connections
        );
        results.push(run_phase(kind, args, servers, schema, &fixture).await?);
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------------
// Loading the data set through the API.

/// The setup client: a shared pool (HTTP/2 where offered), errors carry the response body.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, rb: reqwest::RequestBuilder, what: &str) -> Result<Value> {
        let resp = rb.send().await.with_context(|| what.to_owned())?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| format!("{what}: body"))?;
        if !status.is_success() {
            bail!("{what}: {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: body is not JSON"))
    }

    async fn get(&self, path: &str, token: &str, purpose: Option<&str>) -> Result<Value> {
        let mut rb = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(p) = purpose {
            rb = rb.header("Access-Purpose", p);
        }
        self.send(rb, &format!("GET {path}")).await
    }

    /// POST with a JSON body; an empty `token` sends no credentials.
    async fn post(
        &self,
        path: &str,
        token: &str,
        purpose: Option<&str>,
        body: Value,
    ) -> Result<Value> {
        let mut rb = self.http.post(format!("{}{path}", self.base)).json(&body);
        if !token.is_empty() {
            rb = rb.bearer_auth(token);
        }
        if let Some(p) = purpose {
            rb = rb.header("Access-Purpose", p);
        }
        self.send(rb, &format!("POST {path}")).await
    }

    /// Logs in; returns the token and the user id.
    async fn login(&self, username: &str, password: &str) -> Result<(String, String)> {
        let body = json!({"username": username, "password": password});
        let v = self.post("/v1/auth/login", "", None, body).await?;
        Ok((str_field(&v, "token")?, str_field(&v["user"], "id")?))
    }

    async fn create_user(
        &self,
        admin: &str,
        name: &str,
        role: &str,
        tenant: Option<&str>,
    ) -> Result<()> {
        let mut body = json!({"username": name, "display_name": name, "password": USER_PASSWORD});
        body["roles"] = json!([role]);
        if let Some(t) = tenant {
            body["tenant_id"] = json!(t);
        }
        self.post("/v1/users", admin, None, body).await.map(drop)
    }

    /// Staff must accept the current confidentiality agreement before any content access.
    async fn acknowledge(&self, token: &str) -> Result<()> {
        let version = str_field(
            &self.get("/v1/confidentiality", token, None).await?,
            "version",
        )?;
        let body = json!({"version": version});
        self.post("/v1/me/confidentiality", token, None, body)
            .await
            .map(drop)
    }

    /// The tree size of the latest signed checkpoint (second line of the note).
    async fn audit_size(&self) -> Result<u64> {
        let resp = self
            .http
            .get(format!("{}/v1/audit/checkpoint", self.base))
            .send()
            .await?;
        let text = resp.error_for_status()?.text().await?;
        let size = text.lines().nth(1).and_then(|l| l.trim().parse().ok());
        size.ok_or_else(|| anyhow!("checkpoint has no size line"))
    }
}

fn str_field(v: &Value, key: &str) -> Result<String> {
    let s = v[key].as_str().map(str::to_owned);
    s.ok_or_else(|| anyhow!("response has no string {key:?}"))
}

/// One server the load connections may use: its API base URL and its certificate.
struct Target {
    base: String,
    cert_pem: Vec<u8>,
    endpoint: Endpoint,
}

/// Everything the load phases need: the servers, the tokens and the paths they ask for.
struct Fixture {
    /// The first instance, which loaded the data.
    api: Api,
    /// Every instance; connection `i` uses `targets[i % len]`.
    targets: Vec<Target>,
    engineer: String,
    tenant_admin: String,
    /// `/v1/tenants/{tenant}/contacts/{id}` of every loaded contact, in the read run's order.
    contact_paths: Vec<String>,
    /// `/v1/tenants/{tenant}/contacts`, where the create run posts.
    contacts_path: String,
    /// Where the upload run posts (the first case's files), and the JSON it posts.
    files_path: String,
    upload_body: hyper::body::Bytes,
    /// `…/attachments/{id}/content` of the files the download run fetches.
    file_paths: Vec<String>,
}

/// Files uploaded at set-up for the download run to fetch.
const FILES_TO_FETCH: usize = 16;

/// A file of `kib` KiB that no scanner flags (text that varies along its length), as the upload
/// JSON.
fn upload_body(kib: usize) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let mut file = String::with_capacity(kib * 1024 + 64);
    let mut line = 0u64;
    while file.len() < kib * 1024 {
        let _ = writeln!(
            file,
            "2026-12-07T01:00:00Z worker-{} request {line} ok",
            line % 7
        );
        line += 1;
    }
    file.truncate(kib * 1024);
    let content = base64::engine::general_purpose::STANDARD.encode(file);
    serde_json::to_vec(
        &json!({"name": "bench.log", "media_type": "text/plain", "content": content}),
    )
    .context("upload body")
}

fn contact_body(i: u64) -> Value {
    json!({
        "name": format!("Bench Contact {i}"),
        "email": format!("contact{i}@bench.example"),
        "phone": format!("+44 20 7946 {:04}", i % 10_000),
        "address": format!("{i} Benchmark Street, London"),
        "notes": format!("Prefers e-mail; bench record {i}."),
    })
}

/// One contact, one case referencing it, assigned to the engineer; returns the contact's and the
/// case's ids.
async fn load_one(
    api: &Api,
    tenant: &str,
    owner: &str,
    sup: &str,
    eng_id: &str,
    i: u64,
) -> Result<(String, String)> {
    let base = format!("/v1/tenants/{tenant}");
    let c = api
        .post(
            &format!("{base}/contacts"),
            owner,
            Some(CUSTOMER_PURPOSE),
            contact_body(i),
        )
        .await?;
    let contact_id = str_field(&c, "id")?;
    let case = json!({"title": format!("Bench case {i}"), "description": "Cannot log in.", "contact_id": contact_id});
    let case = api
        .post(
            &format!("{base}/cases"),
            owner,
            Some(CUSTOMER_PURPOSE),
            case,
        )
        .await?;
    let case_id = str_field(&case, "id")?;
    let assign = format!("{base}/cases/{case_id}/assign");
    api.post(
        &assign,
        sup,
        Some(STAFF_PURPOSE),
        json!({"user_id": eng_id}),
    )
    .await?;
    Ok((contact_id, case_id))
}

async fn setup(args: &BenchArgs, servers: &[ServerProcess]) -> Result<Fixture> {
    let started = Instant::now();
    let targets = servers
        .iter()
        .map(|s| {
            Ok(Target {
                base: format!("https://{}", s.api),
                cert_pem: s.cert_pem.clone(),
                endpoint: Endpoint::new(&s.api, &s.cert_pem)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let first = targets.first().ok_or_else(|| anyhow!("no server"))?;
    let api = Api {
        http: client(&first.cert_pem)?,
        base: first.base.clone(),
    };
    let (admin, _) = api
        .login("admin", ADMIN_PASSWORD)
        .await
        .context("admin login")?;
    let tenant = api
        .post("/v1/tenants", &admin, None, json!({"name": "Bench Tenant"}))
        .await?;
    let tenant = str_field(&tenant, "id")?;
    api.create_user(&admin, "bench-owner", "tenant_admin", Some(&tenant))
        .await?;
    api.create_user(&admin, "bench-supervisor", "support_supervisor", None)
        .await?;
    api.create_user(&admin, "bench-engineer", "support_engineer", None)
        .await?;
    let (owner, _) = api.login("bench-owner", USER_PASSWORD).await?;
    let (supervisor, _) = api.login("bench-supervisor", USER_PASSWORD).await?;
    let (engineer, engineer_id) = api.login("bench-engineer", USER_PASSWORD).await?;
    api.acknowledge(&supervisor).await?;
    api.acknowledge(&engineer).await?;

    let workers = args.contacts.min(16);
    let mut set = JoinSet::new();
    for w in 0..workers {
        let (api, tenant, owner) = (api.clone(), tenant.clone(), owner.clone());
        let (sup, eng, n) = (supervisor.clone(), engineer_id.clone(), args.contacts);
        set.spawn(async move {
            let mut ids = Vec::new();
            for i in (w..n).step_by(workers) {
                ids.push(load_one(&api, &tenant, &owner, &sup, &eng, i as u64).await?);
            }
            Ok::<_, anyhow::Error>(ids)
        });
    }
    let mut loaded = Vec::with_capacity(args.contacts);
    while let Some(joined) = set.join_next().await {
        loaded.extend(joined.context("loader task")??);
    }
    let (contacts, cases): (Vec<String>, Vec<String>) = loaded.into_iter().unzip();
    let (n, secs) = (contacts.len(), started.elapsed().as_secs_f64());
    eprintln!("bench: loaded {n} contacts, {n} cases and {n} assignments in {secs:.1} s");

    // The read run must measure the masked shape, not an error or a full reveal.
    let first = contacts
        .first()
        .ok_or_else(|| anyhow!("no contacts loaded"))?;
    let path = format!("/v1/tenants/{tenant}/contacts/{first}");
    let seen = api.get(&path, &engineer, Some(STAFF_PURPOSE)).await?;
    let access = &seen["_access"];
    if access["masked"] != json!(["phone", "address"]) || access["withheld"] != json!(["notes"]) {
        bail!("the engineer's view of a contact is not the expected masked shape: {access}");
    }
    // Every other instance must serve the same data to the same tokens.
    for t in targets.iter().skip(1) {
        let other = Api {
            http: client(&t.cert_pem)?,
            base: t.base.clone(),
        };
        let seen = other.get(&path, &engineer, Some(STAFF_PURPOSE)).await;
        let seen = seen.with_context(|| format!("reading through {}", t.base))?;
        if seen["_access"] != *access {
            bail!(
                "{} shows the contact differently: {}",
                t.base,
                seen["_access"]
            );
        }
    }
    let upload = upload_body(args.file_kib)?;
    let first_case = cases.first().ok_or_else(|| anyhow!("no cases loaded"))?;
    let files_path = format!("/v1/tenants/{tenant}/cases/{first_case}/attachments");
    let mut file_paths = Vec::with_capacity(FILES_TO_FETCH);
    if args.runs.contains(&RunKind::Download) {
        for case in cases.iter().cycle().take(FILES_TO_FETCH) {
            let files = format!("/v1/tenants/{tenant}/cases/{case}/attachments");
            let body: Value = serde_json::from_slice(&upload)?;
            let made = api
                .post(&files, &owner, Some(CUSTOMER_PURPOSE), body)
                .await?;
            file_paths.push(format!("{files}/{}/content", str_field(&made, "id")?));
        }
        // The download run must measure the file itself, not a refusal.
        let first_file = file_paths
            .first()
            .ok_or_else(|| anyhow!("no file uploaded"))?;
        let fetched = api
            .http
            .get(format!("{}{first_file}", api.base))
            .bearer_auth(&engineer)
            .header("Access-Purpose", STAFF_PURPOSE)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        if fetched.len() != args.file_kib * 1024 {
            bail!(
                "the engineer's download of a file is {} bytes",
                fetched.len()
            );
        }
    }
    Ok(Fixture {
        api,
        targets,
        engineer,
        tenant_admin: owner,
        contact_paths: contacts
            .iter()
            .map(|id| format!("/v1/tenants/{tenant}/contacts/{id}"))
            .collect(),
        contacts_path: format!("/v1/tenants/{tenant}/contacts"),
        files_path,
        upload_body: upload.into(),
        file_paths,
    })
}
