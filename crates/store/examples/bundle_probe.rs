//! What the layout of the audit log's rows costs a whole-log verifier, outside the product: one
//! row per entry (today's `audit_entries`: index, tenant, entry, leaf hash, subtree roots) against
//! rows that each hold a bundle of consecutive entries (Tessera's entry bundles, kept in SQLite).
//! Each layout is read in two halves on two threads, every entry's leaf hash recomputed and
//! compared with the stored one and one node hash computed per entry, as a verifier does; raw
//! SHA-256 over the same entry bytes on one thread is the reference, in the same run.
//!
//! `cargo run --release -p strongroom-store --example bundle_probe -- ENTRIES BUNDLES ROUNDS`,
//! e.g. `-- 1000000 1,16,64,256 5` (bundle size 1 is the row-per-entry layout). The databases are
//! made under the system's temporary directory and removed at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

/// The mean size of an audit entry in `proof_bench`'s log (bytes).
const ENTRY_BYTES: usize = 381;

fn entry(index: u64) -> Vec<u8> {
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..ENTRY_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn leaf_hash(entry: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(entry)
        .finalize()
        .into()
}

/// The roots a leaf completes, as `subtree_roots` holds them (placeholders of the right size).
fn completed_roots(index: u64) -> Vec<u8> {
    vec![7u8; 32 * index.trailing_ones() as usize]
}

fn fill(path: &Path, entries: u64, bundle: u64) {
    let _ = std::fs::remove_file(path);
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN")
        .unwrap();
    if bundle == 1 {
        conn.execute_batch(
            "CREATE TABLE audit_entries (idx INTEGER PRIMARY KEY, tenant_id TEXT, \
             entry BLOB NOT NULL, leaf_hash BLOB, subtree_roots BLOB)",
        )
        .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO audit_entries VALUES (?1, 'tenant-000000001', ?2, ?3, ?4)")
            .unwrap();
        for index in 0..entries {
            let bytes = entry(index);
            let roots = completed_roots(index);
            let roots = (!roots.is_empty()).then_some(roots);
            insert
                .execute((index as i64, &bytes, &leaf_hash(&bytes)[..], roots))
                .unwrap();
        }
    } else {
        // A bundle: per entry its length (u16), its bytes, its leaf hash, the number of roots it
        // completes (u8) and those roots.
        conn.execute_batch(
            "CREATE TABLE audit_bundles (bundle INTEGER PRIMARY KEY, entries BLOB NOT NULL)",
        )
        .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO audit_bundles VALUES (?1, ?2)")
            .unwrap();
        let mut blob = Vec::new();
        for index in 0..entries {
            let bytes = entry(index);
            blob.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            blob.extend_from_slice(&bytes);
            blob.extend_from_slice(&leaf_hash(&bytes));
            blob.push(index.trailing_ones() as u8);
            blob.extend_from_slice(&completed_roots(index));
            if (index + 1) % bundle == 0 || index + 1 == entries {
                insert.execute(((index / bundle) as i64, &blob)).unwrap();
                blob.clear();
            }
        }
    }
    conn.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

/// One node hash per entry, as the tree above `n` leaves has `n - 1`.
fn fold(acc: &mut [u8; 32], leaf: &[u8; 32]) {
    *acc = Sha256::new()
        .chain_update([1u8])
        .chain_update(&acc[..])
        .chain_update(leaf)
        .finalize()
        .into();
}

/// Verifies entries `[first, end)`; returns how many it read.
fn verify(path: &Path, first: u64, end: u64, bundle: u64) -> u64 {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.pragma_update(None, "mmap_size", 1i64 << 32).unwrap();
    let (mut read, mut acc) = (0u64, [0u8; 32]);
    if bundle == 1 {
        let mut rows = conn
            .prepare(
                "SELECT idx, tenant_id, entry, leaf_hash, subtree_roots FROM audit_entries \
                 WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )
            .unwrap();
        let mut rows = rows.query((first as i64, end as i64)).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let _index: i64 = row.get(0).unwrap();
            let _tenant = row.get_ref(1).unwrap();
            let leaf = leaf_hash(row.get_ref(2).unwrap().as_blob().unwrap());
            assert_eq!(row.get_ref(3).unwrap().as_blob().unwrap(), &leaf[..]);
            let _roots = row.get_ref(4).unwrap();
            fold(&mut acc, &leaf);
            read += 1;
        }
    } else {
        let mut rows = conn
            .prepare(
                "SELECT bundle, entries FROM audit_bundles \
                 WHERE bundle >= ?1 AND bundle < ?2 ORDER BY bundle",
            )
            .unwrap();
        let mut rows = rows
            .query(((first / bundle) as i64, end.div_ceil(bundle) as i64))
            .unwrap();
        while let Some(row) = rows.next().unwrap() {
            let mut blob = row.get_ref(1).unwrap().as_blob().unwrap();
            while let [high, low, rest @ ..] = blob {
                let len = usize::from(u16::from_be_bytes([*high, *low]));
                let (bytes, rest) = rest.split_at(len);
                let (stored, rest) = rest.split_at(32);
                let leaf = leaf_hash(bytes);
                assert_eq!(stored, &leaf[..]);
                let roots = usize::from(rest[0]);
                blob = &rest[1 + 32 * roots..];
                fold(&mut acc, &leaf);
                read += 1;
            }
        }
    }
    read
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let entries: u64 = args.get(1).map_or(1_000_000, |a| a.parse().unwrap());
    let bundles: Vec<u64> = args
        .get(2)
        .map_or("1,16,64,256", String::as_str)
        .split(',')
        .map(|b| b.parse().unwrap())
        .collect();
    let rounds: usize = args.get(3).map_or(5, |a| a.parse().unwrap());
    let dir = std::env::temp_dir();
    let path_of = |bundle: u64| -> PathBuf { dir.join(format!("bundle_probe_{bundle}.db")) };
    for &bundle in &bundles {
        fill(&path_of(bundle), entries, bundle.max(1));
    }
    let all: Vec<Vec<u8>> = (0..entries).map(entry).collect();
    println!("{entries} entries of {ENTRY_BYTES} bytes; per round: M entries/s, % of raw SHA-256");
    for round in 0..rounds {
        let started = Instant::now();
        let mut check = 0u8;
        for bytes in &all {
            check ^= Sha256::digest(bytes)[0];
        }
        let raw = entries as f64 / started.elapsed().as_secs_f64();
        let mut line = format!("round {round}: raw {:.2} ({check:02x})", raw / 1e6);
        for &bundle in &bundles {
            let bundle = bundle.max(1);
            let middle = entries / 2 / bundle * bundle;
            let started = Instant::now();
            let (low, high) = (path_of(bundle), path_of(bundle));
            let low = std::thread::spawn(move || verify(&low, 0, middle, bundle));
            let high = std::thread::spawn(move || verify(&high, middle, entries, bundle));
            assert_eq!(low.join().unwrap() + high.join().unwrap(), entries);
            let rate = entries as f64 / started.elapsed().as_secs_f64();
            line += &format!(
                " | bundle {bundle}: {:.2} {:.0} %",
                rate / 1e6,
                100.0 * rate / raw
            );
        }
        println!("{line}");
    }
    for &bundle in &bundles {
        let path = path_of(bundle.max(1));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
