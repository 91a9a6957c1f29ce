//! Where the root key comes from. Development keeps it in a file in the data directory;
//! deployments pass it in the environment (later: HSM/KMS behind the same trait).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::secret::{KEY_LEN, RootKey, SecretKey};

/// A source of the deployment's root key.
pub trait KeyProvider: Send + Sync {
    /// Loads the root key. Called rarely (start-up, tenant key unwrap), so providers may do I/O.
    fn root_key(&self) -> Result<RootKey, CryptoError>;
    /// Where the key comes from, for logs and `strongroom keys` output. Never the key itself.
    fn describe(&self) -> String;
}

/// Largest key text we read: a 32-byte key is 44 base64 characters; leave room for whitespace.
const MAX_KEY_TEXT: u64 = 1024;

/// Decodes standard, padded base64 (`openssl rand -base64 32`) without letting the decoder's
/// buffers or error messages carry key bytes.
pub(crate) fn parse_key_text(origin: &str, text: &str) -> Result<SecretKey, CryptoError> {
    let text = text.trim();
    let estimate = base64::decoded_len_estimate(text.len());
    let mut buf = Zeroizing::new([0u8; 64]);
    if estimate > buf.len() {
        return Err(CryptoError::InvalidKeyLength {
            expected: KEY_LEN,
            actual: estimate,
        });
    }
    let n = STANDARD
        .decode_slice(text.as_bytes(), buf.as_mut_slice())
        .map_err(|_| CryptoError::InvalidKeyEncoding {
            origin: origin.to_owned(),
        })?;
    SecretKey::from_bytes(buf.get(..n).unwrap_or_default())
}

/// Standard base64 of a key, in a buffer that is wiped on drop.
pub fn encode_key(key: &SecretKey) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(48));
    STANDARD.encode_string(key.expose(), &mut out);
    out
}

/// Root key in a file holding its base64, created with mode 0600 on first use.
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    path: PathBuf,
}

impl FileKeyProvider {
    /// Uses the key file at `path`, creating it with a fresh key if it does not exist.
    /// The parent directory must exist. Validates the file now so that a bad key fails start-up.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, CryptoError> {
        let path = path.as_ref().to_path_buf();
        match create_key_file(&path) {
            Ok(()) => {}
            // Someone (maybe a concurrent start) created it first: use theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CryptoError::KeyFileIo { path, source }),
        }
        Self::open(path)
    }

    /// Uses an existing key file; never creates one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CryptoError> {
        let provider = Self {
            path: path.as_ref().to_path_buf(),
        };
        provider.read_key()?;
        Ok(provider)
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_key(&self) -> Result<SecretKey, CryptoError> {
        let io = |source| CryptoError::KeyFileIo {
            path: self.path.clone(),
            source,
        };
        let file = File::open(&self.path).map_err(io)?;
        // Check the opened file, not the path, so a swap between check and read cannot fool us.
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(CryptoError::NotAFile {
                path: self.path.clone(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::InsecureKeyFile {
                path: self.path.clone(),
                mode,
            });
        }
        let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_TEXT as usize));
        file.take(MAX_KEY_TEXT)
            .read_to_string(&mut text)
            .map_err(io)?;
        parse_key_text(&self.describe(), &text)
    }
}

