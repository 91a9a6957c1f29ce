//! Inclusion and consistency proofs served from the store, for docs/benchmarks.md:
//! `cargo run --release -p strongroom-core --example proof_bench -- [entries=1000000] [samples=2000] [store=sqlite] [rounds=5]`
//!
//! `store` is `sqlite` (a temp dir) or `pg` (a fresh PostgreSQL schema, see `common/pg.rs`).
//! Fills a real store with `entries` audit entries through the group-committing log (512
//! writers), then times `AuditLog::inclusion_proof` and `consistency_proof` at random positions
//! against the full tree (consistency from a random earlier signed checkpoint): each is O(log n)
//! node reads from the store, never a rebuild. Every proof is checked with the ledger's verifier.
//!
//! Then, in the same run, full verification as `strongroom audit verify --data-dir` does it
//! (`verify_store`: every entry re-hashed, every stored tree node and every signed checkpoint
//! checked), next to plain SHA-256 over the same entry bytes, read from the same store: `rounds`
//! times each, alternating, with the medians and the median of the rounds' ratios reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::pg::Schema;
use sha2::{Digest, Sha256};
use strongroom_core::audit::{AuditLog, AuditRecord, verify_store};
use strongroom_core::clock::SystemClock;
use strongroom_ledger::{Hash, NoteSigner, verify_consistency, verify_inclusion};
use strongroom_store::{SqliteStore, Store};

const ORIGIN: &str = "bench/proofs";

fn hash(b64: &str) -> Hash {
    STANDARD.decode(b64).unwrap().try_into().unwrap()
}

