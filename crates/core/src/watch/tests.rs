#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};

use super::*;
use crate::audit::{Actor, AuditDecision, AuditRecord, encode};
use crate::clock::rfc3339;

const MINUTE: i64 = 60_000;

fn rules() -> WatchRules {
    WatchRules {
        window_secs: 600,
        mass_read_records: 5,
        mass_read_records_customer: 8,
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

fn leaf(bytes: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(bytes)
        .finalize()
        .to_vec()
}

/// Entries from index 0 on, as a log would hold them.
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

    fn feed(&mut self, r: &AuditRecord, n: usize, at_ms: i64, judge: bool) {
        for _ in 0..n {
            let bytes = self.entry(r, at_ms);
            let hash = leaf(&bytes);
            let row = WatchedEntry {
                index: self.next,
                tenant_id: r.tenant_id.as_deref(),
                entry: &bytes,
                leaf_hash: Some(&hash),
            };
            self.watch.observe(self.next, row, judge);
            self.next += 1;
        }
    }

    /// Feeds `n` judged entries and ends the pass.
    fn pass(&mut self, r: &AuditRecord, n: usize, at_ms: i64) -> Vec<Finding> {
        self.feed(r, n, at_ms, true);
        self.watch.take_findings()
    }
}

fn crossed(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.crossed.is_some()).collect()
}

#[test]
fn reads_past_the_threshold_open_a_mass_read_and_every_later_read_counts() {
    let mut f = Feed::new();
    let read = record("case.read", Some("u1"), Some("t1"));
    let first = f.pass(&read, 4, 0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].events, 4);
    assert_eq!(first[0].crossed, None);
    // The fifth read reaches the threshold; two more in the same pass belong to it.
    let second = f.pass(&read, 3, 0);
    assert_eq!(
        second,
        vec![Finding {
            kind: IncidentKind::MassRead,
            tenant_id: Some("t1".into()),
            subject_id: Some("u1".into()),
            events: 3,
            first_index: 4,
            last_index: 6,
            crossed: Some(Crossing {
                first_index: 0,
                events: 7,
            }),
        }]
    );
    // Two more: events for an open incident, short of a new threshold.
    let third = f.pass(&read, 2, 0);
    assert_eq!((third[0].events, third[0].crossed), (2, None));
    // Counting started afresh at the crossing: five more reach it again.
    assert_eq!(crossed(&f.pass(&read, 3, 0)).len(), 1);
}

#[test]
fn customers_reading_their_own_tenant_have_their_own_threshold() {
    let mut f = Feed::new();
    let as_roles = |user: &str, roles: &[&str]| {
        let mut r = record("contact.read", Some(user), Some("t1"));
        r.actor = Some(Actor {
            user_id: user.into(),
            roles: roles.iter().map(|&r| r.to_owned()).collect(),
        });
        r
    };
    let admin = as_roles("admin", &["tenant_admin"]);
    let both = as_roles("user", &["tenant_user", "tenant_admin"]);
    // An account holding one staff role is held to staff's threshold.
    let mixed = as_roles("mixed", &["tenant_admin", "support_engineer"]);
    let none = as_roles("bare", &[]);
    // A role name with an escape in its JSON is still read (as not a customer's).
    let odd = as_roles("odd", &["tenant\"admin"]);
    for r in [&admin, &both, &mixed, &none, &odd] {
        f.feed(r, 7, 0, true);
    }
    let seven: Vec<_> = crossed(&f.watch.take_findings())
        .iter()
        .map(|x| x.subject_id.clone().unwrap())
        .collect();
    assert_eq!(seven, ["bare", "mixed", "odd"]);
    // The eighth read is the customers' threshold.
    f.feed(&admin, 1, 0, true);
    f.feed(&both, 1, 0, true);
    let eight = f.watch.take_findings();
    assert_eq!(crossed(&eight).len(), 2, "{eight:?}");
    assert!(
        eight
            .iter()
            .all(|x| x.crossed.is_some_and(|c| c.events == 8))
    );
}

#[test]
fn a_list_counts_the_records_it_returned_and_other_tenants_count_apart() {
    let mut f = Feed::new();
    let mut list = record("contact.list", Some("u1"), Some("t1"));
    list.records = vec!["a".into(), "b".into(), "c".into()];
    f.feed(&list, 1, 0, true);
    let elsewhere = record("contact.read", Some("u1"), Some("t2"));
    f.feed(&elsewhere, 4, 0, true);
    f.feed(&list, 1, 0, true);
    let findings = f.watch.take_findings();
    let reached = crossed(&findings);
    assert_eq!(reached.len(), 1, "{findings:?}");
    assert_eq!(reached[0].tenant_id.as_deref(), Some("t1"));
    assert_eq!(reached[0].crossed.unwrap().events, 6);
    // A limited export counts the records it holds, like a list.
    let mut export = record("export.create", Some("u3"), Some("t1"));
    export.records = (0..6).map(|i| format!("r{i}")).collect();
    let reached = f.pass(&export, 1, 0);
    assert_eq!(crossed(&reached).len(), 1, "{reached:?}");
    assert_eq!(crossed(&reached)[0].subject_id.as_deref(), Some("u3"));
    // Writes and refused reads are not reads.
    let write = record("contact.create", Some("u2"), Some("t1"));
    let refused = denied(record("contact.read", Some("u2"), Some("t1")), "forbidden");
    assert!(f.pass(&write, 10, 0).is_empty());
    assert!(f.pass(&refused, 10, 0).is_empty());
}

