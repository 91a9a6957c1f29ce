//! The breach watch (DESIGN.md "breach handling"): reads the audit log as it grows and names the
//! patterns a breach leaves behind (mass reads, staff reaching for data outside their grants,
//! repeated failed logins, an entry that no longer matches its leaf hash). It only observes: the
//! service turns what it names into incidents and tells the tenants concerned.
//!
//! Counts are kept per subject in a sliding window of ten buckets, on the entries' own times, so
//! what the watch raises follows from the log, not from when it happened to run.

mod check;
#[cfg(test)]
mod tests;
mod window;

use std::collections::{BTreeMap, HashMap};

pub use check::{IntegrityFault, WatchedEntry, entry_time_ms};
use strongroom_ledger::Hash;
use window::{BUCKETS, Window};

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

/// When a pattern becomes an incident: counts within `window_secs` (0 turns a rule off).
#[derive(Clone, Copy, Debug)]
pub struct WatchRules {
    pub window_secs: u64,
    /// Records of one tenant read by one account (a list counts the records it returned).
    pub mass_read_records: u64,
    /// The same, for an account whose every role is a customer's.
    pub mass_read_records_customer: u64,
    /// Requests of one account for one tenant's data refused for want of an assignment or grant.
    pub denials_outside_grant: u64,
    pub login_failures_per_account: u64,
    pub login_failures_platform: u64,
}

/// Kind, tenant and subject: one open incident each.
pub type FindingKey = (IncidentKind, Option<String>, Option<String>);

/// What one pass saw of one key. An open incident of the key grows by `events`; without one,
/// `crossed` says whether the key reached its threshold, and so opens one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: IncidentKind,
    pub tenant_id: Option<String>,
    /// The account whose activity it is.
    pub subject_id: Option<String>,
    /// The pass's events of this key: how many, and the first and last log entries among them.
    pub events: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub crossed: Option<Crossing>,
}

/// The threshold reached within a pass: the window's events from its first entry on, and every
/// event of the key after that in the pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crossing {
    pub first_index: u64,
    pub events: u64,
}

impl Finding {
    pub fn key(&self) -> FindingKey {
        (self.kind, self.tenant_id.clone(), self.subject_id.clone())
    }
}

/// Reads that count towards a mass read: point reads count one record, lists what they returned.
const POINT_READS: &[&str] = &[
    "contact.read",
    "case.read",
    "attachment.read",
    "attachment.download",
    "export.download",
];
const LIST_READS: &[&str] = &[
    "contact.list",
    "contact.search",
    "case.list",
    "comment.list",
    "attachment.list",
    // A limited export lists the records it holds: the cheapest way to drain a tenant.
    "export.create",
];

/// Login refusals that are not failures: the client must send its second factor first.
const NOT_A_LOGIN_FAILURE: &[&str] = &["mfa_required"];

/// Windows untouched for longer than the window are dropped every this many entries.
const SWEEP_EVERY: u64 = 65_536;

