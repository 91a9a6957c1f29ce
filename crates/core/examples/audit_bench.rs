//! Durable audit appends without HTTP, for docs/benchmarks.md:
//! `cargo run --release -p strongroom-core --example audit_bench -- [writers=256] [seconds=10] [store=sqlite]`
//!
//! W concurrent writers each append a typical read entry and wait for its durable acknowledgement
//! (group commit); a watcher measures how long after an acknowledgement a signed checkpoint covers it.
//!
//! `store` is where the log lives:
//! - `sqlite`: a real SQLite store in a temp dir (`synchronous=FULL`);
//! - `pg`: one `AuditLog` on a fresh PostgreSQL schema;
//! - `pg2`: two `AuditLog`s ("instances", each with its own connection pool, the same signing key)
//!   on the same fresh schema, the writers split evenly between them; their batches queue on the
//!   store's audit head, and a batch planned on a head the other instance moved is re-planned.
//!
//! PostgreSQL: the schema and the `AUDIT_BENCH_*` variables are described in `common/pg.rs`.
//! Each instance keeps its published checkpoint in a file, as the server does
//! (`AUDIT_BENCH_NO_WITNESS=1`: without it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::pg::Schema;
use common::{pct, record};
use strongroom_core::audit::{AuditLog, CheckpointWitness};
use strongroom_core::clock::SystemClock;
use strongroom_ledger::{NoteSigner, NoteVerifier};
use strongroom_store::{SqliteStore, Store};

const ORIGIN: &str = "bench/audit";

/// Each instance's published-checkpoint file, as the server keeps it; `AUDIT_BENCH_NO_WITNESS=1`
/// leaves it out, to measure what it costs.
fn witness(dir: &std::path::Path, instance: usize) -> Option<Arc<dyn CheckpointWitness>> {
    if std::env::var_os("AUDIT_BENCH_NO_WITNESS").is_some() {
        return None;
    }
    let path = dir.join(format!("published-{instance}.note"));
    Some(Arc::new(common::FileWitness(path)))
}

// ---------------------------------------------------------------------------------------------------
// The committer's own metrics, counted in-process (both instances together).

#[derive(Default)]
struct CommitMetrics {
    commits: AtomicU64,
    commit_micros: AtomicU64,
    entries: AtomicU64,
    failures: AtomicU64,
    /// Every commit's duration in µs, for its percentiles.
    durations: std::sync::Mutex<Vec<u64>>,
}

