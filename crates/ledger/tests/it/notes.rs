//! Signed notes and checkpoints: Go interop vectors, round trips, and rejections.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use strongroom_ledger::{
    Checkpoint, LedgerError, MAX_NOTE_SIZE, MemoryTree, NoteSigner, NoteVerifier,
    check_checkpoint_consistency, key_id,
};

// From golang.org/x/mod/sumdb/note (note.go docs and note_test.go).
const PETER_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"; // 0x01 ‖ seed
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

// Real checkpoints of the Go checksum database, signed by its published key.
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const SUMDB_NOTES: [&str; 2] = [
    "go.sum database tree\n49189689\nftjbAOzaupaIvaPo/G+Dk63nxOZ2s1OPOKIaPtXs7S4=\n\n— sum.golang.org Az3grlKZssqRoMNPpZfKt0TphbbcF+pzXqElURJKRNFKfaUAgqeI5k2AORH0QAhg/ebRwyIqD/OqP4oLtLnNumvOBAM=\n",
    "go.sum database tree\n65664258\nWVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg=\n\n— sum.golang.org Az3grligJmgX7KGyGPKybykNTh3VgsbLvUuvOwrM5zLVlulmFp2wdvbxOw74/gcNxURShXEpb7RXcs3+BYflYN+w0gQ=\n",
];

fn peter() -> NoteSigner {
    let raw = STANDARD.decode(PETER_SKEY_B64).unwrap();
    assert_eq!(raw[0], 0x01);
    NoteSigner::from_bytes("PeterNeumann", raw[1..].try_into().unwrap()).unwrap()
}

fn peter_note() -> String {
    format!("{TEXT}\n{PETER_SIG}")
}

#[test]
fn go_vector_sign_is_byte_identical() {
    let s = peter();
    assert_eq!(s.key_id(), 0xc74f20a3);
    assert_eq!(s.verifier().to_vkey(), PETER_VKEY);
    assert_eq!(s.sign(TEXT).unwrap(), peter_note());
}

#[test]
fn go_vector_verify() {
    let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
    let enoch = NoteVerifier::parse(ENOCH_VKEY).unwrap();
    assert_eq!((peter.name(), peter.key_id()), ("PeterNeumann", 0xc74f20a3));
    assert_eq!(peter.to_vkey(), PETER_VKEY);
    assert_eq!(enoch.to_vkey(), ENOCH_VKEY);
    assert_eq!(peter.verify(&peter_note()).unwrap(), TEXT);
    // Doubly signed: each verifier ignores the other's line.
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(peter.verify(&both).unwrap(), TEXT);
    assert_eq!(enoch.verify(&both).unwrap(), TEXT);
    // Only someone else's signature: refused.
    assert!(matches!(
        peter.verify(&format!("{TEXT}\n{ENOCH_SIG}")),
        Err(LedgerError::NoSignatureFromKey { .. })
    ));
    // Go's "invalid signature" case: our key's line is corrupted.
    let bad = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(peter.verify(&bad), Err(LedgerError::BadSignature));
}

#[test]
fn go_malformed_notes_are_rejected() {
    let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
    let bad = [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]), // missing final newline
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        format!("{TEXT}\n{PETER_SIG}\n"), // blank line after the signatures
        format!("{TEXT}\n\n{PETER_SIG}").replacen("\n\n\n", "\n\n \n", 1), // stray line before sigs
        format!("{TEXT}\n{}", PETER_SIG.replace('=', "")), // unpadded base64
        format!("{TEXT}\n{}", PETER_SIG.replace("x08go", "x08g!")), // bad base64
        format!("{TEXT}\n{}", PETER_SIG.replace("— ", "-- ")),
        format!("{TEXT}\n{}", PETER_SIG.replace("— ", "—")),
        format!("{TEXT}\n{}", PETER_SIG.replace(' ', "  ")),
        format!("{TEXT}\n— PeterNeumann AAAA\n"), // too short
        format!("{}\r\n\n{PETER_SIG}", TEXT.trim_end()), // CR is a control character
        String::new(),
        "\n\n".to_owned(),
    ];
    for msg in &bad {
        assert!(peter.verify(msg).is_err(), "accepted {msg:?}");
    }
    // Non-UTF-8 bytes (Go's "\xff" case).
    let mut raw = b"\xff".to_vec();
    raw.extend_from_slice(peter_note().as_bytes());
    assert_eq!(
        peter.verify_bytes(&raw),
        Err(LedgerError::MalformedNote("not UTF-8"))
    );
    assert_eq!(peter.verify_bytes(peter_note().as_bytes()).unwrap(), TEXT);
}

