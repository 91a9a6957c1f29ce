//! The breach watch (DESIGN.md "breach handling"): reads the audit log as it grows and names the
//! patterns a breach leaves behind (mass reads, staff reaching for data outside their grants,
//! repeated failed logins, an entry that no longer matches its leaf hash). It only observes: the
//! service turns what it names into incidents and tells the tenants concerned.
//!
//! Counts are kept per subject in a sliding window of ten buckets, on the entries' own times, so
//! what the watch raises follows from the log, not from when it happened to run.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

use crate::clock::parse_rfc3339;

/// What an incident is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IncidentKind {
    /// One account read an unusual number of a tenant's records.
    MassRead,
    /// Staff asked again and again for a tenant's data without an assignment or a grant.
    AccessOutsideGrant,
    /// Failed logins to one account.
    LoginFailures,
    /// Failed logins across the platform: guessing over many or unknown accounts.
    PlatformLoginFailures,
    /// An entry does not match its leaf hash, its index or its encoding.
    AuditLogIntegrity,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 5] = [
        IncidentKind::MassRead,
        IncidentKind::AccessOutsideGrant,
        IncidentKind::LoginFailures,
        IncidentKind::PlatformLoginFailures,
        IncidentKind::AuditLogIntegrity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::MassRead => "mass_read",
            IncidentKind::AccessOutsideGrant => "access_outside_grant",
            IncidentKind::LoginFailures => "login_failures",
            IncidentKind::PlatformLoginFailures => "platform_login_failures",
            IncidentKind::AuditLogIntegrity => "audit_log_integrity",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// When a pattern becomes an incident: counts within `window_secs`.
#[derive(Clone, Debug)]
pub struct WatchRules {
    pub window_secs: u64,
    /// Records of one tenant read by one account (a list counts the records it returned).
    pub mass_read_records: u64,
    /// Requests of one account for one tenant's data refused for want of an assignment or grant.
    pub denials_outside_grant: u64,
    pub login_failures_per_account: u64,
    pub login_failures_platform: u64,
}

/// A pattern seen, before it is an incident: the service opens one, or adds to the open one of
/// the same kind, tenant and subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspicion {
    pub kind: IncidentKind,
    pub tenant_id: Option<String>,
    /// The account whose activity it is.
    pub subject_id: Option<String>,
    /// The log entries that make it up, first to last (evidence with inclusion proofs).
    pub first_index: u64,
    pub last_index: u64,
    pub events: u64,
}

impl Suspicion {
    pub fn key(&self) -> SuspicionKey {
        (self.kind, self.tenant_id.clone(), self.subject_id.clone())
    }
}

pub type SuspicionKey = (IncidentKind, Option<String>, Option<String>);

/// Reads that count towards a mass read: point reads count one record, lists what they returned.
const POINT_READS: &[&str] = &["contact.read", "case.read", "export.download"];
const LIST_READS: &[&str] = &[
    "contact.list",
    "contact.search",
    "case.list",
    "comment.list",
];

/// Login refusals that are not failures: the client must send its second factor first.
const NOT_A_LOGIN_FAILURE: &[&str] = &["mfa_required"];

const BUCKETS: usize = 10;

/// Windows untouched for longer than the window are dropped every this many entries.
const SWEEP_EVERY: u64 = 65_536;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    slot: i64,
    count: u64,
    first_index: u64,
}

#[derive(Clone, Debug, Default)]
struct Window {
    buckets: [Bucket; BUCKETS],
}

impl Window {
    /// Adds `n` events at `slot`; returns the events within the window and the first one's index.
    fn add(&mut self, slot: i64, n: u64, index: u64) -> (u64, u64) {
        let at = usize::try_from(slot.rem_euclid(BUCKETS as i64)).unwrap_or(0);
        let bucket = &mut self.buckets[at];
        if bucket.slot < slot || bucket.count == 0 {
            *bucket = Bucket {
                slot,
                count: 0,
                first_index: index,
            };
        }
        bucket.count = bucket.count.saturating_add(n);
        self.live(slot)
    }

    fn live(&self, now_slot: i64) -> (u64, u64) {
        self.buckets
            .iter()
            .filter(|b| b.count > 0 && b.slot > now_slot - BUCKETS as i64)
            .fold((0, u64::MAX), |(sum, first), b| {
                (sum.saturating_add(b.count), first.min(b.first_index))
            })
    }

    fn newest_slot(&self) -> i64 {
        self.buckets.iter().map(|b| b.slot).max().unwrap_or(0)
    }
}