#[test]
fn events_older_than_the_window_no_longer_count() {
    let mut f = Feed::new();
    let read = record("case.read", Some("u1"), Some("t1"));
    f.feed(&read, 4, 0, true);
    // Eleven minutes on, the first four are out of the ten-minute window.
    f.feed(&read, 4, 11 * MINUTE, true);
    assert!(crossed(&f.watch.take_findings()).is_empty());
    assert_eq!(crossed(&f.pass(&read, 1, 11 * MINUTE)).len(), 1);
}

#[test]
fn refusals_for_want_of_a_grant_and_failed_logins_are_counted_per_account() {
    let mut f = Feed::new();
    let outside = denied(
        record("case.read", Some("eng"), Some("t1")),
        "access_grant_required",
    );
    let findings = f.pass(&outside, 3, 0);
    let reached = crossed(&findings);
    assert_eq!(reached[0].kind, IncidentKind::AccessOutsideGrant);
    assert_eq!(reached[0].subject_id.as_deref(), Some("eng"));

    let mut f = Feed::new();
    let failed = denied(
        record("auth.login", Some("u9"), None),
        "invalid_credentials",
    );
    let second_factor_asked = denied(record("auth.login", Some("u9"), None), "mfa_required");
    assert!(f.pass(&second_factor_asked, 5, 0).is_empty());
    let findings = f.pass(&failed, 3, 0);
    let reached = crossed(&findings);
    assert_eq!(reached.len(), 1, "{findings:?}");
    assert_eq!(reached[0].kind, IncidentKind::LoginFailures);
    // Unknown usernames have no account: they count platform-wide only (4 in all now).
    let unknown = denied(record("auth.login", None, None), "invalid_credentials");
    let findings = f.pass(&unknown, 1, 0);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].kind, IncidentKind::PlatformLoginFailures);
    assert_eq!(findings[0].subject_id, None);
    assert!(findings[0].crossed.is_some());
}

#[test]
fn priming_counts_without_finding() {
    let mut f = Feed::new();
    let read = record("case.read", Some("u1"), Some("t1"));
    f.feed(&read, 4, 0, false);
    assert!(f.watch.take_findings().is_empty());
    assert_eq!(crossed(&f.pass(&read, 1, 0)).len(), 1);
}

#[test]
fn an_entry_that_is_not_what_its_row_says_is_an_integrity_finding() {
    let read = record("case.read", Some("u1"), Some("t1"));
    let f = Feed::new();
    let bytes = f.entry(&read, 0);
    let hash = leaf(&bytes);
    let mut changed = bytes.clone();
    changed[3] ^= 1;
    let row = |entry, leaf_hash, tenant_id| WatchedEntry {
        index: 0,
        tenant_id,
        entry,
        leaf_hash,
    };
    let zeros = [0u8; 32];
    let not_entry = leaf(b"{}");
    let cases = [
        row(&changed, Some(&hash[..]), Some("t1")), // bytes changed
        row(&bytes, Some(&zeros[..]), Some("t1")),  // hash changed
        row(&bytes, None, Some("t1")),              // hash removed
        row(&bytes, Some(&hash[..]), Some("t2")),   // moved to another tenant
        row(b"{}", Some(&not_entry[..]), None),     // not an entry
    ];
    for entry in cases {
        let mut watch = Watch::new(rules());
        watch.observe(0, entry, true);
        let findings = watch.take_findings();
        assert_eq!(findings.len(), 1, "{entry:?}");
        assert_eq!(findings[0].kind, IncidentKind::AuditLogIntegrity);
        assert_eq!((findings[0].first_index, findings[0].last_index), (0, 0));
        assert!(findings[0].crossed.is_some());
    }
    // The entry as written passes.
    let mut watch = Watch::new(rules());
    watch.observe(0, row(&bytes, Some(&hash[..]), Some("t1")), true);
    assert_eq!(crossed(&watch.take_findings()).len(), 0);
}

#[test]
fn missing_entries_are_an_integrity_finding_and_the_next_entry_is_still_judged() {
    let mut f = Feed::new();
    let read = record("case.read", Some("u1"), Some("t1"));
    f.feed(&read, 4, 0, true);
    // Entries 4..=9 are gone: the row after them is at 10.
    f.next = 10;
    let bytes = f.entry(&read, 0);
    let hash = leaf(&bytes);
    let row = WatchedEntry {
        index: 10,
        tenant_id: Some("t1"),
        entry: &bytes,
        leaf_hash: Some(&hash),
    };
    f.watch.observe(4, row, true);
    let findings = f.watch.take_findings();
    let gap = findings
        .iter()
        .find(|f| f.kind == IncidentKind::AuditLogIntegrity)
        .unwrap();
    assert_eq!((gap.first_index, gap.last_index, gap.events), (4, 9, 6));
    // The fifth read, after the gap, still counts.
    let read_finding = findings
        .iter()
        .find(|f| f.kind == IncidentKind::MassRead)
        .unwrap();
    assert!(read_finding.crossed.is_some(), "{findings:?}");
}

#[test]
fn windows_of_the_past_are_swept() {
    let mut f = Feed::new();
    for user in 0..100 {
        let id = format!("u{user}");
        f.feed(&record("case.read", Some(&id), Some("t1")), 1, 0, false);
    }
    assert_eq!(f.watch.windows.len(), 100);
    let later = record("case.read", Some("late"), Some("t1"));
    // The sweep runs every SWEEP_EVERY entries; by then the first hundred are an hour old.
    let remaining = usize::try_from(SWEEP_EVERY).unwrap() - 100;
    f.feed(&later, remaining, 60 * MINUTE, false);
    assert_eq!(f.watch.windows.len(), 1);
}

#[test]
fn kinds_read_back() {
    for kind in IncidentKind::ALL {
        assert_eq!(IncidentKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(IncidentKind::parse("nope"), None);
}
