//! Backup encryption: AES-256-GCM in chunks under a per-backup key.
//!
//! key = HKDF-SHA-256(root key, salt = the backup's random 32-byte id, info = "strongroom/backup/v1").
//! Chunk `i` is sealed with nonce = 0u32 ‖ i (big-endian u64) and associated data = the file's
//! header ‖ i ‖ last-flag, so chunks cannot be reordered, dropped, truncated at a chunk boundary
//! or moved to another backup without failing to open. A fresh key per backup makes the counter
//! nonces unique.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::secret::RootKey;

const INFO: &[u8] = b"strongroom/backup/v1";
/// Bytes of the authentication tag appended to every chunk.
pub const BACKUP_TAG_LEN: usize = 16;

/// The key of one backup file. Not `Clone`; never printed.
pub struct BackupKey {
    aead: LessSafeKey,
}

impl BackupKey {
    /// Derives the key of the backup whose id is `backup_id`.
    pub fn derive(root: &RootKey, backup_id: &[u8; 32]) -> Result<Self, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, backup_id).extract(root.secret().expose());
        let okm = prk
            .expand(&[INFO], &AES_256_GCM)
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(Self {
            aead: LessSafeKey::new(UnboundKey::from(okm)),
        })
    }

    /// Seals chunk `index` (`last` for the final one) of the file with header `header`.
    pub fn seal_chunk(
        &self,
        header: &[u8],
        index: u64,
        last: bool,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut buf = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(nonce(index), Aad::from(ad(header, index, last)), &mut buf)
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(buf)
    }

    /// Opens a chunk sealed by [`BackupKey::seal_chunk`] with the same header, index and flag.
    pub fn open_chunk(
        &self,
        header: &[u8],
        index: u64,
        last: bool,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        // A backup holds the log-signing key and the configuration: wiped once read.
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self
            .aead
            .open_in_place(nonce(index), Aad::from(ad(header, index, last)), &mut buf)
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn ad(header: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut ad = Vec::with_capacity(header.len() + 9);
    ad.extend_from_slice(header);
    ad.extend_from_slice(&index.to_be_bytes());
    ad.push(u8::from(last));
    ad
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupKey([redacted])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(root: u8, id: u8) -> BackupKey {
        BackupKey::derive(&RootKey::from_bytes(&[root; 32]).unwrap(), &[id; 32]).unwrap()
    }

    #[test]
    fn chunks_are_bound_to_key_header_position_and_finality() {
        let k = key(1, 1);
        let sealed = k.seal_chunk(b"hdr", 3, false, b"payload").unwrap();
        assert_eq!(
            k.open_chunk(b"hdr", 3, false, &sealed).unwrap().as_slice(),
            b"payload"
        );
        assert!(k.open_chunk(b"hdr", 4, false, &sealed).is_err());
        assert!(k.open_chunk(b"hdr", 3, true, &sealed).is_err());
        assert!(k.open_chunk(b"hdX", 3, false, &sealed).is_err());
        assert!(key(1, 2).open_chunk(b"hdr", 3, false, &sealed).is_err());
        assert!(key(2, 1).open_chunk(b"hdr", 3, false, &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(k.open_chunk(b"hdr", 3, false, &tampered).is_err());
        assert_eq!(format!("{k:?}"), "BackupKey([redacted])");
    }
}
