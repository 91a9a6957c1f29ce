//! Load phases, CPU accounting and the report.

use super::*;
use hyper::Method;

// ---------------------------------------------------------------------------------------------------
// Load phases.

pub(super) struct RunResult {
    pub(super) kind: RunKind,
    pub(super) seconds: f64,
    /// Latencies of measured requests, microseconds, sorted.
    pub(super) latencies: Vec<u32>,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) audit_delta: Option<u64>,
    pub(super) cpu: CpuShares,
    /// Audit group commits across all instances during the measured window (from `/metrics`).
    pub(super) commits: Option<CommitStats>,
    /// Audit head claims refused during the window because another instance had moved the head
    /// (each costs the batch a re-plan; PostgreSQL only, from table statistics, approximate).
    pub(super) refused: Option<u64>,
}

/// Deltas of the audit committer's histograms, summed over the instances.
#[derive(Clone, Copy, Default)]
pub(super) struct CommitStats {
    pub(super) commits: f64,
    pub(super) commit_seconds: f64,
    pub(super) entries: f64,
    pub(super) failures: f64,
}

impl CommitStats {
    async fn sample(servers: &[ServerProcess]) -> Option<Self> {
        let mut total = Self::default();
        for s in servers {
            let page = scrape(&s.ops).await?;
            total.commits +=
                metric_sum(&page, "strongroom_audit_commit_seconds_count").unwrap_or(0.0);
            total.commit_seconds +=
                metric_sum(&page, "strongroom_audit_commit_seconds_sum").unwrap_or(0.0);
            total.entries += metric_sum(&page, "strongroom_audit_batch_entries_sum").unwrap_or(0.0);
            total.failures +=
                metric_sum(&page, "strongroom_audit_commit_failures_total").unwrap_or(0.0);
        }
        Some(total)
    }

    fn delta(after: Self, before: Self) -> Self {
        Self {
            commits: after.commits - before.commits,
            commit_seconds: after.commit_seconds - before.commit_seconds,
            entries: after.entries - before.entries,
            failures: after.failures - before.failures,
        }
    }
}

#[derive(Default)]
pub(super) struct TaskStats {
    pub(super) latencies: Vec<u32>,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
}

pub(super) async fn run_phase(
    kind: RunKind,
    args: &BenchArgs,
    servers: &[ServerProcess],
    schema: Option<&PgSchema>,
    fx: &Arc<Fixture>,
) -> Result<RunResult> {
    let counter = Arc::new(AtomicU64::new(0));
    // Round robin: connection i talks to instance i % N for the whole run.
    let mut connections = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let t = fx
            .targets
            .get(i % fx.targets.len().max(1))
            .ok_or_else(|| anyhow!("no server"))?;
        connections.push(t.endpoint.connect().await?);
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.pid).collect();
    let pg = schema.is_some();
    let start = tokio::time::Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.seconds);

    let mut set = JoinSet::new();
    for mut connection in connections {
        let (fx, counter) = (Arc::clone(fx), Arc::clone(&counter));
        set.spawn(async move {
            let mut stats = TaskStats::default();
            loop {
                let t0 = tokio::time::Instant::now();
                if t0 >= end {
                    break;
                }
                let outcome = one_request(kind, &mut connection, &fx, &counter).await;
                if t0 >= measure_from {
                    let micros = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
                    stats.latencies.push(micros);
                    if let Err(e) = outcome {
                        stats.errors += 1;
                        stats.first_error.get_or_insert(e);
                    }
                }
            }
            stats
        });
    }

    // Sample the audit tree size and CPU counters at the edges of the measured window.
    sleep_until(measure_from).await;
    let audit_before = fx.api.audit_size().await.ok();
    let commits_before = CommitStats::sample(servers).await;
    let head_before = schema.and_then(PgSchema::head_stats);
    let cpu_before = cpu_sample(&pids, pg);
    let window_start = tokio::time::Instant::now();
    sleep_until(end).await;
    let cpu_after = cpu_sample(&pids, pg);
    let elapsed = (tokio::time::Instant::now() - window_start).as_secs_f64();
    let head_after = schema.and_then(PgSchema::head_stats);
    let commits_after = CommitStats::sample(servers).await;
    let audit_after = fx.api.audit_size().await.ok();

    let mut merged = TaskStats::default();
    while let Some(joined) = set.join_next().await {
        let s = joined.context("load task")?;
        merged.latencies.extend(s.latencies);
        merged.errors += s.errors;
        if merged.first_error.is_none() {
            merged.first_error = s.first_error;
        }
    }
    merged.latencies.sort_unstable();
    Ok(RunResult {
        kind,
        seconds: args.seconds as f64,
        latencies: merged.latencies,
        errors: merged.errors,
        first_error: merged.first_error,
        audit_delta: audit_before
            .zip(audit_after)
            .map(|(a, b)| b.saturating_sub(a)),
        cpu: cpu_shares(cpu_before, cpu_after, elapsed),
        commits: commits_before
            .zip(commits_after)
            .map(|(b, a)| CommitStats::delta(a, b)),
        refused: head_before
            .zip(head_after)
            .map(|(b, a)| HeadStats::refused_between(b, a)),
    })
}

