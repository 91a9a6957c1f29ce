//! Platform-level secrets that belong to no tenant (e.g. users' TOTP seeds).
//!
//! The platform key is derived from the root key by HKDF with its own label, so it is distinct from
//! the tenant-key wrapping key and needs no storage. Blobs use the sealed layout of `format.rs`; the
//! header's version names the platform key version, and the AD binds the owner id and the purpose,
//! so a blob moved to another user or reused for another purpose fails to open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::format::{self, push_lp};
use crate::secret::RootKey;

const SALT: &[u8] = b"strongroom/root-key/v1";
const INFO: &[u8] = b"strongroom/platform-secrets/v1";
const LABEL: &[u8] = b"strongroom/platform-secret/v1";
/// The only platform key version so far; a rotation would add one and keep this readable.
pub const PLATFORM_KEY_VERSION: u32 = 1;

/// The AEAD key for platform secrets. Not `Clone`; never printed.
pub struct PlatformKey {
    aead: LessSafeKey,
}

impl PlatformKey {
    /// Derives the platform key from the root key.
    pub fn derive(root: &RootKey) -> Result<Self, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(root.secret().expose());
        let okm = prk
            .expand(&[INFO], &AES_256_GCM)
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(Self {
            aead: LessSafeKey::new(UnboundKey::from(okm)),
        })
    }

    /// Seals `plaintext` for `owner_id` and `purpose` (e.g. a user id and `"totp"`).
    pub fn seal(
        &self,
        owner_id: &str,
        purpose: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let header = format::new_header(PLATFORM_KEY_VERSION)?;
        let ad = aad(&header, owner_id, purpose)?;
        format::seal(&self.aead, &header, &ad, plaintext)
    }

    /// Opens a blob made by [`PlatformKey::seal`] for the same owner and purpose.
    pub fn open(
        &self,
        owner_id: &str,
        purpose: &str,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parsed = format::parse(blob)?;
        if parsed.version != PLATFORM_KEY_VERSION {
            return Err(CryptoError::UnknownKeyVersion {
                version: parsed.version,
            });
        }
        let ad = aad(parsed.header, owner_id, purpose)?;
        format::open(&self.aead, &parsed, &ad, CryptoError::Decrypt)
    }
}

fn aad(header: &[u8], owner_id: &str, purpose: &str) -> Result<Vec<u8>, CryptoError> {
    let mut ad = Vec::with_capacity(64 + owner_id.len() + purpose.len());
    push_lp(&mut ad, LABEL)?;
    push_lp(&mut ad, header)?;
    push_lp(&mut ad, owner_id.as_bytes())?;
    push_lp(&mut ad, purpose.as_bytes())?;
    Ok(ad)
}

impl fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlatformKey([redacted])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PlatformKey {
        PlatformKey::derive(&RootKey::from_bytes(&[byte; 32]).unwrap()).unwrap()
    }

    #[test]
    fn round_trip_and_binding() {
        let k = key(1);
        let blob = k.seal("user-1", "totp", b"seed bytes 12345678").unwrap();
        assert!(!blob.windows(8).any(|w| w == b"seed byt"));
        assert_eq!(
            k.open("user-1", "totp", &blob).unwrap().as_slice(),
            b"seed bytes 12345678"
        );
        assert!(k.open("user-2", "totp", &blob).is_err());
        assert!(k.open("user-1", "other", &blob).is_err());
        assert!(key(2).open("user-1", "totp", &blob).is_err());
        let mut tampered = blob.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert!(k.open("user-1", "totp", &tampered).is_err());
    }

    #[test]
    fn platform_key_differs_from_tenant_wrapping() {
        // Same root, different HKDF info: a platform blob does not open as tenant keys.
        let root = RootKey::from_bytes(&[3; 32]).unwrap();
        let blob = PlatformKey::derive(&root)
            .unwrap()
            .seal("t", "totp", &[0u8; 96])
            .unwrap();
        assert!(crate::unwrap_tenant_keys(&root, "t", 1, &blob).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", key(1)), "PlatformKey([redacted])");
    }
}
