//! Service settings: the part of the configuration the service layer obeys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scan::Scanner;

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
    /// Failed logins from one client address (an IPv6 /64) in `login_source_window_secs` after
    /// which that address's logins are refused until the window ends: a password spray over many
    /// usernames meets no per-username backoff. 0 turns it off, for servers that see every
    /// client through one address (a TCP load balancer that does not preserve it).
    pub login_source_max_failures: u32,
    pub login_source_window_secs: u64,
    /// Current confidentiality agreement: staff must acknowledge this version.
    pub confidentiality_version: String,
    pub confidentiality_text: String,
    /// Origin line of the audit log's checkpoints; derived from the signing key when empty.
    pub audit_origin: String,
    /// Most requests waiting on the audit log at once (the batch committing and the one
    /// gathering behind it), and so most in one batch.
    pub audit_max_batch: usize,
    /// With a shared (PostgreSQL) store: how long sessions, keys, users and tenant settings stay
    /// cached, which bounds how late a change made on another instance is seen here.
    pub shared_cache_max_age_ms: u64,
    /// Accounts without a successful login for this long are suspended (PCI DSS 8.2.6: 90 days).
    pub inactivity_suspend_days: u32,
    /// Administrators are warned this many days before an account is suspended.
    pub inactivity_warn_days: u32,
    /// How often each server runs the inactivity sweep; 0 turns the background job off.
    pub inactivity_sweep_interval_secs: u64,
    /// Staff must have a second factor; one without can only enrol after logging in.
    pub mfa_required_for_staff: bool,
    /// The same for tenant administrators.
    pub mfa_required_for_tenant_admins: bool,
    /// A second factor is enrolled only within this long of the login that opened the session:
    /// a session taken later (a stolen token) cannot put its own factor on the account.
    pub mfa_enrolment_window_secs: u64,
    /// Customer lockbox: an unanswered operator access request expires after this long (12 hours).
    pub access_request_ttl_secs: u64,
    /// Tenant admins are notified this long before an approved grant ends.
    pub grant_expiry_warning_secs: u64,
    /// How often each server looks for webhooks to deliver and grants about to end; 0 turns the
    /// background job off (notifications still queue and show in the API).
    pub webhook_poll_interval_ms: u64,
    /// Delivery attempts per notification before it is marked failed.
    pub webhook_max_attempts: u32,
    /// Retry backoff: base × 2^(attempts − 1), capped at one hour.
    pub webhook_backoff_base_ms: u64,
    /// Time limit of one delivery attempt.
    pub webhook_timeout_ms: u64,
    /// Lets tenants point webhooks at plain `http://` on this machine (a local relay, tests).
    pub webhook_allow_loopback_http: bool,
    /// Longest lifetime an API key may be given at creation.
    pub api_key_max_lifetime_secs: u64,
    /// Records a user may put into limited exports per rolling 24 hours, by role (the highest of
    /// the caller's roles applies; a role not listed may export nothing). Tenant archives do not count.
    pub export_quota_per_day: BTreeMap<String, u64>,
    /// A limited export that takes its requester's records exported without a second person's
    /// approval in the last 24 hours past this many needs that approval (so that a large export
    /// split into small ones needs it too).
    pub export_approval_threshold: u64,
    /// How long an export can be downloaded (and a pending one approved).
    pub export_download_ttl_secs: u64,
    /// Most records in one export (memory bound: the archive is built in memory).
    pub export_max_records: u64,
    /// How often each server drops the ciphertext of expired exports; 0 turns the job off
    /// (expired exports are still refused and dropped when asked for).
    pub export_sweep_interval_secs: u64,
    /// Rows re-encrypted per transaction by the key-rotation job.
    pub reencrypt_batch_size: u32,
    /// Pause between re-encryption batches, leaving the writer to user traffic.
    pub reencrypt_batch_pause_ms: u64,
    /// How often each server looks for ciphertext under older key versions (and right after a
    /// rotation); 0 turns the background job off.
    pub key_job_interval_secs: u64,
    /// An older key version is retired only once the newest is this old: longer than any request
    /// that may still hold the previous keyring.
    pub key_retire_grace_secs: u64,
    /// How often each server purges closed cases past their tenant's `retention_days`; 0 = off.
    pub retention_sweep_interval_secs: u64,
    /// How often the breach watch reads the entries appended since its last pass; 0 = off.
    pub watch_interval_ms: u64,
    /// The breach watch counts events within this sliding window.
    pub watch_window_secs: u64,
    /// Records of one tenant read by one account within the window that make an incident (a
    /// list counts the records it returned); 0 turns the rule off, as for the others.
    pub watch_mass_read_records: u64,
    /// Accounts whose every role is a customer's (tenant_admin, tenant_user, their API keys) page
    /// through their own tenant's records in the normal course of things: their mass-read
    /// threshold is `watch_mass_read_records` times this (1 = the same; 0 turns their rule off).
    /// A factor, so that lowering staff's threshold lowers theirs; a stolen customer token
    /// draining its tenant still reaches it.
    pub watch_mass_read_customer_factor: u64,
    /// Refusals for want of an assignment or grant, per account and tenant, within the window.
    pub watch_denials_outside_grant: u64,
    /// Failed logins to one account within the window.
    pub watch_login_failures_per_account: u64,
    /// Failed logins across the platform within the window.
    pub watch_login_failures_platform: u64,
    /// Largest file a case may be given, in bytes (uploads are held in memory while scanned).
    pub attachment_max_bytes: u64,
    /// What scans uploads before they are stored: `builtin` (the EICAR test file only: for
    /// development), `clamd:HOST:PORT` or `clamd:/path/to/clamd.sock` (ClamAV's daemon).
    pub attachment_scanner: Scanner,
    /// Longest wait for a verdict; without one the upload is refused (fail closed).
    pub attachment_scan_timeout_ms: u64,
    /// How long an upload's body may take to arrive once its turn has come (uploads take turns,
    /// a few at a time): a sender that trickles it loses the turn.
    pub attachment_body_timeout_ms: u64,
}