/// xorshift64*: reproducible positions without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let entries: u64 = args.first().map_or(1_000_000, |a| a.parse().unwrap());
    let samples: u64 = args.get(1).map_or(2_000, |a| a.parse().unwrap());
    let schema = match args.get(2).map_or("sqlite", String::as_str) {
        "sqlite" => None,
        "pg" => Some(Schema::from_env()),
        other => panic!("store must be sqlite or pg, not {other:?}"),
    };
    let rounds: usize = args.get(3).map_or(5, |a| a.parse().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("proofs.db");
    let store: Arc<dyn Store> = match &schema {
        None => Arc::new(
            SqliteStore::open(&db, Duration::from_secs(5))
                .await
                .unwrap(),
        ),
        Some(s) => s.open_store().await,
    };
    let signer = NoteSigner::generate(ORIGIN).unwrap();
    let verifier = signer.verifier();
    let log = AuditLog::open(
        Arc::clone(&store),
        signer,
        ORIGIN.into(),
        Arc::new(SystemClock::default()),
        4096,
        "proof-bench".into(),
        None,
    )
    .await
    .unwrap();

    let filled = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..512 {
        let log = Arc::clone(&log);
        let issued = Arc::clone(&issued);
        writers.push(tokio::spawn(async move {
            loop {
                let i = issued.fetch_add(1, Ordering::Relaxed);
                if i >= entries {
                    return;
                }
                let mut r = AuditRecord::new("contact.read", &format!("{i:032x}"));
                r.tenant_id = Some("01a2083e19fd73a9820ec21a7edabdd7".into());
                log.append(r).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let fill_secs = filled.elapsed().as_secs_f64();
    let (_, checkpoint) = log
        .checkpoint_covering(entries - 1, Duration::from_secs(30))
        .await
        .unwrap();
    let size = checkpoint.size;
    let db_bytes = match &schema {
        None => std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0),
        Some(s) => s.size_bytes(),
    };

    let earlier: Vec<(u64, Hash)> = store
        .checkpoints()
        .await
        .unwrap()
        .iter()
        .map(|row| verifier.verify_checkpoint(&row.note).unwrap())
        .filter(|c| c.size > 0 && c.size < size)
        .map(|c| (c.size, c.root))
        .collect();
    assert!(
        !earlier.is_empty(),
        "no earlier checkpoint to prove consistency from"
    );
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut inclusion = Vec::with_capacity(samples as usize);
    let mut consistency = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let index = next(&mut state) % size;
        let started = Instant::now();
        let proof = log.inclusion_proof(index, size).await.unwrap();
        inclusion.push(started.elapsed());
        let path: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
        verify_inclusion(
            index,
            size,
            &hash(&proof.leaf_hash),
            &path,
            &checkpoint.root,
        )
        .unwrap();

        // Consistency from a random earlier signed checkpoint, so the old root is known.
        let (from, old_root) = earlier[usize::try_from(next(&mut state)).unwrap() % earlier.len()];
        let started = Instant::now();
        let proof = log.consistency_proof(from, size).await.unwrap();
        consistency.push(started.elapsed());
        let path: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
        verify_consistency(from, size, &old_root, &checkpoint.root, &path).unwrap();
    }
    // Full verification, then raw SHA-256 over the same bytes (only the hashing is timed), in
    // alternating rounds: the host's load moves both alike.
    drop(log);
    let (mut verify_rates, mut raw_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut report = None;
    let mut hashed = 0u64;
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    for round in 1..=rounds {
        let cpu_before = process_cpu_seconds();
        let verified = verify_store(store.as_ref(), &verifier).await.unwrap();
        let busy = (process_cpu_seconds() - cpu_before) / verified.elapsed.as_secs_f64() / cores;
        assert!(verified.entries >= size);
        let (raw, entries_hashed, bytes) = raw_sha256(store.as_ref()).await;
        assert_eq!(bytes, verified.bytes_hashed);
        let verify_rate = verified.entries as f64 / verified.elapsed.as_secs_f64();
        let raw_rate = entries_hashed as f64 / raw.as_secs_f64();
        eprintln!(
            "round {round}: verification {verify_rate:.0} entries/s ({:.2} s), raw SHA-256 \
             {raw_rate:.0} entries/s, {:.0} %; cores busy while verifying {:.0} %",
            verified.elapsed.as_secs_f64(),
            100.0 * verify_rate / raw_rate,
            100.0 * busy
        );
        verify_rates.push(verify_rate);
        raw_rates.push(raw_rate);
        ratios.push(verify_rate / raw_rate);
        hashed = bytes;
        report = Some(verified);
    }
    let report = report.expect("at least one round");
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let verify_rate = median(&mut verify_rates);
    let raw_rate = median(&mut raw_rates);
    let ratio = median(&mut ratios);

    inclusion.sort_unstable();
    consistency.sort_unstable();
    println!(
        "entries {size}, filled in {fill_secs:.1} s ({:.0} appends/s), database {:.0} MB",
        size as f64 / fill_secs,
        db_bytes as f64 / 1e6
    );
    println!("| proof | samples | p50 | p99 | max |");
    println!("|---|--:|--:|--:|--:|");
    for (name, times) in [("inclusion", &inclusion), ("consistency", &consistency)] {
        println!(
            "| {name} | {} | {:.1} µs | {:.1} µs | {:.1} µs |",
            times.len(),
            percentile(times, 0.5).as_secs_f64() * 1e6,
            percentile(times, 0.99).as_secs_f64() * 1e6,
            times.last().unwrap().as_secs_f64() * 1e6
        );
    }
    println!(
        "full verification from the store: {} entries, {} checkpoints, {rounds} rounds; medians: \
         {verify_rate:.0} entries/s; raw SHA-256 over the same {:.0} MB: {raw_rate:.0} entries/s; \
         verification / raw {:.0} % (median of the rounds' ratios)",
        report.entries,
        report.checkpoints,
        hashed as f64 / 1e6,
        100.0 * ratio
    );
}

/// CPU time this process has used (user + system), from `/proc/self/stat`; 0 where there is none.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th, in clock ticks (100 a second on Linux).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// SHA-256 over every stored entry, timing only the hashing: `(time, entries, bytes)`.
async fn raw_sha256(store: &dyn Store) -> (Duration, u64, u64) {
    let mut raw = Duration::ZERO;
    let (mut start, mut hashed, mut sink) = (0u64, 0u64, 0u8);
    loop {
        let page = store.audit_entries(start, 10_000).await.unwrap();
        if page.is_empty() {
            break;
        }
        let t = Instant::now();
        for row in &page {
            sink ^= Sha256::digest(&row.entry)[0];
            hashed += row.entry.len() as u64;
        }
        raw += t.elapsed();
        start += page.len() as u64;
    }
    std::hint::black_box(sink);
    (raw, start, hashed)
}