/// The fields of an entry the rules read (see `crate::audit::entry` for the encoding).
#[derive(Deserialize)]
struct Seen<'a> {
    index: u64,
    #[serde(borrow)]
    time: &'a str,
    #[serde(borrow)]
    actor: Option<SeenActor<'a>>,
    #[serde(borrow)]
    action: &'a str,
    #[serde(borrow)]
    tenant_id: Option<&'a str>,
    records: Vec<IgnoredAny>,
    #[serde(borrow)]
    decision: &'a str,
    #[serde(borrow)]
    reason: Option<&'a str>,
}

#[derive(Deserialize)]
struct SeenActor<'a> {
    #[serde(borrow)]
    user_id: &'a str,
}

/// One stored entry as the watch reads it.
#[derive(Clone, Copy, Debug)]
pub struct WatchedEntry<'a> {
    pub index: u64,
    pub tenant_id: Option<&'a str>,
    pub entry: &'a [u8],
    /// The stored leaf hash (absent on rows written before leaf hashes were kept).
    pub leaf_hash: Option<&'a [u8]>,
}

pub struct Watch {
    rules: WatchRules,
    bucket_ms: i64,
    windows: HashMap<SuspicionKey, Window>,
    seen: u64,
}

impl Watch {
    pub fn new(rules: WatchRules) -> Self {
        let window_ms = i64::try_from(rules.window_secs.max(1))
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        Self {
            bucket_ms: (window_ms / BUCKETS as i64).max(1),
            rules,
            windows: HashMap::new(),
            seen: 0,
        }
    }

    /// Reads one entry, expected at `expected_index`. With `raise` false it only counts (priming
    /// the windows with entries an earlier pass already judged).
    pub fn observe(
        &mut self,
        expected_index: u64,
        row: WatchedEntry<'_>,
        raise: bool,
        found: &mut Vec<Suspicion>,
    ) {
        self.seen = self.seen.wrapping_add(1);
        if self.seen.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
        let seen = match self.check(expected_index, row) {
            Ok(seen) => seen,
            Err(()) => {
                if raise {
                    found.push(Suspicion {
                        kind: IncidentKind::AuditLogIntegrity,
                        tenant_id: row.tenant_id.map(str::to_owned),
                        subject_id: None,
                        first_index: row.index.min(expected_index),
                        last_index: row.index.max(expected_index),
                        events: 1,
                    });
                }
                return;
            }
        };
        let Some(at_ms) = parse_rfc3339(seen.time) else {
            return;
        };
        let slot = at_ms.div_euclid(self.bucket_ms);
        let actor = seen.actor.as_ref().map(|a| a.user_id);
        let allowed = seen.decision == "allow";
        let rules = self.rules.clone();
        let mut count = |kind, tenant: Option<&str>, subject: Option<&str>, n, threshold| {
            self.count(
                (kind, tenant.map(str::to_owned), subject.map(str::to_owned)),
                slot,
                (n, row.index),
                threshold,
                raise,
                found,
            );
        };
        if allowed && seen.tenant_id.is_some() && actor.is_some() {
            let n = if POINT_READS.contains(&seen.action) {
                1
            } else if LIST_READS.contains(&seen.action) {
                seen.records.len() as u64
            } else {
                0
            };
            if n > 0 {
                let threshold = rules.mass_read_records;
                count(IncidentKind::MassRead, seen.tenant_id, actor, n, threshold);
            }
        }
        if !allowed && seen.reason == Some("access_grant_required") && seen.tenant_id.is_some() {
            let threshold = rules.denials_outside_grant;
            count(
                IncidentKind::AccessOutsideGrant,
                seen.tenant_id,
                actor,
                1,
                threshold,
            );
        }
        if !allowed
            && seen.action == "auth.login"
            && !seen
                .reason
                .is_some_and(|r| NOT_A_LOGIN_FAILURE.contains(&r))
        {
            if actor.is_some() {
                let threshold = rules.login_failures_per_account;
                count(IncidentKind::LoginFailures, None, actor, 1, threshold);
            }
            let threshold = rules.login_failures_platform;
            count(
                IncidentKind::PlatformLoginFailures,
                None,
                None,
                1,
                threshold,
            );
        }
    }