/// Sends the run's next request on `connection` and reads the whole response.
pub(super) async fn one_request(
    kind: RunKind,
    connection: &mut LoadConnection,
    fx: &Fixture,
    counter: &AtomicU64,
) -> Result<(), String> {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let request = match kind {
        RunKind::Ceiling => LoadRequest {
            method: Method::GET,
            path: "/v1/me",
            bearer: &fx.engineer,
            purpose: None,
            json: None,
        },
        RunKind::Read => engineer_reads(&fx.contact_paths, n, fx),
        RunKind::Create => LoadRequest {
            method: Method::POST,
            path: &fx.contacts_path,
            bearer: &fx.tenant_admin,
            purpose: Some(CUSTOMER_PURPOSE),
            json: Some(
                serde_json::to_vec(&contact_body(1_000_000 + n))
                    .map_err(|e| e.to_string())?
                    .into(),
            ),
        },
        RunKind::Upload => LoadRequest {
            method: Method::POST,
            path: &fx.files_path,
            bearer: &fx.tenant_admin,
            purpose: Some(CUSTOMER_PURPOSE),
            json: Some(fx.upload_body.clone()),
        },
        RunKind::Download => engineer_reads(&fx.file_paths, n, fx),
    };
    connection.send(request).await
}

/// The engineer's GET of the `n`th of `paths` (round robin), with a purpose.
fn engineer_reads<'a>(paths: &'a [String], n: u64, fx: &'a Fixture) -> LoadRequest<'a> {
    let len = paths.len().max(1) as u64;
    LoadRequest {
        method: Method::GET,
        path: paths
            .get((n % len) as usize)
            .map(String::as_str)
            .unwrap_or_default(),
        bearer: &fx.engineer,
        purpose: Some(STAFF_PURPOSE),
        json: None,
    }
}

// ---------------------------------------------------------------------------------------------------
// CPU accounting from /proc: who used the cores during a run.

/// Ticks used so far by the servers, this process, all CPUs together, and PostgreSQL (when used).
pub(super) fn cpu_sample(server_pids: &[u32], pg: bool) -> [Option<u64>; 4] {
    let server = server_pids
        .iter()
        .map(|pid| proc_ticks(&format!("/proc/{pid}/stat")))
        .sum::<Option<u64>>();
    let postgres = if pg { postgres_ticks() } else { Some(0) };
    [
        server,
        proc_ticks("/proc/self/stat"),
        system_busy(),
        postgres,
    ]
}

/// utime + stime of a process (fields 14 and 15; the command name may contain spaces, so split after ')').
pub(super) fn proc_ticks(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy ticks of all CPUs: user, nice, system, irq, softirq, steal.
pub(super) fn system_busy() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    Some([0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum())
}

/// Cores used (CPU-seconds per second) by the servers, the load generator, PostgreSQL and
/// everything else.
#[derive(Clone, Copy, Default)]
pub(super) struct CpuShares {
    pub(super) server: Option<f64>,
    pub(super) bench: Option<f64>,
    pub(super) postgres: Option<f64>,
    pub(super) other: Option<f64>,
}

pub(super) fn cpu_shares(a: [Option<u64>; 4], b: [Option<u64>; 4], secs: f64) -> CpuShares {
    let rate = |i: usize| Some(b[i]?.saturating_sub(a[i]?) as f64 / TICKS_PER_SEC / secs.max(1e-9));
    let (server, bench, busy, postgres) = (rate(0), rate(1), rate(2), rate(3));
    let other = (|| Some((busy? - server? - bench? - postgres?).max(0.0)))();
    CpuShares {
        server,
        bench,
        postgres,
        other,
    }
}

// ---------------------------------------------------------------------------------------------------
// Report.

pub(super) fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted
        .get(rank - 1)
        .copied()
        .map_or(f64::NAN, |us| f64::from(us) / 1000.0)
}