#[test]
fn signature_count_and_size_limits() {
    let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
    assert_eq!(
        peter
            .verify(&format!("{TEXT}\n{}", PETER_SIG.repeat(100)))
            .unwrap(),
        TEXT
    );
    assert_eq!(
        peter.verify(&format!("{TEXT}\n{}", PETER_SIG.repeat(101))),
        Err(LedgerError::TooManySignatures)
    );
    let huge = format!("{}\n{PETER_SIG}", "a\n".repeat(MAX_NOTE_SIZE / 2));
    assert!(matches!(
        peter.verify(&huge),
        Err(LedgerError::NoteTooLarge(_))
    ));
    assert!(matches!(
        peter.verify_bytes(huge.as_bytes()),
        Err(LedgerError::NoteTooLarge(_))
    ));
    let s = NoteSigner::generate("big").unwrap();
    assert!(matches!(
        s.sign(&"a\n".repeat(MAX_NOTE_SIZE / 2)),
        Err(LedgerError::NoteTooLarge(_))
    ));
}

#[test]
fn go_verifier_key_manglings_are_rejected() {
    assert!(NoteVerifier::parse(PETER_VKEY).is_ok());
    let b = PETER_VKEY.as_bytes();
    let mut tried = 0;
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                let k = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(NoteVerifier::parse(k).is_err(), "accepted {k:?}");
                tried += 1;
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let k = String::from_utf8(m).unwrap();
        assert!(NoteVerifier::parse(&k).is_err(), "accepted {k:?}");
    }
    assert!(tried > 1000);
    // Wrong-length key and unknown algorithm, each with a matching key id (from Go's tests).
    assert!(
        NoteVerifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err()
    );
    assert_eq!(
        NoteVerifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(LedgerError::UnsupportedAlgorithm(0x65))
    );
    // Upper-case hex is accepted (as by Go); output is lower-case.
    let upper = NoteVerifier::parse(&PETER_VKEY.replace("c74f20a3", "C74F20A3")).unwrap();
    assert_eq!(upper.to_vkey(), PETER_VKEY);
}

#[test]
fn weak_public_keys_are_refused() {
    // The identity point: every signature with R = identity, S = 0 would verify.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        NoteVerifier::from_public_key("weak", &identity),
        Err(LedgerError::InvalidPublicKey)
    );
    let raw = [&[1u8][..], &identity].concat();
    let vkey = format!(
        "weak+{:08x}+{}",
        key_id("weak", &identity),
        STANDARD.encode(raw)
    );
    assert_eq!(
        NoteVerifier::parse(&vkey),
        Err(LedgerError::InvalidPublicKey)
    );
}

