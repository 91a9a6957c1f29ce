//! The operations, one module per noun. Each follows: facts → decision → audit → store → shape.

mod audit_log;
pub use audit_log::LoggedEntry;
pub use lockbox::ACCESS_REQUEST_STATES;
pub use notify::WebhookDelivery;
mod access_review;
mod api_keys;
mod assignees;
mod attachments;
mod auth;
mod case_gate;
mod cases;
mod comments;
mod contacts;
mod export_build;
mod exports;
mod grants;
mod inactivity;
mod incidents;
pub(crate) use incidents::WatchState;
pub use incidents::{Incident, WatchReport};
mod key_rotation;
mod lockbox;
mod mfa;
mod notify;
mod reach;
mod retention;
mod sessions;
mod shred;
pub use shred::{CERTIFICATE_HEADER, DeletionCertificate};
mod tenants;
mod users;

use crate::error::{ServiceError, ServiceResult};

/// Checks a required, trimmed, bounded text field; returns it trimmed.
pub(crate) fn required_text(
    value: Option<&str>,
    field: &'static str,
    max: usize,
) -> ServiceResult<String> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() && v.chars().count() <= max => Ok(v.to_owned()),
        _ => Err(ServiceError::validation(
            "a required field is empty or too long",
            &[field],
        )),
    }
}

/// An optional text field; `""` means absent.
pub(crate) fn optional_text(
    value: Option<&str>,
    field: &'static str,
    max: usize,
) -> ServiceResult<Option<String>> {
    match value {
        None => Ok(None),
        Some("") => Ok(None),
        Some(v) if v.chars().count() <= max => Ok(Some(v.to_owned())),
        Some(_) => Err(ServiceError::validation("a field is too long", &[field])),
    }
}

pub(crate) const MAX_FIELD_CHARS: usize = 10_000;

/// The cursor of the next page: the last item's key when the page came back full.
/// The `updated_at` of a record rewritten from the version `read`: later than it even within the
/// same millisecond (or behind another instance's clock), because updates apply only to the
/// version they read and a stamp seen twice would let a stale one through.
pub(crate) fn next_version(now: i64, read: i64) -> i64 {
    now.max(read.saturating_add(1))
}

pub(crate) fn next_cursor<T>(rows: &[T], limit: u32, key: impl Fn(&T) -> String) -> Option<String> {
    if u32::try_from(rows.len()).unwrap_or(u32::MAX) >= limit {
        rows.last().map(key)
    } else {
        None
    }
}
