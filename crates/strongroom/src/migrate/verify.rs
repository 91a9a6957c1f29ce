//! Checks after a copy (or alone, `--verify-only`): the same row counts, the same audit log
//! (recomputed on both sides: same size, same root, every checkpoint verifies), and a random
//! sample of contacts and cases that decrypt to the same plaintext on both sides. Plaintext is
//! compared in memory and never printed; findings name tables, tenants and record ids only.

use std::collections::BTreeMap;

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use strongroom_core::audit::{VerifyError, VerifyReport, verify_store};
use strongroom_crypto::RootKey;
use strongroom_ledger::NoteVerifier;
use strongroom_store::Store;

use super::db::{Side, Table, counts, pg_audit_head};

/// What the checks found: `ok` lines for the report, `bad` lines for the mismatches.
#[derive(Default)]
pub struct Findings {
    pub ok: Vec<String>,
    pub bad: Vec<String>,
}

/// Both ends: raw pools (counts) and stores (audit log, records).
pub struct Ends<'a> {
    pub source: &'a Side,
    pub target: &'a Side,
    pub source_store: &'a dyn Store,
    pub target_store: &'a dyn Store,
}

pub async fn run(
    ends: &Ends<'_>,
    tables: &[Table],
    verifier: &NoteVerifier,
    root: &RootKey,
    sample: usize,
) -> Result<Findings> {
    let mut f = Findings::default();
    check_counts(ends, tables, &mut f).await?;
    check_audit(ends, verifier, &mut f).await;
    super::sample::check_sample(ends, root, sample, &mut f).await?;
    Ok(f)
}

async fn check_counts(ends: &Ends<'_>, tables: &[Table], f: &mut Findings) -> Result<()> {
    let mut source = counts(ends.source, tables).await?;
    let mut target = counts(ends.target, tables).await?;
    source.remove("leases");
    target.remove("leases");
    let bad_before = f.bad.len();
    let mut rows = 0i64;
    for (table, n) in &source {
        let m = target.get(table).copied().unwrap_or(-1);
        if *n != m {
            f.bad.push(format!(
                "row count of {table}: {n} in the source, {m} in the target"
            ));
        }
        rows += n;
    }
    for side in [ends.source, ends.target] {
        if let Side::Pg(pool) = side {
            let (size, entries, next) = pg_audit_head(pool).await?;
            if size != entries || entries != next {
                f.bad.push(format!(
                    "PostgreSQL audit head says {size} entries; {entries} are stored (next index {next})"
                ));
            }
        }
    }
    if f.bad.len() == bad_before {
        f.ok.push(format!(
            "row counts: {} tables, {rows} rows, the same on both sides",
            source.len()
        ));
    }
    Ok(())
}

fn describe(outcome: &Result<VerifyReport, VerifyError>) -> String {
    match outcome {
        Ok(r) => format!("{} entries, {} checkpoints", r.entries, r.checkpoints),
        Err(VerifyError::Invalid(failure)) => {
            format!("fails at index {}: {}", failure.index, failure.kind)
        }
        Err(e) => format!("cannot be read: {e}"),
    }
}

async fn check_audit(ends: &Ends<'_>, verifier: &NoteVerifier, f: &mut Findings) {
    let source = verify_store(ends.source_store, verifier).await;
    let target = verify_store(ends.target_store, verifier).await;
    match (&source, &target) {
        (Ok(s), Ok(t)) => {
            let latest = |r: &VerifyReport| r.latest.as_ref().map(|c| (c.size, c.root));
            if s.entries != t.entries || s.root != t.root {
                f.bad.push(format!(
                    "audit log: source has {} entries (root {}), target {} (root {})",
                    s.entries,
                    STANDARD.encode(s.root),
                    t.entries,
                    STANDARD.encode(t.root)
                ));
            } else if s.checkpoints != t.checkpoints || latest(s) != latest(t) {
                f.bad.push(format!(
                    "audit log: source has {} signed checkpoints, target {}",
                    s.checkpoints, t.checkpoints
                ));
            } else {
                f.ok.push(format!(
                    "audit log: {} entries and {} signed checkpoints verify on both sides; \
                     root {}",
                    t.entries,
                    t.checkpoints,
                    STANDARD.encode(t.root)
                ));
            }
        }
        _ => {
            f.bad.push(format!(
                "audit log: source {}; target {}",
                describe(&source),
                describe(&target)
            ));
        }
    }
}

/// The sum of the row counts.
pub fn total(counts: &BTreeMap<String, i64>) -> i64 {
    counts.values().sum()
}
