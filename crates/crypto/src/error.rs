//! One error type for the crate. Messages name sources (paths, variable names, versions) but
//! never key bytes or plaintext, so they are safe to log.

use std::path::PathBuf;

/// Everything that can go wrong in `strongroom-crypto`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system's random generator failed.
    #[error("random number generator failed")]
    Rng,
    /// Key material had the wrong length.
    #[error("invalid key length: expected {expected} bytes, got {actual}")]
    InvalidKeyLength { expected: usize, actual: usize },
    /// Key text was not valid base64. The decoder's detail is dropped on purpose: it can quote
    /// key characters.
    #[error("key from {origin} is not valid base64")]
    InvalidKeyEncoding { origin: String },
    /// The key file can be read by group or others (or has any group/other permission bit).
    #[error("key file {} has insecure permissions {mode:04o}; run `chmod 600` on it", path.display())]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    /// The key file path exists but is not a regular file.
    #[error("key file {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// Reading or creating the key file failed.
    #[error("key file {}: {source}", path.display())]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The environment variable holding the root key is not set.
    #[error("environment variable {name} is not set")]
    MissingEnvVar { name: String },
    /// The environment variable holding the root key is not valid Unicode.
    #[error("environment variable {name} is not valid unicode")]
    EnvVarNotUnicode { name: String },
    /// Sealing failed inside the AEAD implementation.
    #[error("encryption failed")]
    Encrypt,
    /// Authentication failed: wrong key, wrong context (tenant, kind, record, field) or tampering.
    #[error("decryption failed: ciphertext is corrupt or does not belong to this context")]
    Decrypt,
    /// Unwrapping tenant keys failed: wrong root key, tenant id or version, or a corrupt blob.
    #[error("tenant key unwrap failed: wrong root key, tenant id or version, or corrupt blob")]
    Unwrap,
    /// The ciphertext names a key version this keyring does not hold.
    #[error("no key for version {version}")]
    UnknownKeyVersion { version: u32 },
    /// The ciphertext names a version whose keys are known to be lost (see
    /// `TenantKeyring::with_lost_versions`): unreadable for good, unlike an unknown version.
    #[error("the keys of version {version} are lost")]
    KeyVersionLost { version: u32 },
    /// A wrapped blob carries another version than the one asked for.
    #[error("wrapped keys are version {found}, expected {expected}")]
    KeyVersionMismatch { expected: u32, found: u32 },
    /// The first byte names a format this build does not know.
    #[error("unsupported ciphertext format {format}")]
    UnsupportedFormat { format: u8 },
    /// Too short or otherwise structurally invalid.
    #[error("malformed ciphertext: {reason}")]
    Malformed { reason: &'static str },
    /// A keyring needs at least one version.
    #[error("a keyring needs at least one key version")]
    EmptyKeyring,
    /// The same version was given twice to a keyring.
    #[error("key version {version} given twice")]
    DuplicateKeyVersion { version: u32 },
    /// An associated-data component is longer than 4 GiB.
    #[error("input too long")]
    InputTooLong,
}
