//! Durable audit appends without HTTP, for docs/benchmarks.md:
//! `cargo run --release -p strongroom-core --example audit_bench -- [writers=256] [seconds=10]`
//!
//! W concurrent writers each append a typical read entry and wait for its durable acknowledgement
//! (group commit on a real SQLite store in a temp dir, `synchronous=FULL`); a watcher measures how long
//! after an acknowledgement a signed checkpoint covers it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strongroom_core::audit::{Actor, AuditLog, AuditRecord, ResourceRef};
use strongroom_core::clock::SystemClock;
use strongroom_ledger::{NoteSigner, NoteVerifier};
use strongroom_store::SqliteStore;

fn record(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new("contact.read", &format!("{i:032x}"));
    r.actor = Some(Actor {
        user_id: "01a2083e18bd71d9824d6440aefd514e".into(),
        roles: vec!["support_engineer".into()],
    });
    r.tenant_id = Some("01a2083e19fd73a9820ec21a7edabdd7".into());
    r.resource = Some(ResourceRef {
        kind: "contact",
        id: Some("01a2083e1a3d7564b383e9061bec5c53".into()),
    });
    r.fields_requested = vec!["name", "email", "phone", "address", "notes"];
    r.fields_disclosed = vec!["name", "email"];
    r.fields_masked = vec!["phone", "address"];
    r.purpose = Some("case-resolution");
    r.policy_ids = vec!["role.support_engineer.read".into()];
    r
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let writers = args.first().copied().unwrap_or(256);
    let seconds = args.get(1).copied().unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"), Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let signer = NoteSigner::generate("bench/audit").unwrap();
    let verifier: NoteVerifier = signer.verifier();
    let log = AuditLog::open(
        store,
        signer,
        "bench/audit".into(),
        Arc::new(SystemClock::default()),
        4096,
        "bench".into(),
    )
    .await
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = Arc::clone(&log);
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w << 32;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                log.append(record(i)).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                i += 1;
            }
            lat
        }));
    }
    // Checkpoint delay: sample the head after an acknowledgement, then time until a note covers it.
    let watcher = {
        let log = Arc::clone(&log);
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
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let mut delays = watcher.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "| writers | durable appends/s | ack p50 | ack p99 | checkpoint delay p50 | checkpoint delay p99 |"
    );
    println!("|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {writers} | {:.0} | {:.2} ms | {:.2} ms | {:.0} ms | {:.0} ms |",
        lat.len() as f64 / elapsed,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.99)
    );
}