#[test]
fn key_id_formula() {
    let s = NoteSigner::generate("example.com/log").unwrap();
    let pk = s.verifier().public_key();
    let d = Sha256::new()
        .chain_update(b"example.com/log\n\x01")
        .chain_update(pk)
        .finalize();
    assert_eq!(s.key_id(), u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
    let vkey = s.verifier().to_vkey();
    assert_eq!(
        vkey,
        format!(
            "example.com/log+{:08x}+{}",
            s.key_id(),
            STANDARD.encode([&[1u8][..], &pk].concat())
        )
    );
    assert_eq!(NoteVerifier::parse(&vkey).unwrap(), s.verifier());
}

#[test]
fn round_trip_and_tampering() {
    let s = NoteSigner::generate("strongroom.example/audit").unwrap();
    let v = s.verifier();
    let body = "strongroom.example/audit\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let note = s.sign(body).unwrap();
    assert_eq!(v.verify(&note).unwrap(), body);
    // Body tampering: any changed character breaks the signature (or the syntax).
    for (i, _) in body.char_indices().filter(|(_, c)| *c != '\n') {
        let mut t = note.clone();
        t.replace_range(i..=i, if &note[i..=i] == "x" { "y" } else { "x" });
        assert!(v.verify(&t).is_err(), "tampered body accepted at {i}");
    }
    // Signature tampering: flip each signature byte.
    let (head, sig_line) = note.rsplit_once("— ").unwrap();
    let (name, b64) = sig_line.trim_end().split_once(' ').unwrap();
    let raw = STANDARD.decode(b64).unwrap();
    for i in 0..raw.len() {
        let mut r = raw.clone();
        r[i] ^= 0x01;
        let t = format!("{head}— {name} {}\n", STANDARD.encode(&r));
        assert!(
            v.verify(&t).is_err(),
            "tampered signature byte {i} accepted"
        );
    }
    // Wrong key: same name, other key → its line is ignored → nothing from our key.
    let other = NoteSigner::generate("strongroom.example/audit").unwrap();
    assert!(matches!(
        other.verifier().verify(&note),
        Err(LedgerError::NoSignatureFromKey { .. })
    ));
    // Our key signed it, but a line claiming our name and id carries a bad signature: refused.
    let forged = other.sign(body).unwrap();
    let forged_line = forged.rsplit_once("\n\n").unwrap().1;
    let (_, fb64) = forged_line.trim_end().rsplit_once(' ').unwrap();
    let mut fraw = STANDARD.decode(fb64).unwrap();
    fraw[..4].copy_from_slice(&s.key_id().to_be_bytes());
    let mixed = format!("{note}— {name} {}\n", STANDARD.encode(&fraw));
    assert_eq!(v.verify(&mixed), Err(LedgerError::BadSignature));
    // Bodies we would not be able to verify are refused at signing.
    assert!(s.sign("no final newline").is_err());
    assert!(s.sign("tab\there\n").is_err());
    assert!(NoteSigner::generate("has space").is_err());
    assert!(NoteSigner::generate("has+plus").is_err());
    assert!(NoteSigner::generate("").is_err());
}

#[test]
fn secret_handling() {
    let s = NoteSigner::generate("k").unwrap();
    let secret = s.secret_bytes();
    let again = NoteSigner::from_bytes("k", &secret).unwrap();
    assert_eq!(again.verifier(), s.verifier());
    let dbg = format!("{s:?}");
    assert!(dbg.contains("[redacted]"), "{dbg}");
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!dbg.contains(&hex) && !dbg.contains(&STANDARD.encode(*secret)));
    assert!(!dbg.contains(&format!("{:?}", *secret)));
    assert_ne!(NoteSigner::generate("k").unwrap().verifier(), s.verifier());
}

#[test]
fn go_checksum_database_checkpoints_verify() {
    let v = NoteVerifier::parse(SUMDB_VKEY).unwrap();
    let sizes = [49189689u64, 65664258];
    for (note, size) in SUMDB_NOTES.iter().zip(sizes) {
        let c = v.verify_checkpoint(note).unwrap();
        assert_eq!(c.origin, "go.sum database tree");
        assert_eq!(c.size, size);
        assert_eq!(format!("{}\n", c.body()), note.split("— ").next().unwrap());
        // Any change to the size breaks the signature.
        let forged = note.replacen(&size.to_string(), &(size + 1).to_string(), 1);
        assert_eq!(v.verify_checkpoint(&forged), Err(LedgerError::BadSignature));
    }
}

#[test]
fn signed_checkpoints_chain_with_proofs() {
    let s = NoteSigner::generate("strongroom.example/audit").unwrap();
    let v = s.verifier();
    let mut tree = MemoryTree::new();
    let mut checkpoints = vec![];
    for i in 0u32..70 {
        if i % 7 == 0 {
            let cp = Checkpoint {
                origin: "strongroom.example/audit".into(),
                size: tree.size(),
                root: tree.root(),
            };
            let note = s.sign_checkpoint(&cp).unwrap();
            assert_eq!(v.verify_checkpoint(&note).unwrap(), cp);
            checkpoints.push(cp);
        }
        tree.push_entry(format!("event {i}").as_bytes()).unwrap();
    }
    for (a, old) in checkpoints.iter().enumerate() {
        for new in &checkpoints[a..] {
            let proof = if old.size == 0 {
                vec![]
            } else {
                tree.consistency_proof(old.size, new.size).unwrap()
            };
            check_checkpoint_consistency(old, new, &proof).unwrap();
            if new.size > old.size {
                assert!(check_checkpoint_consistency(new, old, &proof).is_err());
                if old.size > 0 {
                    let fork = Checkpoint {
                        root: [0; 32],
                        ..new.clone()
                    };
                    assert!(check_checkpoint_consistency(old, &fork, &proof).is_err());
                }
            }
        }
    }
    let bad = Checkpoint {
        origin: "two\nlines".into(),
        size: 0,
        root: [0; 32],
    };
    assert!(s.sign_checkpoint(&bad).is_err());
}
