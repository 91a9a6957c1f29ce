//! Secret key material. Kept in a heap box so moves do not leave copies on the stack, and
//! zeroized on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{CryptoError, fill_random};

/// Length of every symmetric key in this crate (AES-256, HMAC-SHA-256).
pub const KEY_LEN: usize = 32;

/// A 32-byte secret. Not `Clone`: there is one owner, and dropping it wipes the bytes.
pub struct SecretKey(Box<[u8; KEY_LEN]>);

impl SecretKey {
    /// A fresh key from the system CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Self(Box::new([0u8; KEY_LEN]));
        fill_random(k.0.as_mut_slice())?;
        Ok(k)
    }

    /// Copies `b`, which must be exactly 32 bytes. The caller still owns (and should wipe) `b`.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        if b.len() != KEY_LEN {
            return Err(CryptoError::InvalidKeyLength {
                expected: KEY_LEN,
                actual: b.len(),
            });
        }
        let mut k = Self(Box::new([0u8; KEY_LEN]));
        k.0.copy_from_slice(b);
        Ok(k)
    }

    /// The raw bytes, for handing to a primitive. Do not copy them anywhere long-lived.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// The deployment's root key: it only wraps tenant keys. A distinct type so that a tenant key
/// cannot be passed where the root is expected.
pub struct RootKey(SecretKey);

impl RootKey {
    /// Wraps an existing secret as the root key.
    pub fn new(key: SecretKey) -> Self {
        Self(key)
    }

    /// A fresh random root key (for first start and tests).
    pub fn generate() -> Result<Self, CryptoError> {
        SecretKey::generate().map(Self)
    }

    /// Copies `b` (32 bytes) into a root key.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        SecretKey::from_bytes(b).map(Self)
    }

    /// The underlying secret, for persisting it through a key provider.
    pub fn secret(&self) -> &SecretKey {
        &self.0
    }

    /// A short public identifier of this root key (16 hex digits), derived one-way, so that
    /// operators and logs can tell which root key is in use without revealing it.
    pub fn fingerprint(&self) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.0.expose());
        let tag = aws_lc_rs::hmac::sign(&key, b"strongroom/root-key-fingerprint/v1");
        tag.as_ref()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey([redacted])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn from_bytes_checks_length() {
        assert!(SecretKey::from_bytes(&[7u8; 32]).is_ok());
        for n in [0usize, 16, 31, 33, 64] {
            match SecretKey::from_bytes(&vec![1u8; n]) {
                Err(CryptoError::InvalidKeyLength {
                    expected: 32,
                    actual,
                }) => assert_eq!(actual, n),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn generated_keys_differ() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn fingerprint_is_stable_and_key_specific() {
        let a = RootKey::from_bytes(&[1u8; 32]).unwrap();
        let a2 = RootKey::from_bytes(&[1u8; 32]).unwrap();
        let b = RootKey::from_bytes(&[2u8; 32]).unwrap();
        assert_eq!(a.fingerprint(), a2.fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
    }
}