impl RunResult {
    pub(super) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }
}

pub(super) fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

pub(super) fn report(args: &BenchArgs, schema: Option<&PgSchema>, results: &[RunResult]) -> String {
    let mut out = String::new();
    let store = match schema {
        Some(s) => format!(
            "PostgreSQL schema {} with {} instance(s), connections round robin",
            s.name, args.instances
        ),
        None => "SQLite in the data dir, 1 instance".to_owned(),
    };
    let _ = writeln!(
        out,
        "\n{store}; {} contacts, {} connections (HTTP/1.1 keep-alive, TLS), {} s measured after {} s warm-up per run.\n",
        args.contacts, args.connections, args.seconds, args.warmup
    );
    let _ = writeln!(
        out,
        "| run | requests/s | p50 ms | p99 ms | p99.9 ms | errors | audit entries/s | server cores | postgres cores | bench cores | other cores | server CPU µs/req |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in results {
        let rate = r.rate();
        let audit = r.audit_delta.map(|d| d as f64 / r.seconds);
        let per_req = r.cpu.server.map(|c| c * 1e6 / rate.max(1e-9));
        let postgres = if schema.is_some() {
            r.cpu.postgres
        } else {
            None
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
            r.kind.label(),
            rate,
            percentile_ms(&r.latencies, 0.50),
            percentile_ms(&r.latencies, 0.99),
            percentile_ms(&r.latencies, 0.999),
            r.errors,
            fmt_opt(audit, 0),
            fmt_opt(r.cpu.server, 2),
            fmt_opt(postgres, 2),
            fmt_opt(r.cpu.bench, 2),
            fmt_opt(r.cpu.other, 2),
            fmt_opt(per_req, 0),
        );
    }
    let _ = writeln!(
        out,
        "\n| run | audit commits/s | entries per commit | mean commit ms | commit failures | ≈ head claims refused/s |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    for r in results {
        let c = r.commits;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.kind.label(),
            fmt_opt(c.map(|c| c.commits / r.seconds), 0),
            fmt_opt(
                c.filter(|c| c.commits > 0.0).map(|c| c.entries / c.commits),
                1
            ),
            fmt_opt(
                c.filter(|c| c.commits > 0.0)
                    .map(|c| 1e3 * c.commit_seconds / c.commits),
                2
            ),
            fmt_opt(c.map(|c| c.failures), 0),
            fmt_opt(r.refused.map(|n| n as f64 / r.seconds), 0),
        );
    }
    let find = |k: RunKind| results.iter().find(|r| r.kind == k);
    if let (Some(read), Some(ceiling)) = (find(RunKind::Read), find(RunKind::Ceiling)) {
        let _ = writeln!(
            out,
            "\nProtected read / ceiling: {:.1} %",
            100.0 * read.rate() / ceiling.rate().max(1e-9)
        );
    }
    for r in results
        .iter()
        .filter(|r| matches!(r.kind, RunKind::Upload | RunKind::Download))
    {
        let _ = writeln!(
            out,
            "\n{}: {:.1} MiB/s of {} KiB files",
            r.kind.label(),
            r.rate() * args.file_kib as f64 / 1024.0,
            args.file_kib
        );
    }
    for r in results {
        if let Some(e) = &r.first_error {
            let _ = writeln!(out, "\nFirst error in {}: {e}", r.kind.label());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.50), 500.0);
        assert_eq!(percentile_ms(&v, 0.99), 990.0);
        assert_eq!(percentile_ms(&v, 0.999), 999.0);
        assert_eq!(percentile_ms(&[7000], 0.999), 7.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }

    #[test]
    fn proc_ticks_reads_own_process() {
        assert!(proc_ticks("/proc/self/stat").is_some());
        assert!(system_busy().is_some());
    }
}
