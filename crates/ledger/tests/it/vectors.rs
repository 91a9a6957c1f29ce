//! Every RFC 6962/9162 proof vector in shared/testdata/merkle (transparency-dev/merkle's set).
//!
//! The vectors come from a Go API that takes hashes as byte slices of any length; ours takes
//! `[u8; 32]`. The adaptation mirrors what the Go verifier does with each input:
//! * A leaf hash that is not 32 bytes is refused up front by Go; our type cannot even hold it.
//!   Such a case counts as rejected and must be `wantErr: true`.
//! * Roots and proof elements are opaque to Go (hashed or compared, never length-checked). One
//!   of another length is mapped to a tagged SHA-256 of its bytes: an injective stand-in that no
//!   computed node or root equals. So "preceding garbage" (an extra empty proof element) still
//!   reaches our verifier and must be refused by it, and "sizes are equal (one) and proof is
//!   empty", with equal 12-byte roots, must be accepted.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use strongroom_ledger::{Hash, verify_consistency, verify_inclusion};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/merkle")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn b64(s: &str) -> Vec<u8> {
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?} in vector: {e}"))
}

/// `None` when the leaf hash is not 32 bytes and so cannot be given to the typed API.
fn exact_hash(s: &str) -> Option<Hash> {
    Hash::try_from(b64(s).as_slice()).ok()
}

fn opaque(s: &str) -> Hash {
    let bytes = b64(s);
    Hash::try_from(bytes.as_slice()).unwrap_or_else(|_| {
        Sha256::new()
            .chain_update(b"opaque stand-in for a non-32-byte value:")
            .chain_update(&bytes)
            .finalize()
            .into()
    })
}

fn proof(p: &Option<Vec<String>>) -> Vec<Hash> {
    p.iter().flatten().map(|s| opaque(s)).collect()
}

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    accepted: usize,
    rejected: usize,
    rejected_by_type: usize,
}

impl Tally {
    fn record(&mut self, file: &Path, desc: &str, want_err: bool, result: Option<bool>) {
        match result {
            None => {
                assert!(
                    want_err,
                    "{}: {desc}: unrepresentable input in an accept case",
                    file.display()
                );
                self.rejected_by_type += 1;
            }
            Some(ok) => {
                assert_eq!(
                    ok,
                    !want_err,
                    "{}: {desc}: verifier {} but wantErr={want_err}",
                    file.display(),
                    if ok { "accepted" } else { "rejected" }
                );
                if ok {
                    self.accepted += 1;
                } else {
                    self.rejected += 1;
                }
            }
        }
    }
}

fn run(kind: &str) -> Tally {
    let mut files = Vec::new();
    json_files(&testdata().join(kind), &mut files);
    let mut tally = Tally::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        tally.files += 1;
        if kind == "inclusion" {
            let c: InclusionCase = serde_json::from_str(&text).unwrap();
            let (p, root) = (proof(&c.proof), opaque(&c.root));
            let result = exact_hash(&c.leaf_hash)
                .map(|leaf| verify_inclusion(c.leaf_idx, c.tree_size, &leaf, &p, &root).is_ok());
            tally.record(file, &c.desc, c.want_err, result);
        } else {
            let c: ConsistencyCase = serde_json::from_str(&text).unwrap();
            let (r1, r2) = (opaque(&c.root1), opaque(&c.root2));
            let ok = verify_consistency(c.size1, c.size2, &r1, &r2, &proof(&c.proof)).is_ok();
            let result = Some(ok);
            tally.record(file, &c.desc, c.want_err, result);
        }
    }
    tally
}

#[test]
fn inclusion_vectors() {
    let t = run("inclusion");
    eprintln!("inclusion vectors: {t:?}");
    assert!(
        t.files > 0,
        "no vectors found under {}",
        testdata().display()
    );
    assert!(t.accepted > 0 && t.rejected > 0);
    assert_eq!(t.files, t.accepted + t.rejected + t.rejected_by_type);
}

#[test]
fn consistency_vectors() {
    let t = run("consistency");
    eprintln!("consistency vectors: {t:?}");
    assert_eq!(t.rejected_by_type, 0);
    assert!(
        t.files > 0,
        "no vectors found under {}",
        testdata().display()
    );
    assert!(t.accepted > 0 && t.rejected > 0);
    assert_eq!(t.files, t.accepted + t.rejected + t.rejected_by_type);
}
