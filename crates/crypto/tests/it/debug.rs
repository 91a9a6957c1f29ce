use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use strongroom_crypto::{
    CryptoError, FileKeyProvider, KeyProvider, RootKey, SecretKey, StaticKeyProvider,
    TenantKeyring, Token,
};

use crate::fixed_keys;

/// Ways a 32-byte key of repeated `b` could show up in text.
fn leaks(text: &str, b: u8) -> bool {
    let key = [b; 32];
    let hex_lower = hex::encode(&key[..4]);
    let decimal = format!("{b}, {b}, {b}");
    let hex_list = format!("{b:x}, {b:x}, {b:x}");
    let b64 = STANDARD.encode(key);
    text.contains(&hex_lower)
        || text.to_uppercase().contains(&hex_lower.to_uppercase())
        || text.contains(&decimal)
        || text.to_lowercase().contains(&hex_list)
        || text.contains(&b64[..8])
}

#[test]
fn leak_detector_works() {
    assert!(leaks(&format!("{:?}", [0xABu8; 32]), 0xAB));
    assert!(leaks(&format!("{:x?}", [0xABu8; 32]), 0xAB));
}

#[test]
fn secret_types_debug_redacted() {
    let b = 0xAB;
    let texts = [
        format!("{:?}", SecretKey::from_bytes(&[b; 32]).unwrap()),
        format!("{:?}", RootKey::from_bytes(&[b; 32]).unwrap()),
        format!("{:?}", fixed_keys(1, b)),
        format!("{:#?}", fixed_keys(1, b)),
        format!(
            "{:?}",
            TenantKeyring::new("tenant-z", vec![fixed_keys(1, b)]).unwrap()
        ),
        format!(
            "{:?}",
            StaticKeyProvider::new(SecretKey::from_bytes(&[b; 32]).unwrap())
        ),
    ];
    for t in &texts {
        assert!(t.contains("redacted") || t.contains("tenant-z"), "{t}");
        for k in [b, b + 1, b + 2] {
            assert!(!leaks(t, k), "{t}");
        }
    }
    let ring = format!(
        "{:?}",
        TenantKeyring::new("tenant-z", vec![fixed_keys(1, b)]).unwrap()
    );
    assert!(ring.contains("tenant-z") && ring.contains('1'), "{ring}");
}

#[test]
fn token_debug_redacted() {
    let t = Token::generate().unwrap();
    let d = format!("{t:?}");
    assert!(d.contains("redacted"));
    assert!(!d.contains(&t.as_str()[3..]));
}

#[test]
fn errors_do_not_quote_key_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    // Almost-valid key text with one bad character: decoders like to quote offending input.
    let text = format!("{}!", &STANDARD.encode([0xCDu8; 32])[..43]);
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .unwrap();
    }
    let err = FileKeyProvider::open(&path).unwrap_err();
    assert!(
        matches!(err, CryptoError::InvalidKeyEncoding { .. }),
        "{err:?}"
    );
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(&text[..8]), "{shown}");
        assert!(!leaks(&shown, 0xCD), "{shown}");
        assert!(shown.contains("root.key"), "{shown}");
    }
    let p = StaticKeyProvider::new(SecretKey::from_bytes(&[0xCD; 32]).unwrap());
    assert!(!leaks(&p.describe(), 0xCD));
}