impl Settings {
    /// The settings to which 0 gives no meaning: it would switch a protection off (a lockout of
    /// no time), refuse everything (uploads with no time to be scanned) or expire at once.
    pub fn must_be_positive(&self) -> [(&'static str, u64); 19] {
        [
            // 0 would not turn the sweep off (its interval does): it would suspend everyone.
            (
                "inactivity_suspend_days",
                u64::from(self.inactivity_suspend_days),
            ),
            ("session_idle_timeout_secs", self.session_idle_timeout_secs),
            (
                "session_absolute_timeout_secs",
                self.session_absolute_timeout_secs,
            ),
            (
                "login_lockout_threshold",
                u64::from(self.login_lockout_threshold),
            ),
            ("login_lockout_secs", self.login_lockout_secs),
            ("login_source_window_secs", self.login_source_window_secs),
            ("mfa_enrolment_window_secs", self.mfa_enrolment_window_secs),
            (
                "audit_max_batch",
                u64::try_from(self.audit_max_batch).unwrap_or(u64::MAX),
            ),
            ("access_request_ttl_secs", self.access_request_ttl_secs),
            ("webhook_max_attempts", u64::from(self.webhook_max_attempts)),
            ("webhook_timeout_ms", self.webhook_timeout_ms),
            ("api_key_max_lifetime_secs", self.api_key_max_lifetime_secs),
            ("export_download_ttl_secs", self.export_download_ttl_secs),
            ("export_max_records", self.export_max_records),
            ("reencrypt_batch_size", u64::from(self.reencrypt_batch_size)),
            ("watch_window_secs", self.watch_window_secs),
            ("attachment_max_bytes", self.attachment_max_bytes),
            (
                "attachment_scan_timeout_ms",
                self.attachment_scan_timeout_ms,
            ),
            (
                "attachment_body_timeout_ms",
                self.attachment_body_timeout_ms,
            ),
        ]
    }

    /// Combinations that cannot be meant.
    pub fn check(&self) -> Result<(), String> {
        if self.session_absolute_timeout_secs < self.session_idle_timeout_secs {
            return Err(
                "session_absolute_timeout_secs must be at least session_idle_timeout_secs".into(),
            );
        }
        if self.confidentiality_version.trim().is_empty() {
            return Err("confidentiality_version must not be empty".into());
        }
        Ok(())
    }
}

fn default_export_quotas() -> BTreeMap<String, u64> {
    [
        ("tenant_admin", 100_000),
        ("tenant_user", 10_000),
        ("support_supervisor", 1_000),
        ("support_engineer", 200),
        ("security_officer", 1_000),
    ]
    .into_iter()
    .map(|(r, n)| (r.to_owned(), n))
    .collect()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_idle_timeout_secs: 30 * 60,
            session_absolute_timeout_secs: 12 * 60 * 60,
            login_lockout_threshold: 10,
            login_lockout_secs: 30 * 60,
            login_backoff_base_ms: 1000,
            login_source_max_failures: 50,
            login_source_window_secs: 15 * 60,
            confidentiality_version: "2026-01".into(),
            confidentiality_text: "I will use customer data only for the purpose stated with each \
                access, disclose it to no one who is not authorised, and keep this obligation after \
                my engagement ends."
                .into(),
            audit_origin: String::new(),
            audit_max_batch: 4096,
            shared_cache_max_age_ms: 1_000,
            inactivity_suspend_days: 90,
            inactivity_warn_days: 14,
            inactivity_sweep_interval_secs: 60 * 60,
            mfa_required_for_staff: true,
            mfa_required_for_tenant_admins: true,
            mfa_enrolment_window_secs: 10 * 60,
            access_request_ttl_secs: 12 * 60 * 60,
            grant_expiry_warning_secs: 15 * 60,
            webhook_poll_interval_ms: 1000,
            webhook_max_attempts: 8,
            webhook_backoff_base_ms: 2000,
            webhook_timeout_ms: 5000,
            webhook_allow_loopback_http: false,
            api_key_max_lifetime_secs: 365 * 24 * 60 * 60,
            export_quota_per_day: default_export_quotas(),
            export_approval_threshold: 100,
            export_download_ttl_secs: 24 * 60 * 60,
            export_max_records: 200_000,
            export_sweep_interval_secs: 5 * 60,
            reencrypt_batch_size: 200,
            reencrypt_batch_pause_ms: 0,
            key_job_interval_secs: 60,
            key_retire_grace_secs: 60,
            retention_sweep_interval_secs: 60 * 60,
            watch_interval_ms: 1000,
            watch_window_secs: 10 * 60,
            watch_mass_read_records: 5000,
            watch_mass_read_customer_factor: 10,
            watch_denials_outside_grant: 10,
            watch_login_failures_per_account: 10,
            watch_login_failures_platform: 200,
            attachment_max_bytes: 10 * 1024 * 1024,
            attachment_scanner: Scanner::Builtin,
            attachment_scan_timeout_ms: 30_000,
            attachment_body_timeout_ms: 30_000,
        }
    }
}