    /// The entry decoded, if it is the entry its row and its leaf hash say it is.
    fn check<'e>(&self, expected_index: u64, row: WatchedEntry<'e>) -> Result<Seen<'e>, ()> {
        if row.index != expected_index {
            return Err(());
        }
        if let Some(stored) = row.leaf_hash {
            let mut leaf = Sha256::new();
            leaf.update([0u8]);
            leaf.update(row.entry);
            if leaf.finalize().as_slice() != stored {
                return Err(());
            }
        }
        let seen: Seen<'e> = serde_json::from_slice(row.entry).map_err(|_| ())?;
        if seen.index != row.index || seen.tenant_id != row.tenant_id {
            return Err(());
        }
        Ok(seen)
    }

    fn count(
        &mut self,
        key: SuspicionKey,
        slot: i64,
        (n, index): (u64, u64),
        threshold: u64,
        raise: bool,
        found: &mut Vec<Suspicion>,
    ) {
        if threshold == 0 {
            return;
        }
        let window = self.windows.entry(key.clone()).or_default();
        let (events, first_index) = window.add(slot, n, index);
        if events < threshold {
            return;
        }
        // Counting starts afresh, so the next report takes another `threshold` events.
        *window = Window::default();
        if raise {
            let (kind, tenant_id, subject_id) = key;
            found.push(Suspicion {
                kind,
                tenant_id,
                subject_id,
                first_index: first_index.min(index),
                last_index: index,
                events,
            });
        }
    }

    /// Drops windows with nothing in them any more.
    fn sweep(&mut self) {
        let Some(newest) = self.windows.values().map(Window::newest_slot).max() else {
            return;
        };
        self.windows
            .retain(|_, w| w.newest_slot() > newest - BUCKETS as i64);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::audit::{Actor, AuditDecision, AuditRecord, encode};
    use crate::clock::rfc3339;

    const MINUTE: i64 = 60_000;

    fn rules() -> WatchRules {
        WatchRules {
            window_secs: 600,
            mass_read_records: 5,
            denials_outside_grant: 3,
            login_failures_per_account: 3,
            login_failures_platform: 4,
        }
    }

    fn record(action: &'static str, actor: Option<&str>, tenant: Option<&str>) -> AuditRecord {
        let mut r = AuditRecord::new(action, "req");
        r.actor = actor.map(|id| Actor {
            user_id: id.into(),
            roles: vec!["support_engineer".into()],
        });
        r.tenant_id = tenant.map(str::to_owned);
        r
    }

    fn denied(mut r: AuditRecord, reason: &'static str) -> AuditRecord {
        r.decision = AuditDecision::Deny;
        r.reason = Some(reason);
        r
    }

    /// Feeds `records` at `at_ms` each, as entries from `watch.next` on; returns what it found.
    struct Feed {
        watch: Watch,
        next: u64,
    }

    impl Feed {
        fn new() -> Self {
            Self {
                watch: Watch::new(rules()),
                next: 0,
            }
        }

        fn entry(&self, r: &AuditRecord, at_ms: i64) -> Vec<u8> {
            encode(r, self.next, &rfc3339(at_ms)).unwrap()
        }

        fn feed(&mut self, r: &AuditRecord, at_ms: i64, raise: bool) -> Vec<Suspicion> {
            let bytes = self.entry(r, at_ms);
            let leaf: Vec<u8> = Sha256::new()
                .chain_update([0u8])
                .chain_update(&bytes)
                .finalize()
                .to_vec();
            let mut found = Vec::new();
            self.watch.observe(
                self.next,
                WatchedEntry {
                    index: self.next,
                    tenant_id: r.tenant_id.as_deref(),
                    entry: &bytes,
                    leaf_hash: Some(&leaf),
                },
                raise,
                &mut found,
            );
            self.next += 1;
            found
        }

        fn feed_n(&mut self, r: &AuditRecord, n: usize, at_ms: i64) -> Vec<Suspicion> {
            (0..n).flat_map(|_| self.feed(r, at_ms, true)).collect()
        }
    }

    #[test]
    fn reads_past_the_threshold_are_one_mass_read_then_counting_starts_again() {
        let mut f = Feed::new();
        let read = record("case.read", Some("u1"), Some("t1"));
        assert!(f.feed_n(&read, 4, 0).is_empty());
        let found = f.feed(&read, 0, true);
        assert_eq!(
            found,
            vec![Suspicion {
                kind: IncidentKind::MassRead,
                tenant_id: Some("t1".into()),
                subject_id: Some("u1".into()),
                first_index: 0,
                last_index: 4,
                events: 5,
            }]
        );
        assert!(f.feed_n(&read, 4, 0).is_empty());
        assert_eq!(f.feed(&read, 0, true).len(), 1);
    }

    #[test]
    fn a_list_counts_the_records_it_returned_and_other_tenants_count_apart() {
        let mut f = Feed::new();
        let mut list = record("contact.list", Some("u1"), Some("t1"));
        list.records = vec!["a".into(), "b".into(), "c".into()];
        assert!(f.feed(&list, 0, true).is_empty());
        let elsewhere = record("contact.read", Some("u1"), Some("t2"));
        assert!(f.feed_n(&elsewhere, 4, 0).is_empty());
        let found = f.feed(&list, 0, true);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].events, 6);
        // Writes and refused reads are not reads.
        let write = record("contact.create", Some("u2"), Some("t1"));
        let refused = denied(record("contact.read", Some("u2"), Some("t1")), "forbidden");
        assert!(f.feed_n(&write, 10, 0).is_empty());
        assert!(f.feed_n(&refused, 10, 0).is_empty());
    }

    #[test]
    fn events_older_than_the_window_no_longer_count() {
        let mut f = Feed::new();
        let read = record("case.read", Some("u1"), Some("t1"));
        assert!(f.feed_n(&read, 4, 0).is_empty());
        // Eleven minutes on, the first four are out of the ten-minute window.
        assert!(f.feed_n(&read, 4, 11 * MINUTE).is_empty());
        assert_eq!(f.feed(&read, 11 * MINUTE, true).len(), 1);
    }

    #[test]
    fn refusals_for_want_of_a_grant_and_failed_logins_are_counted_per_account() {
        let mut f = Feed::new();
        let outside = denied(
            record("case.read", Some("eng"), Some("t1")),
            "access_grant_required",
        );
        assert!(f.feed_n(&outside, 2, 0).is_empty());
        let found = f.feed(&outside, 0, true);
        assert_eq!(found[0].kind, IncidentKind::AccessOutsideGrant);
        assert_eq!(found[0].subject_id.as_deref(), Some("eng"));

        let mut f = Feed::new();
        let failed = denied(
            record("auth.login", Some("u9"), None),
            "invalid_credentials",
        );
        let second_factor_asked = denied(record("auth.login", Some("u9"), None), "mfa_required");
        assert!(f.feed_n(&second_factor_asked, 5, 0).is_empty());
        assert!(f.feed_n(&failed, 2, 0).is_empty());
        let found = f.feed(&failed, 0, true);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, IncidentKind::LoginFailures);
        // Unknown usernames have no account: they count platform-wide only (4 in all now).
        let unknown = denied(record("auth.login", None, None), "invalid_credentials");
        let found = f.feed(&unknown, 0, true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, IncidentKind::PlatformLoginFailures);
        assert_eq!(found[0].subject_id, None);
    }

    #[test]
    fn priming_counts_without_raising() {
        let mut f = Feed::new();
        let read = record("case.read", Some("u1"), Some("t1"));
        for _ in 0..4 {
            assert!(f.feed(&read, 0, false).is_empty());
        }
        assert_eq!(f.feed(&read, 0, true).len(), 1);
    }

    #[test]
    fn an_entry_that_is_not_what_its_row_says_is_an_integrity_finding() {
        let read = record("case.read", Some("u1"), Some("t1"));
        let f = Feed::new();
        let bytes = f.entry(&read, 0);
        let leaf: Vec<u8> = Sha256::new()
            .chain_update([0u8])
            .chain_update(&bytes)
            .finalize()
            .to_vec();
        let mut changed = bytes.clone();
        changed[3] ^= 1;
        let row = |index, entry, leaf_hash, tenant_id| WatchedEntry {
            index,
            tenant_id,
            entry,
            leaf_hash,
        };
        let zeros = [0u8; 32];
        let cases = [
            row(0, &changed, Some(&leaf[..]), Some("t1")), // bytes changed
            row(1, &bytes, Some(&leaf[..]), Some("t1")),   // a row missing before it
            row(0, &bytes, Some(&zeros[..]), Some("t1")),  // hash changed
            row(0, &bytes, Some(&leaf[..]), Some("t2")),   // moved to another tenant
            row(0, b"{}", None, None),                     // not an entry (no stored hash)
        ];
        for entry in cases {
            let mut watch = Watch::new(rules());
            let mut found = Vec::new();
            watch.observe(0, entry, true, &mut found);
            assert_eq!(found.len(), 1, "{entry:?}");
            assert_eq!(found[0].kind, IncidentKind::AuditLogIntegrity);
            assert_eq!(
                (found[0].first_index, found[0].last_index),
                (0, entry.index)
            );
        }
        // The entry as written passes.
        let mut watch = Watch::new(rules());
        let mut found = Vec::new();
        let entry = WatchedEntry {
            index: 0,
            tenant_id: Some("t1"),
            entry: &bytes,
            leaf_hash: Some(&leaf),
        };
        watch.observe(0, entry, true, &mut found);
        assert!(found.is_empty());
    }

    #[test]
    fn kinds_read_back() {
        for kind in IncidentKind::ALL {
            assert_eq!(IncidentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(IncidentKind::parse("nope"), None);
    }
}
