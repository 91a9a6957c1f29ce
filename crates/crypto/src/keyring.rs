//! Field encryption and blind indexes with all unwrapped key versions of one tenant.

use std::fmt;

use aws_lc_rs::aead::LessSafeKey;
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::format::{self, push_lp};
use crate::tenant::TenantKeys;

const FIELD_LABEL: &[u8] = b"strongroom/field/v1";
const INDEX_LABEL: &[u8] = b"strongroom/blind-index/v1";
const ATTACHMENT_LABEL: &[u8] = b"strongroom/attachment/v1";

/// Width of a blind index, in bits (2 bytes).
///
/// CipherSweet's planning guidance sizes an index so that values *collide by design*: with `R` rows
/// an `L`-bit index returns about `R / 2^L` false positives per lookup, which callers filter out after
/// decrypting, and equal indexes then say little about equal values. 16 bits keeps a tenant of 65 536
/// contacts at about one false positive per lookup (cheap to filter) while a tenant of a few thousand
/// contacts still shares index values between different addresses, so the index alone does not tell
/// which records hold the same address.
pub const BLIND_INDEX_BITS: u32 = 16;
const BLIND_INDEX_BYTES: usize = (BLIND_INDEX_BITS / 8) as usize;

/// Where a field value lives; all of it is bound into the ciphertext's associated data, so a
/// ciphertext copied to another record, field, kind or tenant fails to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldContext<'a> {
    pub kind: &'a str,
    pub record_id: &'a str,
    pub field: &'a str,
}

/// Which key of a version seals a value, and the label bound into its associated data.
#[derive(Clone, Copy)]
enum Scheme {
    Field,
    Attachment,
}

impl Scheme {
    fn label(self) -> &'static [u8] {
        match self {
            Scheme::Field => FIELD_LABEL,
            Scheme::Attachment => ATTACHMENT_LABEL,
        }
    }

    fn key(self, keys: &TenantKeys) -> &LessSafeKey {
        match self {
            Scheme::Field => keys.aead(),
            Scheme::Attachment => keys.attachment_aead(),
        }
    }
}

/// All unwrapped key versions of one tenant; the highest version is used for new writes.
pub struct TenantKeyring {
    tenant_id: String,
    /// Sorted by version, no duplicates, never empty.
    keys: Vec<TenantKeys>,
    current: u32,
    /// Versions whose keys are gone while ciphertexts may still name them.
    lost: Vec<u32>,
}

impl TenantKeyring {
    /// A keyring over `versions` (at least one, no version twice).
    pub fn new(tenant_id: &str, mut versions: Vec<TenantKeys>) -> Result<Self, CryptoError> {
        versions.sort_by_key(TenantKeys::version);
        if let Some(w) = versions
            .windows(2)
            .find(|w| w.first().map(TenantKeys::version) == w.get(1).map(TenantKeys::version))
        {
            let version = w.first().map(TenantKeys::version).unwrap_or_default();
            return Err(CryptoError::DuplicateKeyVersion { version });
        }
        let current = versions
            .last()
            .map(TenantKeys::version)
            .ok_or(CryptoError::EmptyKeyring)?;
        Ok(Self {
            tenant_id: tenant_id.to_owned(),
            keys: versions,
            current,
            lost: Vec::new(),
        })
    }

    /// Marks versions whose keys are known to be lost (a restore accepted ciphertexts under
    /// them): opening such a ciphertext fails with [`CryptoError::KeyVersionLost`], which a
    /// caller may show as unreadable, where any other version it does not hold stays
    /// [`CryptoError::UnknownKeyVersion`]. Versions held are not marked.
    #[must_use]
    pub fn with_lost_versions(mut self, versions: impl IntoIterator<Item = u32>) -> Self {
        self.lost = versions
            .into_iter()
            .filter(|v| self.keys(*v).is_none())
            .collect();
        self
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The version new ciphertexts and blind indexes use.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// All versions held, ascending.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(TenantKeys::version)
    }

    /// The keys of one version, if held.
    pub fn keys(&self, version: u32) -> Option<&TenantKeys> {
        self.keys
            .binary_search_by_key(&version, TenantKeys::version)
            .ok()
            .and_then(|i| self.keys.get(i))
    }

    fn keys_or_err(&self, version: u32) -> Result<&TenantKeys, CryptoError> {
        self.keys(version).ok_or(if self.lost.contains(&version) {
            CryptoError::KeyVersionLost { version }
        } else {
            CryptoError::UnknownKeyVersion { version }
        })
    }

