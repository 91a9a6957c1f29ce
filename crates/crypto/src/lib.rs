//! Strongroom's key hierarchy and field-level cryptography.
//!
//! root key (from a [`KeyProvider`]) → per-tenant, versioned [`TenantKeys`] (wrapped under the
//! root key for storage) → field ciphertexts and blind indexes via [`TenantKeyring`]. Secrets are
//! wiped on drop and never printed. Nothing here does storage or async.

mod backup;
mod error;
mod format;
mod keyring;
mod platform;
mod provider;
mod secret;
mod tenant;
mod token;
mod webhook;

pub use backup::{BACKUP_TAG_LEN, BackupKey};
pub use error::CryptoError;
pub use keyring::{BLIND_INDEX_BITS, FieldContext, TenantKeyring, normalise_email};
pub use platform::{PLATFORM_KEY_VERSION, PlatformKey};
pub use provider::{EnvKeyProvider, FileKeyProvider, KeyProvider, StaticKeyProvider, encode_key};
pub use secret::{KEY_LEN, RootKey, SecretKey};
pub use tenant::{TenantKeys, unwrap_tenant_keys, wrap_tenant_keys};
pub use token::{TOKEN_LEN, TOKEN_PREFIX, Token, token_hash, token_well_formed};
pub use webhook::{WEBHOOK_SECRET_PREFIX, new_webhook_key, webhook_secret_text, webhook_signature};
/// Re-exported so callers can name the plaintext type of `decrypt_field` without a direct dep.
pub use zeroize::Zeroizing;

use subtle::ConstantTimeEq;

/// Constant-time equality of the contents (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `N` bytes from the system CSPRNG. The array is not wiped; wrap it in `Zeroizing` if secret.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

pub(crate) fn fill_random(dest: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(dest).map_err(|_| CryptoError::Rng)
}
