//! Per-tenant key material and its wrapping under the root key.
//!
//! Wrapped blob = the sealed layout of `format.rs`, sealed under a wrapping key derived from the
//! root key by HKDF (so the root key itself is never used directly as an AES key and can later
//! derive other keys), with AD binding the tenant id and version. Deleting a tenant's wrapped
//! blobs crypto-shreds everything encrypted under them.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::format::{self, push_lp};
use crate::secret::{KEY_LEN, RootKey, SecretKey};

const WRAP_LABEL: &[u8] = b"strongroom/tenant-keys/v1";
const WRAP_SALT: &[u8] = b"strongroom/root-key/v1";
const WRAP_INFO: &[u8] = b"strongroom/tenant-key-wrap/v1";

/// One version of a tenant's keys, with the primitives' key objects built once so that field
/// encryption does no key schedule per call.
pub struct TenantKeys {
    version: u32,
    data: SecretKey,
    index: SecretKey,
    attachment: SecretKey,
    aead: LessSafeKey,
    attachment_aead: LessSafeKey,
    hmac: hmac::Key,
}

impl TenantKeys {
    /// Fresh random keys for `version`.
    pub fn generate(version: u32) -> Result<Self, CryptoError> {
        Self::from_secrets(
            version,
            SecretKey::generate()?,
            SecretKey::generate()?,
            SecretKey::generate()?,
        )
    }

    /// Assembles keys from existing secrets (unwrap, test vectors).
    pub fn from_secrets(
        version: u32,
        data: SecretKey,
        index: SecretKey,
        attachment: SecretKey,
    ) -> Result<Self, CryptoError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, data.expose()).map_err(|_| CryptoError::Encrypt)?;
        let attachment_unbound =
            UnboundKey::new(&AES_256_GCM, attachment.expose()).map_err(|_| CryptoError::Encrypt)?;
        let hmac = hmac::Key::new(hmac::HMAC_SHA256, index.expose());
        Ok(Self {
            version,
            data,
            index,
            attachment,
            aead: LessSafeKey::new(unbound),
            attachment_aead: LessSafeKey::new(attachment_unbound),
            hmac,
        })
    }

    /// The key version; ciphertexts carry it so old versions stay readable after rotation.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The attachment key: file contents are sealed under it, apart from the fields.
    pub fn attachment_key(&self) -> &SecretKey {
        &self.attachment
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.aead
    }

    pub(crate) fn attachment_aead(&self) -> &LessSafeKey {
        &self.attachment_aead
    }

    pub(crate) fn hmac(&self) -> &hmac::Key {
        &self.hmac
    }
}

impl fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantKeys")
            .field("version", &self.version)
            .field("keys", &"[redacted]")
            .finish()
    }
}

/// The AEAD key that wraps tenant keys, derived from the root key.
fn wrapping_key(root: &RootKey) -> Result<LessSafeKey, CryptoError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, WRAP_SALT).extract(root.secret().expose());
    let okm = prk
        .expand(&[WRAP_INFO], &AES_256_GCM)
        .map_err(|_| CryptoError::Encrypt)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn wrap_aad(header: &[u8], tenant_id: &str, version: u32) -> Result<Vec<u8>, CryptoError> {
    let mut aad = Vec::with_capacity(64 + tenant_id.len());
    push_lp(&mut aad, WRAP_LABEL)?;
    push_lp(&mut aad, header)?;
    push_lp(&mut aad, tenant_id.as_bytes())?;
    aad.extend_from_slice(&version.to_be_bytes());
    Ok(aad)
}

/// Seals `keys` under the root key; the blob is safe to store and is bound to `tenant_id`.
pub fn wrap_tenant_keys(
    root: &RootKey,
    tenant_id: &str,
    keys: &TenantKeys,
) -> Result<Vec<u8>, CryptoError> {
    let header = format::new_header(keys.version)?;
    let aad = wrap_aad(&header, tenant_id, keys.version)?;
    let mut plain = Zeroizing::new(Vec::with_capacity(3 * KEY_LEN));
    plain.extend_from_slice(keys.data.expose());
    plain.extend_from_slice(keys.index.expose());
    plain.extend_from_slice(keys.attachment.expose());
    format::seal(&wrapping_key(root)?, &header, &aad, &plain)
}

/// Opens a blob made by [`wrap_tenant_keys`]; fails unless root key, tenant id and version all
/// match the ones it was wrapped with.
pub fn unwrap_tenant_keys(
    root: &RootKey,
    tenant_id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<TenantKeys, CryptoError> {
    let parsed = format::parse(wrapped)?;
    if parsed.version != version {
        return Err(CryptoError::KeyVersionMismatch {
            expected: version,
            found: parsed.version,
        });
    }
    let aad = wrap_aad(parsed.header, tenant_id, version)?;
    let plain = format::open(&wrapping_key(root)?, &parsed, &aad, CryptoError::Unwrap)?;
    if plain.len() != 3 * KEY_LEN {
        return Err(CryptoError::Malformed {
            reason: "wrapped keys have the wrong length",
        });
    }
    let part = |i: usize| {
        plain
            .get(i * KEY_LEN..(i + 1) * KEY_LEN)
            .ok_or(CryptoError::Malformed {
                reason: "wrapped keys have the wrong length",
            })
            .and_then(SecretKey::from_bytes)
    };
    TenantKeys::from_secrets(version, part(0)?, part(1)?, part(2)?)
}