    /// What a ciphertext is bound to: its scheme, header, tenant, record and field.
    fn bound_aad(
        &self,
        scheme: Scheme,
        header: &[u8],
        ctx: &FieldContext<'_>,
        version: u32,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut aad = Vec::with_capacity(
            64 + header.len()
                + self.tenant_id.len()
                + ctx.kind.len()
                + ctx.record_id.len()
                + ctx.field.len(),
        );
        push_lp(&mut aad, scheme.label())?;
        push_lp(&mut aad, header)?;
        push_lp(&mut aad, self.tenant_id.as_bytes())?;
        push_lp(&mut aad, ctx.kind.as_bytes())?;
        push_lp(&mut aad, ctx.record_id.as_bytes())?;
        push_lp(&mut aad, ctx.field.as_bytes())?;
        aad.extend_from_slice(&version.to_be_bytes());
        Ok(aad)
    }

    fn seal(
        &self,
        scheme: Scheme,
        ctx: &FieldContext<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let keys = self.keys_or_err(self.current)?;
        let header = format::new_header(self.current)?;
        let aad = self.bound_aad(scheme, &header, ctx, self.current)?;
        format::seal(scheme.key(keys), &header, &aad, plaintext)
    }

    fn open(
        &self,
        scheme: Scheme,
        ctx: &FieldContext<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parsed = format::parse(ciphertext)?;
        let keys = self.keys_or_err(parsed.version)?;
        let aad = self.bound_aad(scheme, parsed.header, ctx, parsed.version)?;
        format::open(scheme.key(keys), &parsed, &aad, CryptoError::Decrypt)
    }

    /// Encrypts one field value under the current version.
    pub fn encrypt_field(
        &self,
        ctx: &FieldContext<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal(Scheme::Field, ctx, plaintext)
    }

    /// Decrypts a field value with whichever held version it names.
    pub fn decrypt_field(
        &self,
        ctx: &FieldContext<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(Scheme::Field, ctx, ciphertext)
    }

    /// Decrypts with any held version and re-encrypts under the current one (rotation jobs).
    pub fn reencrypt_field(
        &self,
        ctx: &FieldContext<'_>,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let plain = self.decrypt_field(ctx, ciphertext)?;
        self.encrypt_field(ctx, &plain)
    }

    /// Encrypts a file's content under the current version's attachment key. Same layout as a
    /// field, so rotation and retirement treat both alike; a different key and scheme label, so a
    /// field ciphertext never opens as an attachment or the other way round.
    pub fn encrypt_attachment(
        &self,
        ctx: &FieldContext<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal(Scheme::Attachment, ctx, plaintext)
    }

    /// Decrypts a file's content with whichever held version it names.
    pub fn decrypt_attachment(
        &self,
        ctx: &FieldContext<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(Scheme::Attachment, ctx, ciphertext)
    }

    /// Blind index of an already-normalised value under the current version's index key,
    /// separated by record kind and field name. See [`BLIND_INDEX_BITS`].
    pub fn blind_index(
        &self,
        kind: &str,
        field: &str,
        normalised: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.blind_index_at(self.current, kind, field, normalised)
    }

    /// Blind index under a given version's key: lets a rotation job or a lookup during
    /// re-indexing match rows still indexed under an older version.
    pub fn blind_index_at(
        &self,
        version: u32,
        kind: &str,
        field: &str,
        normalised: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let keys = self.keys_or_err(version)?;
        // One buffer and one HMAC call: cheaper than many small updates across the FFI.
        let mut msg = Zeroizing::new(Vec::with_capacity(
            16 + INDEX_LABEL.len() + kind.len() + field.len() + normalised.len(),
        ));
        for part in [INDEX_LABEL, kind.as_bytes(), field.as_bytes(), normalised] {
            push_lp(&mut msg, part)?;
        }
        let tag = hmac::sign(keys.hmac(), &msg);
        Ok(tag
            .as_ref()
            .iter()
            .take(BLIND_INDEX_BYTES)
            .copied()
            .collect())
    }

    /// The key version a ciphertext was written with, without decrypting it.
    pub fn ciphertext_version(ciphertext: &[u8]) -> Result<u32, CryptoError> {
        format::parse(ciphertext).map(|p| p.version)
    }
}

impl fmt::Debug for TenantKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantKeyring")
            .field("tenant_id", &self.tenant_id)
            .field("versions", &self.versions().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// Normal form of an e-mail address for blind indexing: trimmed and lowercased (Unicode
/// lowercase, which includes ASCII). Applies to the whole address; no provider-specific rules.
pub fn normalise_email(s: &str) -> String {
    s.trim().to_lowercase()
}
