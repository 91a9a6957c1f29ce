//! Ledger figures for docs/benchmarks.md:
//! `cargo run --release -p strongroom-ledger --example ledger_bench -- 1000000 10000000`
//!
//! For each size: build the tree from synthetic 400-byte entries (the size of a typical audit entry),
//! then time inclusion-proof generation + verification at random indexes, and compare rebuilding the
//! whole tree (what `audit verify` does) with raw SHA-256 over the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use sha2::{Digest, Sha256};
use strongroom_ledger::{Frontier, MemoryTree, leaf_hash, verify_inclusion};

const ENTRY_BYTES: usize = 400;

fn entry(i: u64) -> [u8; ENTRY_BYTES] {
    let mut e = [b'x'; ENTRY_BYTES];
    e[..8].copy_from_slice(&i.to_be_bytes());
    e
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are integers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000]
    } else {
        sizes
    };
    println!(
        "| entries | build (entries/s) | proof generated p50 | proof generated p99 | verify p50 | tree rebuild (entries/s) | raw SHA-256 (entries/s) | rebuild / raw |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let started = Instant::now();
        let mut tree = MemoryTree::new();
        for i in 0..n {
            tree.push_entry(&entry(i)).unwrap();
        }
        let build = n as f64 / started.elapsed().as_secs_f64();
        let root = tree.root();

        let mut generated = Vec::new();
        let mut ver = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = x % n;
            let t = Instant::now();
            let proof = tree.inclusion_proof(i, n).unwrap();
            generated.push(t.elapsed().as_secs_f64() * 1e6);
            let leaf = leaf_hash(&entry(i));
            let t = Instant::now();
            verify_inclusion(i, n, &leaf, &proof, &root).unwrap();
            ver.push(t.elapsed().as_secs_f64() * 1e6);
        }

        // Same run: full rebuild (leaf hash + frontier) vs. plain SHA-256 of the same bytes.
        let t = Instant::now();
        let mut frontier = Frontier::new();
        for i in 0..n {
            frontier
                .append_visit(leaf_hash(&entry(i)), |_, _| {})
                .unwrap();
        }
        assert_eq!(frontier.root(), root);
        let rebuild = n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut sink = 0u8;
        for i in 0..n {
            sink ^= Sha256::digest(entry(i))[0];
        }
        let raw = n as f64 / t.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        println!(
            "| {n} | {build:.0} | {:.2} µs | {:.2} µs | {:.2} µs | {rebuild:.0} | {raw:.0} | {:.0} % |",
            median(generated.clone()),
            percentile(generated, 0.99),
            median(ver),
            100.0 * rebuild / raw
        );
    }
}
