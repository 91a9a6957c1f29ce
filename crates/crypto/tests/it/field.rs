use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use strongroom_crypto::{CryptoError, FieldContext, TenantKeyring};

use crate::{fixed_keys, ring};

const CTX: FieldContext<'static> = FieldContext {
    kind: "contact",
    record_id: "rec-1",
    field: "email",
};

#[test]
fn round_trip_including_empty() {
    let r = ring("t1", &[1]);
    for pt in [&b""[..], b"x", b"alice@example.com", &[0u8; 4096]] {
        let ct = r.encrypt_field(&CTX, pt).unwrap();
        assert_eq!(ct.len(), 1 + 4 + 12 + pt.len() + 16);
        assert_eq!(r.decrypt_field(&CTX, &ct).unwrap().as_slice(), pt);
    }
}

#[test]
fn nonces_are_fresh() {
    let r = ring("t1", &[1]);
    let a = r.encrypt_field(&CTX, b"same").unwrap();
    let b = r.encrypt_field(&CTX, b"same").unwrap();
    assert_ne!(a, b);
}

#[test]
fn ad_binds_record_field_kind_and_tenant() {
    let keys_a = fixed_keys(1, 10);
    let keys_b = fixed_keys(1, 10); // same key bytes, other tenant id
    let a = TenantKeyring::new("tenant-a", vec![keys_a]).unwrap();
    let b = TenantKeyring::new("tenant-b", vec![keys_b]).unwrap();
    let ct = a.encrypt_field(&CTX, b"secret").unwrap();
    assert!(a.decrypt_field(&CTX, &ct).is_ok());

    let others = [
        FieldContext {
            record_id: "rec-2",
            ..CTX
        },
        FieldContext {
            field: "phone",
            ..CTX
        },
        FieldContext {
            kind: "user",
            ..CTX
        },
        // Moving bytes between components must not keep the AD equal.
        FieldContext {
            kind: "contactr",
            record_id: "ec-1",
            ..CTX
        },
    ];
    for ctx in &others {
        assert!(
            matches!(a.decrypt_field(ctx, &ct), Err(CryptoError::Decrypt)),
            "{ctx:?}"
        );
    }
    assert!(matches!(
        b.decrypt_field(&CTX, &ct),
        Err(CryptoError::Decrypt)
    ));
}

#[test]
fn every_flipped_bit_and_truncation_fails() {
    let r = ring("t1", &[1]);
    let ct = r.encrypt_field(&CTX, b"hello world").unwrap();
    for i in 0..ct.len() {
        for bit in 0..8 {
            let mut bad = ct.clone();
            bad[i] ^= 1 << bit;
            assert!(r.decrypt_field(&CTX, &bad).is_err(), "byte {i} bit {bit}");
        }
    }
    for n in 0..ct.len() {
        assert!(r.decrypt_field(&CTX, &ct[..n]).is_err(), "len {n}");
    }
}

#[test]
fn unknown_and_wrong_key_version() {
    let new = ring("t1", &[1, 2]);
    assert_eq!(new.current_version(), 2);
    let ct = new.encrypt_field(&CTX, b"v2 data").unwrap();
    assert_eq!(TenantKeyring::ciphertext_version(&ct).unwrap(), 2);

    let old = ring("t1", &[1]);
    assert!(matches!(
        old.decrypt_field(&CTX, &ct),
        Err(CryptoError::UnknownKeyVersion { version: 2 })
    ));
    // Relabelling the version to one the ring holds fails authentication.
    let mut relabelled = ct.clone();
    relabelled[1..5].copy_from_slice(&1u32.to_be_bytes());
    assert!(matches!(
        new.decrypt_field(&CTX, &relabelled),
        Err(CryptoError::Decrypt)
    ));
}

#[test]
fn only_versions_marked_lost_read_as_lost() {
    let v1 = ring("t1", &[1]).encrypt_field(&CTX, b"v1 data").unwrap();
    let held = ring("t1", &[2]);
    let lost = ring("t1", &[2]).with_lost_versions([1, 2]);
    assert!(matches!(
        held.decrypt_field(&CTX, &v1),
        Err(CryptoError::UnknownKeyVersion { version: 1 })
    ));
    assert!(matches!(
        lost.decrypt_field(&CTX, &v1),
        Err(CryptoError::KeyVersionLost { version: 1 })
    ));
    // A held version is never lost, and any other version is still unknown.
    let v2 = lost.encrypt_field(&CTX, b"v2 data").unwrap();
    assert_eq!(
        lost.decrypt_field(&CTX, &v2).unwrap().as_slice(),
        b"v2 data"
    );
    let mut v3 = v2;
    v3[1..5].copy_from_slice(&3u32.to_be_bytes());
    assert!(matches!(
        lost.decrypt_field(&CTX, &v3),
        Err(CryptoError::UnknownKeyVersion { version: 3 })
    ));
}

