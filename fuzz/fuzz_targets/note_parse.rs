//! Arbitrary bytes into every text parser of strongroom-ledger: none may panic, and whatever
//! parses must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_ledger::{Checkpoint, NoteSigner, NoteVerifier};

const SEED: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let Ok(signer) = NoteSigner::from_bytes("fuzz.example/log", &SEED) else {
        return;
    };
    let verifier = signer.verifier();

    // Any bytes as a signed note: must not panic; an accepted note's body re-signs identically
    // (Ed25519 is deterministic), so acceptance implies the exact signature we would produce.
    if let Ok(body) = verifier.verify_bytes(data) {
        assert!(body.ends_with('\n'));
        assert!(data.len() > body.len());
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cp) = Checkpoint::parse_body(text) {
        assert_eq!(cp.body(), text, "checkpoint body must round-trip");
    }
    if let Ok(v) = NoteVerifier::parse(text) {
        assert_eq!(NoteVerifier::parse(&v.to_vkey()).ok(), Some(v));
    }
    // Whatever we agree to sign, we must verify back to the same body.
    if let Ok(note) = signer.sign(text) {
        assert_eq!(verifier.verify(&note).ok().as_deref(), Some(text));
        if let Ok(cp) = verifier.verify_checkpoint(&note) {
            assert_eq!(cp.body(), text);
        }
    }
});