pub struct Watch {
    rules: WatchRules,
    bucket_ms: i64,
    windows: HashMap<FindingKey, Window>,
    /// The pass so far, by key.
    pass: BTreeMap<FindingKey, Finding>,
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
            pass: BTreeMap::new(),
            seen: 0,
        }
    }

    /// What the entries observed since the last call amount to, by key.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.pass).into_values().collect()
    }

    /// Reads one entry, expected at `expected_index`; returns the leaf hash of its bytes (for the
    /// caller's tree). With `judge` false it only counts (priming the windows with entries an
    /// earlier pass already judged): no finding.
    pub fn observe(&mut self, expected_index: u64, row: WatchedEntry<'_>, judge: bool) -> Hash {
        if judge && row.index != expected_index {
            let fault = if row.index > expected_index {
                IntegrityFault::Gap
            } else {
                IntegrityFault::Index
            };
            let (first, last) = (
                row.index.min(expected_index),
                row.index.max(expected_index).saturating_sub(1),
            );
            // Whose the missing entries were, nobody can say.
            self.integrity(None, first, last.max(first), fault);
        }
        let (leaf, checked) = check::check(row);
        let seen = match checked {
            Ok(seen) => seen,
            Err(fault) => {
                if judge {
                    self.integrity(row.tenant_id, row.index, row.index, fault);
                }
                return leaf;
            }
        };
        let slot = seen.at_ms.div_euclid(self.bucket_ms);
        self.seen = self.seen.wrapping_add(1);
        if self.seen.is_multiple_of(SWEEP_EVERY) {
            self.sweep(slot);
        }
        let actor = seen.actor.as_ref().map(|a| a.user_id);
        let allowed = seen.decision == "allow";
        let rules = self.rules;
        let mut tally = |kind, tenant: Option<&str>, subject: Option<&str>, n, threshold| {
            let key = (kind, tenant.map(str::to_owned), subject.map(str::to_owned));
            self.tally(key, slot, (n, row.index), threshold, judge);
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
                let customer = seen.actor.as_ref().is_some_and(|a| a.customer);
                let threshold = if customer {
                    rules.mass_read_records_customer
                } else {
                    rules.mass_read_records
                };
                tally(IncidentKind::MassRead, seen.tenant_id, actor, n, threshold);
            }
        }
        if !allowed && seen.reason == Some("access_grant_required") && seen.tenant_id.is_some() {
            let threshold = rules.denials_outside_grant;
            let kind = IncidentKind::AccessOutsideGrant;
            tally(kind, seen.tenant_id, actor, 1, threshold);
        }
        let login_failed = !allowed
            && seen.action == "auth.login"
            && !seen
                .reason
                .is_some_and(|r| NOT_A_LOGIN_FAILURE.contains(&r));
        if login_failed {
            if actor.is_some() {
                let threshold = rules.login_failures_per_account;
                tally(IncidentKind::LoginFailures, None, actor, 1, threshold);
            }
            let threshold = rules.login_failures_platform;
            tally(
                IncidentKind::PlatformLoginFailures,
                None,
                None,
                1,
                threshold,
            );
        }
        leaf
    }

    /// Entries `first..=last` as stored do not make the tree a signed checkpoint names.
    pub fn not_in_checkpoint(&mut self, first: u64, last: u64) {
        self.integrity(None, first, last, IntegrityFault::Checkpoint);
    }

    /// Entries `first..=last` are missing from the store though the log's size counts them.
    pub fn missing(&mut self, first: u64, last: u64) {
        self.integrity(None, first, last, IntegrityFault::Gap);
    }

    /// Entries `first..=last` are not what the log says: a finding at once, whatever the counts.
    fn integrity(&mut self, tenant_id: Option<&str>, first: u64, last: u64, fault: IntegrityFault) {
        tracing::warn!(
            first,
            last,
            fault = fault.as_str(),
            "audit entry does not match the log"
        );
        let events = last.saturating_sub(first).saturating_add(1);
        let key = (
            IncidentKind::AuditLogIntegrity,
            tenant_id.map(str::to_owned),
            None,
        );
        let finding = self.pass_finding(key, first, last, events);
        let crossed = finding.crossed.get_or_insert(Crossing {
            first_index: first,
            events: 0,
        });
        crossed.events = crossed.events.saturating_add(events);
    }

    /// The pass's finding of `key`, with `events` more ending at `last`.
    fn pass_finding(
        &mut self,
        key: FindingKey,
        first: u64,
        last: u64,
        events: u64,
    ) -> &mut Finding {
        let finding = self
            .pass
            .entry(key)
            .or_insert_with_key(|(kind, tenant, subject)| Finding {
                kind: *kind,
                tenant_id: tenant.clone(),
                subject_id: subject.clone(),
                events: 0,
                first_index: first,
                last_index: last,
                crossed: None,
            });
        finding.events = finding.events.saturating_add(events);
        finding.first_index = finding.first_index.min(first);
        finding.last_index = finding.last_index.max(last);
        finding
    }

    fn tally(
        &mut self,
        key: FindingKey,
        slot: i64,
        (n, index): (u64, u64),
        threshold: u64,
        judge: bool,
    ) {
        if threshold == 0 {
            return;
        }
        let window = self.windows.entry(key.clone()).or_default();
        let (in_window, window_first) = window.add(slot, n, index);
        let reached = in_window >= threshold;
        if reached {
            // Counting starts afresh: once the incident is closed, another takes the threshold.
            *window = Window::default();
        }
        if !judge {
            return;
        }
        let finding = self.pass_finding(key, index, index, n);
        match &mut finding.crossed {
            Some(crossed) => crossed.events = crossed.events.saturating_add(n),
            None if reached => {
                finding.crossed = Some(Crossing {
                    first_index: window_first.min(index),
                    events: in_window,
                });
            }
            None => {}
        }
    }

    /// Drops the windows with nothing in them any more at `now_slot`.
    fn sweep(&mut self, now_slot: i64) {
        self.windows.retain(|_, w| {
            w.newest_slot()
                .is_some_and(|s| s > now_slot - BUCKETS as i64)
        });
    }
}
