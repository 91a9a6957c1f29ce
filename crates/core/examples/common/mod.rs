//! What the audit benchmarks share: the record they append, their percentile, a PostgreSQL schema.
#![allow(dead_code, reason = "each example uses the part it needs")]

pub mod pg;

/// The server's allocator (see `crates/strongroom/src/main.rs`), so that these figures are the
/// server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use strongroom_core::audit::{Actor, AuditRecord, ResourceRef};

/// A typical staff read of one contact (≈ 620 bytes once encoded), request id from `i`.
pub fn record(i: u64) -> AuditRecord {
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

/// The `p` quantile (0..=1) of `v`, sorted in place; NaN when empty.
pub fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

/// The server's published-checkpoint file (`keys/published-checkpoint.note`), with the same
/// file work: a staged copy synced, renamed over the last one, the directory synced.
pub struct FileWitness(pub std::path::PathBuf);

impl strongroom_core::audit::CheckpointWitness for FileWitness {
    fn last(&self) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(&self.0) {
            Ok(note) => Ok(Some(note)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn record(&self, note: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        let staged = self.0.with_extension("new");
        let mut file = std::fs::File::create(&staged)?;
        file.write_all(note.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&staged, &self.0)?;
        let parent = self.0.parent().unwrap_or(std::path::Path::new("."));
        std::fs::File::open(parent)?.sync_all()
    }
}
