//! Key rotation and retention as the API and CLI show them: versions, counts and ids only.

use serde::Serialize;

/// A tenant's key versions and how much ciphertext each still protects.
#[derive(Clone, Debug, Serialize)]
pub struct TenantKeyStatus {
    pub tenant_id: String,
    /// The version every new write uses.
    pub current_version: u32,
    /// Ciphertexts under versions other than the current one (0 when re-encryption is done).
    pub reencryption_pending: i64,
    pub versions: Vec<KeyVersionStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyVersionStatus {
    pub version: u32,
    /// `current`; `draining` (older, its ciphertexts are being re-encrypted or wait for
    /// retirement); `retired` (its key is deleted).
    pub state: &'static str,
    pub ciphertexts: i64,
    pub created_at: String,
    pub retired_at: Option<String>,
}

/// What one re-encryption run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReencryptReport {
    pub rows_reencrypted: u64,
    pub versions_retired: Vec<u32>,
}

/// Root-key rotation: counts only.
#[derive(Clone, Debug, Serialize)]
pub struct RootRotationReport {
    pub tenant_keys_rewrapped: usize,
    pub user_secrets_resealed: usize,
}

/// The retention sweep's result.
#[derive(Clone, Debug, Serialize)]
pub struct PurgeReport {
    pub as_of: String,
    pub dry_run: bool,
    pub purged: Vec<PurgedCase>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PurgedCase {
    pub tenant_id: String,
    pub case_id: String,
    pub status: String,
    pub updated_at: String,
    pub retention_days: u32,
}
