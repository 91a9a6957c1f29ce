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
use crate::model::{Page, PageRequest};

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

/// One page of a list built in memory, keyed by record id (`key`) like the stored lists: the
/// items after the cursor's key, in key order. Items sharing a key stay on one page, so a page
/// ends early rather than split them (and holds them all, beyond the limit, if they alone
/// exceed it): the next page starts after the last key shown.
pub(crate) fn page_in_memory<T>(
    mut items: Vec<T>,
    page: &PageRequest,
    key: impl Fn(&T) -> &str,
) -> Page<T> {
    items.sort_by(|a, b| key(a).cmp(key(b)));
    if let Some(cursor) = page.cursor.as_deref() {
        items.retain(|item| key(item) > cursor);
    }
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    if items.len() <= limit {
        return Page {
            items,
            next_cursor: None,
        };
    }
    let cut = match (items.get(limit.saturating_sub(1)), items.get(limit)) {
        (Some(last), Some(next)) if key(last) == key(next) => {
            let split = key(last).to_owned();
            let before = items.iter().take_while(|item| key(item) != split).count();
            if before > 0 {
                before
            } else {
                items.iter().take_while(|item| key(item) == split).count()
            }
        }
        _ => limit,
    };
    items.truncate(cut);
    let next_cursor = items.last().map(|item| key(item).to_owned());
    Page { items, next_cursor }
}

/// The `updated_at` of a record rewritten from the version `read`: later than it even within the
/// same millisecond (or behind another instance's clock), because updates apply only to the
/// version they read and a stamp seen twice would let a stale one through.
pub(crate) fn next_version(now: i64, read: i64) -> i64 {
    now.max(read.saturating_add(1))
}

/// The cursor of the next page: the last item's key when the page came back full.
pub(crate) fn next_cursor<T>(rows: &[T], limit: u32, key: impl Fn(&T) -> String) -> Option<String> {
    if u32::try_from(rows.len()).unwrap_or(u32::MAX) >= limit {
        rows.last().map(key)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::page_in_memory;
    use crate::model::PageRequest;

    type Seen = (Vec<&'static str>, Option<String>);

    fn page(limit: u32, cursor: Option<&str>) -> Seen {
        let request = PageRequest {
            limit,
            cursor: cursor.map(str::to_owned),
        };
        let page = page_in_memory(vec!["c", "a", "b", "b", "d"], &request, |s| s);
        (page.items, page.next_cursor)
    }

    fn seen(items: &[&'static str], next: Option<&str>) -> Seen {
        (items.to_vec(), next.map(str::to_owned))
    }

    #[test]
    fn pages_in_memory_by_key_without_splitting_a_key() {
        // The page would end between the two "b": it ends before them instead.
        assert_eq!(page(2, None), seen(&["a"], Some("a")));
        assert_eq!(page(2, Some("a")), seen(&["b", "b"], Some("b")));
        assert_eq!(page(2, Some("b")), seen(&["c", "d"], None));
        // A key's items alone exceed the limit: all of them, past it.
        assert_eq!(page(1, Some("a")), seen(&["b", "b"], Some("b")));
        assert_eq!(page(50, None), seen(&["a", "b", "b", "c", "d"], None));
        assert_eq!(page(50, Some("d")), seen(&[], None));
        // Never asked by the API (1 to 500), and still no panic.
        assert_eq!(page(0, None), seen(&["a"], Some("a")));
    }
}
