use strongroom_crypto::{TOKEN_LEN, Token, ct_eq, random_bytes, token_hash, token_well_formed};

#[test]
fn token_shape_and_uniqueness() {
    let a = Token::generate().unwrap();
    let b = Token::generate().unwrap();
    assert!(a.as_str().starts_with("sr_"));
    assert_eq!(a.as_str().len(), TOKEN_LEN);
    assert!(token_well_formed(a.as_str()));
    assert_ne!(a.as_str(), b.as_str());
    assert_eq!(a.hash(), token_hash(a.as_str()));
    assert_ne!(a.hash(), b.hash());
}

#[test]
fn token_hash_is_stable_sha256() {
    assert_eq!(
        hex::encode(token_hash("sr_test")),
        "deac2dfdd0af4a4da292cd0062dc6790f9541591e86d75d59537b8c99f4eee14"
    );
    assert_eq!(
        hex::encode(token_hash("")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn well_formed_rejects_garbage() {
    let good = Token::generate().unwrap();
    let s = good.as_str();
    assert!(!token_well_formed(""));
    assert!(!token_well_formed(&s[..s.len() - 1]));
    assert!(!token_well_formed(&format!("xx_{}", &s[3..])));
    assert!(!token_well_formed(&format!("{}=", &s[..s.len() - 1])));
    assert!(!token_well_formed(&format!("{s}a")));
}

#[test]
fn ct_eq_and_random() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
    assert!(ct_eq(b"", b""));
    let x: [u8; 32] = random_bytes().unwrap();
    let y: [u8; 32] = random_bytes().unwrap();
    assert_ne!(x, y);
    let _: [u8; 0] = random_bytes().unwrap();
}