#[test]
fn rotation_keeps_old_versions_readable() {
    let v1 = fixed_keys(1, 1);
    let r1 = TenantKeyring::new("t", vec![v1]).unwrap();
    let old_ct = r1.encrypt_field(&CTX, b"old").unwrap();

    // Versions may be given in any order; the highest is current.
    let r2 = TenantKeyring::new("t", vec![fixed_keys(2, 50), fixed_keys(1, 1)]).unwrap();
    assert_eq!(r2.versions().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(r2.decrypt_field(&CTX, &old_ct).unwrap().as_slice(), b"old");
    let re = r2.reencrypt_field(&CTX, &old_ct).unwrap();
    assert_eq!(TenantKeyring::ciphertext_version(&re).unwrap(), 2);
    assert_eq!(r2.decrypt_field(&CTX, &re).unwrap().as_slice(), b"old");
    assert!(matches!(
        r1.decrypt_field(&CTX, &re),
        Err(CryptoError::UnknownKeyVersion { version: 2 })
    ));
}

#[test]
fn keyring_rejects_empty_and_duplicates() {
    assert!(matches!(
        TenantKeyring::new("t", vec![]),
        Err(CryptoError::EmptyKeyring)
    ));
    assert!(matches!(
        TenantKeyring::new("t", vec![fixed_keys(3, 1), fixed_keys(3, 9)]),
        Err(CryptoError::DuplicateKeyVersion { version: 3 })
    ));
}

#[test]
fn ciphertext_version_rejects_garbage() {
    assert!(matches!(
        TenantKeyring::ciphertext_version(&[]),
        Err(CryptoError::Malformed { .. })
    ));
    assert!(matches!(
        TenantKeyring::ciphertext_version(&[9u8; 40]),
        Err(CryptoError::UnsupportedFormat { format: 9 })
    ));
    assert!(matches!(
        TenantKeyring::ciphertext_version(&[1u8; 20]),
        Err(CryptoError::Malformed { .. })
    ));
}

fn lp(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u32).to_be_bytes());
    out.extend_from_slice(part);
}

/// Pins the documented wire format: a ciphertext built by hand from the spec decrypts.
#[test]
fn known_format_decrypts() {
    let r = TenantKeyring::new("tenant-x", vec![fixed_keys(7, 0x42)]).unwrap();
    let nonce = [5u8; 12];
    let mut header = vec![1u8];
    header.extend_from_slice(&7u32.to_be_bytes());
    header.extend_from_slice(&nonce);
    let mut aad = Vec::new();
    lp(&mut aad, b"strongroom/field/v1");
    lp(&mut aad, &header);
    for part in ["tenant-x", CTX.kind, CTX.record_id, CTX.field] {
        lp(&mut aad, part.as_bytes());
    }
    aad.extend_from_slice(&7u32.to_be_bytes());

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).unwrap());
    let mut body = b"pinned".to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&aad),
        &mut body,
    )
    .unwrap();
    let mut ct = header;
    ct.extend_from_slice(&body);
    assert_eq!(r.decrypt_field(&CTX, &ct).unwrap().as_slice(), b"pinned");
}

#[test]
fn attachments_are_sealed_apart_from_fields() {
    let file = FieldContext {
        kind: "attachment",
        record_id: "att-1",
        field: "content",
    };
    let r = ring("t1", &[1]);
    let ct = r.encrypt_attachment(&file, b"core dump").unwrap();
    assert_eq!(
        r.decrypt_attachment(&file, &ct).unwrap().as_slice(),
        b"core dump"
    );
    assert_eq!(TenantKeyring::ciphertext_version(&ct).unwrap(), 1);
    // Another key and scheme label: neither kind of ciphertext opens as the other.
    assert!(r.decrypt_field(&file, &ct).is_err());
    let field_ct = r.encrypt_field(&file, b"core dump").unwrap();
    assert!(r.decrypt_attachment(&file, &field_ct).is_err());
    // Bound to its record like a field.
    let moved = FieldContext {
        record_id: "att-2",
        ..file
    };
    assert!(r.decrypt_attachment(&moved, &ct).is_err());
    // Under the attachment key: same data key, another attachment key does not open it.
    let same_data_key = TenantKeyring::new(
        "t1",
        vec![
            strongroom_crypto::TenantKeys::from_secrets(
                1,
                strongroom_crypto::SecretKey::from_bytes(&[10; 32]).unwrap(),
                strongroom_crypto::SecretKey::from_bytes(&[11; 32]).unwrap(),
                strongroom_crypto::SecretKey::from_bytes(&[99; 32]).unwrap(),
            )
            .unwrap(),
        ],
    )
    .unwrap();
    let ours = TenantKeyring::new("t1", vec![fixed_keys(1, 10)]).unwrap();
    let sealed = ours.encrypt_attachment(&file, b"core dump").unwrap();
    assert!(same_data_key.decrypt_attachment(&file, &sealed).is_err());
    assert!(ours.decrypt_attachment(&file, &sealed).is_ok());
}
