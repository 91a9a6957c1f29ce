//! Arbitrary sizes, indices, hashes and proofs into the RFC 9162 verifiers: none may panic,
//! and an accepted proof always has exactly the length the tree shape dictates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_ledger::{Hash, ProofPlan, verify_consistency, verify_inclusion};

fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let a = u64::from_le_bytes(take::<8>(&mut data));
    let b = u64::from_le_bytes(take::<8>(&mut data));
    let h1: Hash = take::<32>(&mut data);
    let h2: Hash = take::<32>(&mut data);
    // Reuse hashes often so that "equal roots" and "leaf equals root" paths get exercised.
    let proof: Vec<Hash> = data
        .chunks(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h[..c.len()].copy_from_slice(c);
            if c.len() == 1 {
                if c[0] & 1 == 0 { h1 } else { h2 }
            } else {
                h
            }
        })
        .collect();

    if verify_inclusion(a, b, &h1, &proof, &h2).is_ok() {
        let plan = ProofPlan::inclusion(a, b).expect("accepted index must be in range");
        assert_eq!(plan.len(), proof.len());
    }
    // Small indices and sizes hit real tree shapes far more often than random u64s.
    let (sa, sb) = (a % 64, b % 64);
    if verify_inclusion(sa, sb, &h1, &proof, &h2).is_ok() {
        assert_eq!(
            ProofPlan::inclusion(sa, sb).map(|p| p.len()).ok(),
            Some(proof.len())
        );
    }
    for (s1, s2) in [(a, b), (sa, sb)] {
        if verify_consistency(s1, s2, &h1, &h2, &proof).is_ok() {
            let plan = ProofPlan::consistency(s1, s2).expect("accepted sizes must be valid");
            assert_eq!(plan.len(), proof.len());
        }
    }
    let _ = ProofPlan::root(a).map(|p| p.needed().len());
});
