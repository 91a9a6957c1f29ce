use strongroom_crypto::{
    CryptoError, FieldContext, RootKey, TenantKeyring, TenantKeys, unwrap_tenant_keys,
    wrap_tenant_keys,
};

const CTX: FieldContext<'static> = FieldContext {
    kind: "contact",
    record_id: "r",
    field: "name",
};

#[test]
fn wrap_unwrap_round_trip_keeps_keys() {
    let root = RootKey::generate().unwrap();
    let keys = TenantKeys::generate(4).unwrap();
    let attachment = *keys.attachment_key().expose();
    let ring = TenantKeyring::new("t1", vec![keys]).unwrap();
    let ct = ring.encrypt_field(&CTX, b"payload").unwrap();
    let idx = ring.blind_index("contact", "email", b"a@b").unwrap();

    let keys = ring.keys(4).unwrap();
    let blob = wrap_tenant_keys(&root, "t1", keys).unwrap();
    assert_eq!(blob.len(), 1 + 4 + 12 + 96 + 16);
    let back = unwrap_tenant_keys(&root, "t1", 4, &blob).unwrap();
    assert_eq!(back.version(), 4);
    assert_eq!(back.attachment_key().expose(), &attachment);
    let ring2 = TenantKeyring::new("t1", vec![back]).unwrap();
    assert_eq!(
        ring2.decrypt_field(&CTX, &ct).unwrap().as_slice(),
        b"payload"
    );
    assert_eq!(ring2.blind_index("contact", "email", b"a@b").unwrap(), idx);
}

#[test]
fn unwrap_fails_for_other_tenant_root_or_version() {
    let root = RootKey::generate().unwrap();
    let keys = TenantKeys::generate(1).unwrap();
    let blob = wrap_tenant_keys(&root, "t1", &keys).unwrap();

    assert!(matches!(
        unwrap_tenant_keys(&root, "t2", 1, &blob),
        Err(CryptoError::Unwrap)
    ));
    let other_root = RootKey::generate().unwrap();
    assert!(matches!(
        unwrap_tenant_keys(&other_root, "t1", 1, &blob),
        Err(CryptoError::Unwrap)
    ));
    assert!(matches!(
        unwrap_tenant_keys(&root, "t1", 2, &blob),
        Err(CryptoError::KeyVersionMismatch {
            expected: 2,
            found: 1
        })
    ));
    // Relabelling the version inside the blob breaks authentication.
    let mut relabelled = blob.clone();
    relabelled[1..5].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(
        unwrap_tenant_keys(&root, "t1", 2, &relabelled),
        Err(CryptoError::Unwrap)
    ));
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x80;
        assert!(
            unwrap_tenant_keys(&root, "t1", 1, &bad).is_err(),
            "byte {i}"
        );
    }
    assert!(unwrap_tenant_keys(&root, "t1", 1, &blob[..blob.len() - 1]).is_err());
}

#[test]
fn root_key_is_not_used_as_field_key() {
    // A field ciphertext from a ring whose data key equals the root key bytes must not be
    // confused with a wrapped blob: wrapping uses a derived key and its own AD label.
    let root = RootKey::from_bytes(&[3u8; 32]).unwrap();
    let keys = crate::fixed_keys(1, 3);
    let ring = TenantKeyring::new("t1", vec![keys]).unwrap();
    let ct = ring.encrypt_field(&CTX, &[0u8; 96]).unwrap();
    assert!(unwrap_tenant_keys(&root, "t1", 1, &ct).is_err());
}
