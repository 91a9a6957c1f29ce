use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use strongroom_crypto::{CryptoError, EnvKeyProvider, FileKeyProvider, KeyProvider, RootKey};

#[test]
fn file_provider_creates_0600_and_reuses_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let p = FileKeyProvider::open_or_create(&path).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let fp = p.root_key().unwrap().fingerprint();
    assert_eq!(p.root_key().unwrap().fingerprint(), fp);
    // A second open (next start) keeps the same key instead of overwriting it.
    let again = FileKeyProvider::open_or_create(&path).unwrap();
    assert_eq!(again.root_key().unwrap().fingerprint(), fp);
    assert!(p.describe().contains("root.key"));
    // The file holds standard base64 of 32 bytes.
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 32);
}

#[test]
fn file_provider_refuses_group_or_world_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let p = FileKeyProvider::open_or_create(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o610] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = FileKeyProvider::open_or_create(&path).unwrap_err();
        assert!(
            matches!(err, CryptoError::InsecureKeyFile { mode: m, .. } if m == mode),
            "{err:?}"
        );
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        // An already-open provider re-checks on every load.
        assert!(p.root_key().is_err());
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(FileKeyProvider::open(&path).is_ok());
}

#[test]
fn file_provider_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope").join("root.key");
    assert!(matches!(
        FileKeyProvider::open_or_create(&missing),
        Err(CryptoError::KeyFileIo { .. })
    ));
    assert!(matches!(
        FileKeyProvider::open(dir.path().join("absent.key")),
        Err(CryptoError::KeyFileIo { .. })
    ));
    let sub = dir.path().join("adir");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        FileKeyProvider::open(&sub),
        Err(CryptoError::NotAFile { .. })
    ));

    let short = dir.path().join("short.key");
    fs::write(&short, STANDARD.encode([1u8; 16])).unwrap();
    fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        FileKeyProvider::open(&short),
        Err(CryptoError::InvalidKeyLength {
            expected: 32,
            actual: 16
        })
    ));

    let fixed = dir.path().join("fixed.key");
    fs::write(&fixed, format!("{}\n", STANDARD.encode([7u8; 32]))).unwrap();
    fs::set_permissions(&fixed, fs::Permissions::from_mode(0o600)).unwrap();
    let fp = FileKeyProvider::open(&fixed)
        .unwrap()
        .root_key()
        .unwrap()
        .fingerprint();
    assert_eq!(fp, RootKey::from_bytes(&[7u8; 32]).unwrap().fingerprint());
}

const CHILD_FLAG: &str = "STRONGROOM_CRYPTO_TEST_CHILD";
const VAR: &str = "STRONGROOM_CRYPTO_TEST_ROOT_KEY";

/// Setting variables in-process is `unsafe` in edition 2024, so the real environment path is
/// tested in a child copy of this test binary that runs only `env_child`.
fn run_child(value: Option<&str>, expect: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["providers::env_child", "--exact", "--test-threads=1"])
        .env(CHILD_FLAG, expect)
        .env_remove(VAR);
    if let Some(v) = value {
        cmd.env(VAR, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child for {expect}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn env_child() {
    let Ok(expect) = std::env::var(CHILD_FLAG) else {
        return; // Only meaningful in the child started by `env_provider_*`.
    };
    let p = EnvKeyProvider::new(VAR);
    assert!(p.describe().contains(VAR));
    let got = p.root_key();
    match expect.as_str() {
        "ok" => assert_eq!(
            got.unwrap().fingerprint(),
            RootKey::from_bytes(&[5u8; 32]).unwrap().fingerprint()
        ),
        "missing" => assert!(matches!(got, Err(CryptoError::MissingEnvVar { .. }))),
        "encoding" => assert!(matches!(got, Err(CryptoError::InvalidKeyEncoding { .. }))),
        "length" => assert!(matches!(got, Err(CryptoError::InvalidKeyLength { .. }))),
        other => panic!("unknown expectation {other}"),
    }
}

#[test]
fn env_provider_reads_and_validates() {
    run_child(Some(&STANDARD.encode([5u8; 32])), "ok");
    run_child(Some(&format!(" {}\n", STANDARD.encode([5u8; 32]))), "ok");
    run_child(None, "missing");
    run_child(Some("%%% not base64 %%%"), "encoding");
    run_child(Some(&STANDARD.encode([5u8; 31])), "length");
    run_child(Some(&STANDARD.encode([5u8; 64])), "length");
    run_child(Some(""), "length");
}

#[test]
fn env_child_harness_detects_failure() {
    // Guards against a child that silently runs zero tests: a wrong expectation must fail.
    let result = std::panic::catch_unwind(|| run_child(None, "ok"));
    assert!(result.is_err());
}
