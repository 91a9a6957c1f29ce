//! What the same durable, group-committed audit appends cost in a plain append-only file, for the
//! "path forward" in docs/benchmarks.md:
//! `cargo run --release -p strongroom-core --example append_file_bench -- [writers=256] [seconds=10] [dir=tmp]`
//!
//! Not the product's log: a measurement of the design the audit ledger's remaining targets point
//! to (Tessera-style). W writers hand a typical read record to one committer thread and wait for its
//! acknowledgement, as with `audit_bench`. The committer takes everything queued (at most 4,096,
//! like `AuditLog`), encodes each entry with its index and time (`audit::encode`), hashes it into
//! the Merkle frontier (`Frontier::append_visit`), and appends the batch's entries (length-prefixed)
//! and every completed tree node (level, index, hash) to one file with a single `write` and a single
//! `fdatasync`; then it acknowledges the batch. What it leaves out: the tenant index, the data
//! mutations that share a transaction with their entries, and checkpoint signing (coalesced apart).
//!
//! Then, in the same run, full verification of that file as just written (read back, mostly from the
//! page cache): every entry re-hashed into a fresh frontier and every stored node compared, next to
//! plain SHA-256 over the same entry bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{pct, record};
use sha2::{Digest, Sha256};
use strongroom_core::audit::{AuditRecord, encode};
use strongroom_ledger::{Frontier, leaf_hash};
use tokio::sync::oneshot;

const MAX_BATCH: usize = 4096;
const TIME: &str = "2026-12-03T12:00:00.000Z";

type Request = (AuditRecord, oneshot::Sender<()>);

/// The committer's per-batch figures: (entries, seconds from first encode to synced).
fn commit_loop(path: std::path::PathBuf, queue: mpsc::Receiver<Request>) -> Vec<(usize, f64)> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut frontier = Frontier::new();
    let mut batches = Vec::new();
    let mut buf = Vec::with_capacity(4 << 20);
    let mut acks = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        let started = Instant::now();
        let mut pending = vec![first];
        while pending.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(r) => pending.push(r),
                Err(_) => break,
            }
        }
        buf.clear();
        for (record, ack) in pending {
            let entry = encode(&record, frontier.size(), TIME).unwrap();
            let len = u32::try_from(entry.len()).unwrap();
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&entry);
            frontier
                .append_visit(leaf_hash(&entry), |id, hash| {
                    buf.push(id.level);
                    buf.extend_from_slice(&id.index.to_be_bytes());
                    buf.extend_from_slice(&hash);
                })
                .unwrap();
            acks.push(ack);
        }
        file.write_all(&buf).unwrap();
        file.sync_data().unwrap();
        batches.push((acks.len(), started.elapsed().as_secs_f64()));
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
    batches
}

/// Streams the file back and checks every node against a rebuilt tree; returns (entries, seconds).
fn verify_file(path: &std::path::Path) -> (u64, f64) {
    let started = Instant::now();
    let file = std::fs::File::open(path).unwrap();
    let total = file.metadata().unwrap().len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut frontier = Frontier::new();
    let (mut entry, mut node, mut len) = (Vec::new(), [0u8; 41], [0u8; 4]);
    let mut at = 0u64;
    while at < total {
        reader.read_exact(&mut len).unwrap();
        entry.resize(u32::from_be_bytes(len) as usize, 0);
        reader.read_exact(&mut entry).unwrap();
        at += 4 + entry.len() as u64;
        frontier
            .append_visit(leaf_hash(&entry), |id, hash| {
                reader.read_exact(&mut node).unwrap();
                assert!(
                    node[0] == id.level
                        && node[1..9] == id.index.to_be_bytes()
                        && node[9..] == hash,
                    "node {id:?} differs"
                );
                at += 41;
            })
            .unwrap();
    }
    (frontier.size(), started.elapsed().as_secs_f64())
}

/// SHA-256 over the same entry bytes, read the same way; only the hashing is timed.
fn raw_sha256(path: &std::path::Path) -> (u64, f64) {
    let bytes = std::fs::read(path).unwrap();
    let mut entries = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        entries.push(&bytes[at + 4..at + 4 + len]);
        // Skip this entry's nodes: the leaf, then one per trailing one bit of its index.
        let index = entries.len() as u64 - 1;
        at += 4 + len + 41 * (1 + index.trailing_ones() as usize);
    }
    let started = Instant::now();
    let mut sink = 0u8;
    for e in &entries {
        sink ^= Sha256::digest(e)[0];
    }
    std::hint::black_box(sink);
    (entries.len() as u64, started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let writers: u64 = args.first().map_or(256, |a| a.parse().unwrap());
    let seconds: u64 = args.get(1).map_or(10, |a| a.parse().unwrap());
    let dir = match args.get(2) {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let path = dir.path().join("audit.log");

    let (tx, rx) = mpsc::channel::<Request>();
    let committer = std::thread::spawn({
        let path = path.clone();
        move || commit_loop(path, rx)
    });

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (tx, stop, acked) = (tx.clone(), Arc::clone(&stop), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = w << 32;
            while !stop.load(Ordering::Relaxed) {
                let (ack_tx, ack_rx) = oneshot::channel();
                let sent = Instant::now();
                tx.send((record(i), ack_tx)).unwrap();
                ack_rx.await.unwrap();
                latencies.push(sent.elapsed().as_secs_f64());
                acked.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            latencies
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let appended = acked.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut acks = Vec::new();
    for t in tasks {
        acks.extend(t.await.unwrap());
    }
    let batches = committer.join().unwrap();
    let mut commits: Vec<f64> = batches.iter().map(|b| b.1).collect();
    let entries: usize = batches.iter().map(|b| b.0).sum();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (verified, verify_secs) = verify_file(&path);
    let (hashed, hash_secs) = raw_sha256(&path);
    assert_eq!(verified, hashed);

    println!(
        "| store | writers | durable appends/s | ack p50 | ack p99 | commit p50 | commit p99 | entries per commit | bytes per entry |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    println!(
        "| append-only file | {writers} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} | {:.0} |",
        appended as f64 / elapsed,
        pct(&mut acks, 0.50) * 1e3,
        pct(&mut acks, 0.99) * 1e3,
        pct(&mut commits, 0.50) * 1e3,
        pct(&mut commits, 0.99) * 1e3,
        entries as f64 / batches.len().max(1) as f64,
        bytes as f64 / entries.max(1) as f64,
    );
    let (verify_rate, raw_rate) = (verified as f64 / verify_secs, hashed as f64 / hash_secs);
    println!(
        "full verification from the file: {verified} entries in {verify_secs:.2} s = {verify_rate:.0} entries/s (read included); \
         raw SHA-256 over the same entry bytes: {raw_rate:.0} entries/s; verification / raw = {:.0} %",
        100.0 * verify_rate / raw_rate
    );
}