struct Hist(Arc<CommitMetrics>, &'static str);

impl metrics::HistogramFn for Hist {
    fn record(&self, value: f64) {
        match self.1 {
            "strongroom_audit_commit_seconds" => {
                self.0.commits.fetch_add(1, Ordering::Relaxed);
                self.0
                    .commit_micros
                    .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
                self.0.durations.lock().unwrap().push((value * 1e6) as u64);
            }
            "strongroom_audit_batch_entries" => {
                self.0.entries.fetch_add(value as u64, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl metrics::CounterFn for Hist {
    fn increment(&self, value: u64) {
        if self.1 == "strongroom_audit_commit_failures_total" {
            self.0.failures.fetch_add(value, Ordering::Relaxed);
        }
    }
    fn absolute(&self, _value: u64) {}
}

struct Recorder(Arc<CommitMetrics>);

impl Recorder {
    fn known(name: &str) -> &'static str {
        [
            "strongroom_audit_commit_seconds",
            "strongroom_audit_batch_entries",
            "strongroom_audit_commit_failures_total",
        ]
        .into_iter()
        .find(|k| *k == name)
        .unwrap_or("")
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let name = Self::known(key.name());
        metrics::Counter::from_arc(Arc::new(Hist(Arc::clone(&self.0), name)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        let name = Self::known(key.name());
        metrics::Histogram::from_arc(Arc::new(Hist(Arc::clone(&self.0), name)))
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let writers: u64 = args.first().map_or(256, |a| a.parse().unwrap());
    let seconds: u64 = args.get(1).map_or(10, |a| a.parse().unwrap());
    let kind = args.get(2).map_or("sqlite", String::as_str);
    let instances = match kind {
        "sqlite" | "pg" => 1,
        "pg2" => 2,
        other => panic!("store must be sqlite, pg or pg2, not {other:?}"),
    };

    let counts = Arc::new(CommitMetrics::default());
    metrics::set_global_recorder(Recorder(Arc::clone(&counts))).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let schema = (kind != "sqlite").then(Schema::from_env);

    let signer = NoteSigner::generate(ORIGIN).unwrap();
    let verifier: NoteVerifier = signer.verifier();
    let mut logs = Vec::new();
    for n in 0..instances {
        let store: Arc<dyn Store> = match &schema {
            None => Arc::new(
                SqliteStore::open(&dir.path().join("bench.db"), Duration::from_secs(5))
                    .await
                    .unwrap(),
            ),
            Some(s) => s.open_store().await,
        };
        let key = NoteSigner::from_bytes(ORIGIN, &signer.secret_bytes()).unwrap();
        let log = AuditLog::open(
            store,
            key,
            ORIGIN.into(),
            Arc::new(SystemClock::default()),
            4096,
            format!("bench-{}", n + 1),
            witness(dir.path(), n),
        )
        .await
        .unwrap();
        logs.push(log);
    }

    let head_before = schema.as_ref().map(Schema::head_stats);
    let (c0, us0, e0) = (
        counts.commits.load(Ordering::Relaxed),
        counts.commit_micros.load(Ordering::Relaxed),
        counts.entries.load(Ordering::Relaxed),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        // Writer w appends through instance w % N.
        let log = Arc::clone(&logs[(w as usize) % logs.len()]);
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut refused) = (Vec::new(), 0u64);
            let mut i = w << 32;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                // `audit_unavailable` (e.g. a batch that lost the head to the other instance
                // more often than the committer re-plans) is counted, not timed.
                match log.append(record(i)).await {
                    Ok(_) => lat.push(t.elapsed().as_secs_f64() * 1e3),
                    Err(_) => refused += 1,
                }
                i += 1;
            }
            (w as usize % instances, lat, refused)
        }));
    }
    // Checkpoint delay, seen from the first instance (the signer: it took the lease first):
    // sample its head after an acknowledgement, then time until a note covers it.
    let watcher = {
        let log = Arc::clone(&logs[0]);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut delays = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let target = log.head().size;
                let t = Instant::now();
                loop {
                    let cp = verifier.verify_checkpoint(&log.checkpoint()).unwrap();
                    if cp.size >= target {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                delays.push(t.elapsed().as_secs_f64() * 1e3);
                tokio::time::sleep(Duration::from_millis(37)).await;
            }
            delays
        })
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut per_instance = vec![0usize; instances];
    let mut refused_appends = 0;
    for t in tasks {
        let (n, l, r) = t.await.unwrap();
        per_instance[n] += l.len();
        refused_appends += r;
        lat.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut delays = watcher.await.unwrap();
    // Refused claims: head scans not explained by commits (also the signer's few size reads).
    let refused = schema.as_ref().zip(head_before).map(|(s, (scans0, upd0))| {
        let (scans, upd) = s.head_stats();
        (scans - scans0).saturating_sub(2 * (upd - upd0))
    });
    let commits = counts.commits.load(Ordering::Relaxed) - c0;
    let commit_ms = (counts.commit_micros.load(Ordering::Relaxed) - us0) as f64 / 1e3;
    let entries = counts.entries.load(Ordering::Relaxed) - e0;
    let all = counts.durations.lock().unwrap().clone();
    let mut durations: Vec<f64> = all[(c0 as usize).min(all.len())..]
        .iter()
        .map(|us| *us as f64 / 1e3)
        .collect();

    let store = match kind {
        "sqlite" => "SQLite",
        "pg" => "PostgreSQL, 1 instance",
        _ => "PostgreSQL, 2 instances",
    };
    println!(
        "| store | writers | durable appends/s | ack p50 | ack p99 | checkpoint delay p50 | checkpoint delay p99 |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {store} | {writers} | {:.0} | {:.2} ms | {:.2} ms | {:.0} ms | {:.0} ms |",
        lat.len() as f64 / elapsed,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.99)
    );
    println!();
    println!(
        "commits/s {:.0}, entries per commit {:.1}, mean commit {:.2} ms (p50 {:.2}, p99 {:.2}, max {:.2}), failed commits {} ({} appends refused), appends per instance {:?}, ≈ head claims refused/s {}",
        commits as f64 / elapsed,
        entries as f64 / commits.max(1) as f64,
        commit_ms / commits.max(1) as f64,
        pct(&mut durations, 0.5),
        pct(&mut durations, 0.99),
        pct(&mut durations, 1.0),
        counts.failures.load(Ordering::Relaxed),
        refused_appends,
        per_instance,
        refused.map_or("n/a".to_owned(), |r| format!("{:.0}", r as f64 / elapsed)),
    );
    // Stop the committers' connections before the schema is dropped.
    drop(logs);
}
