use aws_lc_rs::hmac;
use strongroom_crypto::{BLIND_INDEX_BITS, CryptoError, TenantKeyring, normalise_email};

use crate::fixed_keys;

#[test]
fn equal_inputs_equal_index_and_separation() {
    let a = TenantKeyring::new("a", vec![fixed_keys(1, 1)]).unwrap();
    let b = TenantKeyring::new("b", vec![fixed_keys(1, 100)]).unwrap();
    let e1 = normalise_email("  Alice@Example.COM ");
    let e2 = normalise_email("alice@example.com");
    let i1 = a.blind_index("contact", "email", e1.as_bytes()).unwrap();
    let i2 = a.blind_index("contact", "email", e2.as_bytes()).unwrap();
    assert_eq!(i1, i2);
    assert_eq!(i1.len() * 8, BLIND_INDEX_BITS as usize);

    assert_ne!(
        i1,
        b.blind_index("contact", "email", e1.as_bytes()).unwrap()
    );
    assert_ne!(
        i1,
        a.blind_index("contact", "email2", e1.as_bytes()).unwrap()
    );
    assert_ne!(i1, a.blind_index("user", "email", e1.as_bytes()).unwrap());
    assert_ne!(
        i1,
        a.blind_index("contact", "email", b"bob@example.com")
            .unwrap()
    );
}

#[test]
fn index_uses_current_version_and_older_on_request() {
    let r = TenantKeyring::new("a", vec![fixed_keys(1, 1), fixed_keys(2, 9)]).unwrap();
    let cur = r.blind_index("k", "f", b"v").unwrap();
    assert_eq!(cur, r.blind_index_at(2, "k", "f", b"v").unwrap());
    assert_ne!(cur, r.blind_index_at(1, "k", "f", b"v").unwrap());
    assert!(matches!(
        r.blind_index_at(3, "k", "f", b"v"),
        Err(CryptoError::UnknownKeyVersion { version: 3 })
    ));
}

/// Pins the index construction: HMAC-SHA-256(index key, lp(label) ‖ lp(kind) ‖ lp(field) ‖
/// lp(value)) truncated to 4 bytes. fixed_keys(1, 1) has index key [2; 32].
#[test]
fn known_answer() {
    let r = TenantKeyring::new("a", vec![fixed_keys(1, 1)]).unwrap();
    let mut msg = Vec::new();
    for part in [
        &b"strongroom/blind-index/v1"[..],
        b"contact",
        b"email",
        b"x@y",
    ] {
        msg.extend_from_slice(&(part.len() as u32).to_be_bytes());
        msg.extend_from_slice(part);
    }
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[2u8; 32]), &msg);
    assert_eq!(
        r.blind_index("contact", "email", b"x@y").unwrap(),
        tag.as_ref()[..(BLIND_INDEX_BITS as usize / 8)].to_vec()
    );
}

#[test]
fn normalise_email_lowercases_unicode_and_trims() {
    assert_eq!(normalise_email("\t Bob@EXAMPLE.org\n"), "bob@example.org");
    assert_eq!(normalise_email("ÄRGER@Straße.DE"), "ärger@straße.de");
    assert_eq!(normalise_email(""), "");
}