/// Creates the key file whole or not at all: the key goes to `NAME.partial` first, synced, then
/// is linked to its name (a link, unlike a rename, refuses to replace a key already there) and the
/// directory synced. Written in place, a power cut could leave an empty key file that fails every
/// start after it.
fn create_key_file(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Err(ErrorKind::AlreadyExists.into());
    }
    let mut staged = path.as_os_str().to_owned();
    staged.push(".partial");
    let staged = PathBuf::from(staged);
    // Left by a write that stopped before its link: never the key's only copy.
    let _ = std::fs::remove_file(&staged);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged)?;
    let written = (|| {
        let key = SecretKey::generate().map_err(std::io::Error::other)?;
        let mut text = encode_key(&key);
        text.push('\n');
        file.write_all(text.as_bytes())?;
        file.sync_all()
    })();
    drop(file);
    let linked = written.and_then(|()| std::fs::hard_link(&staged, path));
    let _ = std::fs::remove_file(&staged);
    linked?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The entry must be durable before anything is sealed under the key it names.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl KeyProvider for FileKeyProvider {
    fn root_key(&self) -> Result<RootKey, CryptoError> {
        self.read_key().map(RootKey::new)
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// Root key as base64 in an environment variable, e.g. `STRONGROOM_ROOT_KEY`. The process
/// environment keeps its own copy, which this crate cannot wipe.
#[derive(Debug, Clone)]
pub struct EnvKeyProvider {
    name: String,
}

impl EnvKeyProvider {
    /// Reads the variable `name` on each `root_key` call.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl KeyProvider for EnvKeyProvider {
    fn root_key(&self) -> Result<RootKey, CryptoError> {
        let value = std::env::var_os(&self.name).ok_or_else(|| CryptoError::MissingEnvVar {
            name: self.name.clone(),
        })?;
        let text =
            Zeroizing::new(
                value
                    .into_string()
                    .map_err(|_| CryptoError::EnvVarNotUnicode {
                        name: self.name.clone(),
                    })?,
            );
        parse_key_text(&self.describe(), &text).map(RootKey::new)
    }

    fn describe(&self) -> String {
        format!("environment variable {}", self.name)
    }
}

/// A root key held in memory: for tests and for callers that obtained the key elsewhere.
pub struct StaticKeyProvider(SecretKey);

impl StaticKeyProvider {
    /// Holds `key` and hands out copies of it.
    pub fn new(key: SecretKey) -> Self {
        Self(key)
    }
}

impl KeyProvider for StaticKeyProvider {
    fn root_key(&self) -> Result<RootKey, CryptoError> {
        RootKey::from_bytes(self.0.expose())
    }

    fn describe(&self) -> String {
        "in-memory key".to_owned()
    }
}

impl std::fmt::Debug for StaticKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticKeyProvider([redacted])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_padded_base64_with_whitespace() {
        let text = format!("  {}\n", STANDARD.encode([9u8; 32]));
        let k = parse_key_text("test", &text).unwrap();
        assert_eq!(k.expose(), &[9u8; 32]);
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!(
            parse_key_text("o", "not base64!!"),
            Err(CryptoError::InvalidKeyEncoding { .. })
        ));
        assert!(matches!(
            parse_key_text("o", &STANDARD.encode([1u8; 16])),
            Err(CryptoError::InvalidKeyLength { actual: 16, .. })
        ));
        assert!(matches!(
            parse_key_text("o", &STANDARD.encode([1u8; 33])),
            Err(CryptoError::InvalidKeyLength { actual: 33, .. })
        ));
        assert!(matches!(
            parse_key_text("o", &STANDARD.encode([1u8; 500])),
            Err(CryptoError::InvalidKeyLength { .. })
        ));
        assert!(matches!(
            parse_key_text("o", ""),
            Err(CryptoError::InvalidKeyLength { actual: 0, .. })
        ));
    }

    #[test]
    fn a_key_file_is_created_whole_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        // What a write stopped by a power cut left staged: never read as the key.
        std::fs::write(dir.path().join("root.key.partial"), b"").unwrap();
        let first = FileKeyProvider::open_or_create(&path)
            .unwrap()
            .root_key()
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join("root.key.partial").exists());
        let again = FileKeyProvider::open_or_create(&path)
            .unwrap()
            .root_key()
            .unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
    }

    #[test]
    fn encode_round_trips() {
        let k = SecretKey::generate().unwrap();
        let back = parse_key_text("t", &encode_key(&k)).unwrap();
        assert_eq!(k.expose(), back.expose());
    }
}
