//! Service settings: the part of the configuration the service layer obeys.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub session_idle_timeout_secs: u64,
    pub session_absolute_timeout_secs: u64,
    /// Consecutive failed logins that lock an account.
    pub login_lockout_threshold: u32,
    pub login_lockout_secs: u64,
    /// Backoff after the third consecutive failure: base × 2^(failures − 3), capped at 5 minutes.
    pub login_backoff_base_ms: u64,
    /// Current confidentiality agreement: staff must acknowledge this version.
    pub confidentiality_version: String,
    pub confidentiality_text: String,
    /// Origin line of the audit log's checkpoints; derived from the signing key when empty.
    pub audit_origin: String,
    /// Most entries committed in one batch.
    pub audit_max_batch: usize,
    /// Longest lifetime an API key may be given at creation.
    pub api_key_max_lifetime_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_idle_timeout_secs: 30 * 60,
            session_absolute_timeout_secs: 12 * 60 * 60,
            login_lockout_threshold: 10,
            login_lockout_secs: 30 * 60,
            login_backoff_base_ms: 1000,
            confidentiality_version: "2026-01".into(),
            confidentiality_text: "I will use customer data only for the purpose stated with each \
                access, disclose it to no one who is not authorised, and keep this obligation after \
                my engagement ends."
                .into(),
            audit_origin: String::new(),
            audit_max_batch: 4096,
            api_key_max_lifetime_secs: 365 * 24 * 60 * 60,
        }
    }
}
