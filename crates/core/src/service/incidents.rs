//! Incidents: what the breach watch ([`crate::watch`]) found in the audit log, for security
//! officers to close and for the tenants concerned to see and be told of (DESIGN.md "breach
//! handling"). An incident holds ids and codes; its evidence is a range of log entries, each
//! with its inclusion proof.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use strongroom_ledger::{Checkpoint, Frontier};
use strongroom_policy::{Action, Denial, ResourceFacts, ResourceKind};
use strongroom_store::{IncidentRow, Mutation, TenantScope};

use super::notify::NotificationKind;
use crate::access::{Principal, RequestContext};
use crate::audit::{AuditDecision, AuditRecord, CommitError, ResourceRef, restore_frontier};
use crate::clock::rfc3339;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::{Page, PageRequest};
use crate::watch::{
    Finding, FindingKey, IncidentKind, Watch, WatchRules, WatchedEntry, entry_time_ms,
};
use crate::{Vault, new_id};

/// The breach watch's row in `watch_progress`.
const WATCH_NAME: &str = "breach";
/// Entries per read: judging one page holds a runtime thread for about a millisecond.
const PAGE: u32 = 500;
/// Most entries one pass reads, so that a long backlog is judged and recorded in steps.
const PASS_LIMIT: u64 = 100_000;
/// Passes that wait for a checkpoint past the watch's place before judging without one.
const SIGNER_WAIT_PASSES: u32 = 5;
/// Most entries read again, counting only, when a pass starts from where it did not itself stop
/// (a restart, another instance's pass), so that the windows hold the recent past as well.
const PRIME_LIMIT: u64 = 200_000;

/// How a security officer closes an incident.
const INCIDENT_RESOLUTIONS: &[&str] = &["false_positive", "authorised_activity", "contained"];

const INCIDENT_STATES: &[&str] = &["open", "closed"];

/// The watch between passes: its windows, the index it has read up to, and the tree of the
/// entries as it read them (restored from the stored nodes where it started), to hold against
/// the signed checkpoints.
pub(crate) struct WatchState {
    watch: Watch,
    next_index: u64,
    tree: Option<TreeSince>,
    /// Passes in a row that found entries but no checkpoint past the watch's place.
    waited: u32,
    /// The log size below the watch's place that was reported already.
    reported_shrink: Option<u64>,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct WatchReport {
    /// Entries judged.
    pub read: u64,
    /// Incidents opened.
    pub opened: Vec<OpenedIncident>,
    /// Open incidents that grew.
    pub extended: usize,
}

#[derive(Debug)]
pub struct OpenedIncident {
    pub id: String,
    pub kind: &'static str,
    pub first_index: u64,
    pub last_index: u64,
}

#[derive(Debug, Serialize)]
pub struct Incident {
    pub id: String,
    pub kind: String,
    pub tenant_id: Option<String>,
    /// The account whose activity raised it.
    pub subject_id: Option<String>,
    /// The log entries that make it up, first and last.
    pub first_index: i64,
    pub last_index: i64,
    pub events: i64,
    pub opened_at: String,
    pub updated_at: String,
    pub state: String,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub resolution: Option<String>,
}

impl From<&IncidentRow> for Incident {
    fn from(i: &IncidentRow) -> Self {
        Self {
            id: i.id.clone(),
            kind: i.kind.clone(),
            tenant_id: i.tenant_id.clone(),
            subject_id: i.subject_id.clone(),
            first_index: i.first_index,
            last_index: i.last_index,
            events: i.events,
            opened_at: rfc3339(i.opened_at),
            updated_at: rfc3339(i.updated_at),
            state: i.state.clone(),
            closed_by: i.closed_by.clone(),
            closed_at: i.closed_at.map(rfc3339),
            resolution: i.resolution.clone(),
        }
    }
}

fn incident_ref(id: Option<&str>) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "incident",
        id: id.map(str::to_owned),
    })
}

fn index(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Vault {
    fn watch_rules(&self) -> WatchRules {
        let s = &self.settings;
        WatchRules {
            window_secs: s.watch_window_secs,
            mass_read_records: s.watch_mass_read_records,
            mass_read_records_customer: s
                .watch_mass_read_records
                .saturating_mul(s.watch_mass_read_customer_factor),
            denials_outside_grant: s.watch_denials_outside_grant,
            login_failures_per_account: s.watch_login_failures_per_account,
            login_failures_platform: s.watch_login_failures_platform,
        }
    }

    /// One pass of the breach watch: judges the entries appended since the last pass and records
    /// what it found, the incidents and the watch's new place in one commit. A pass that cannot
    /// commit changes nothing, and the next one judges the same entries again.
    pub async fn watch_audit_log(&self, request_id: &str) -> ServiceResult<WatchReport> {
        let mut state = self.watch.lock().await;
        // Before the size, as at start-up: the log only grows, so the entries read next cover it.
        let signed = self.audit.signed_checkpoint();
        let stored = self.store.watch_progress(WATCH_NAME).await?;
        // With other instances appending too, the store's size; alone, the log's own head.
        let size = if self.store.shared() {
            self.store.audit_size().await?
        } else {
            self.audit.head().size
        };
        let Some(start) = stored else {
            // The first pass starts at the head: the history is `audit verify`'s to judge, and
            // tenants are not told today of patterns from before the watch existed.
            let start = vec![Mutation::AdvanceWatch {
                name: WATCH_NAME.into(),
                from: None,
                to: index(size),
            }];
            self.audit.commit(Vec::new(), start).await?;
            return Ok(WatchReport::default());
        };
        let mut current = match state.take() {
            Some(current) if current.next_index == start => current,
            _ => WatchState {
                watch: self.primed_watch(start).await?,
                next_index: start,
                tree: None,
                waited: 0,
                reported_shrink: None,
            },
        };
        if current
            .tree
            .as_ref()
            .is_none_or(|t| t.frontier.size() != start)
        {
            // Lost to a gap or a finding, or never built: from the nodes stored up to here (the
            // history before the watch's place is `audit verify`'s).
            current.tree = match restore_frontier(self.store.as_ref(), start).await {
                Ok(frontier) => Some(TreeSince {
                    frontier,
                    since: start,
                }),
                Err(err) => {
                    tracing::warn!(error = %err.message, "breach watch: no tree at its place; checkpoints unchecked");
                    None
                }
            };
        }
        let end = if size < start {
            // The log is shorter than where the watch stopped: its tail was cut.
            if current.reported_shrink != Some(size) {
                current.watch.missing(size, start - 1);
                current.reported_shrink = Some(size);
            }
            start
        } else {
            let limit = size.min(start.saturating_add(PASS_LIMIT));
            let end = match signed.as_ref() {
                // Up to the latest checkpoint: every pass ends on one, and holds its tree
                // against it.
                Some(c) if c.size > start => c.size.min(limit),
                // None past the watch's place yet: the signer follows appends within a second.
                // After a few passes without one (the signer down), judge on, unchecked.
                _ if size > start && current.waited < SIGNER_WAIT_PASSES => {
                    current.waited += 1;
                    start
                }
                _ => limit,
            };
            if end > start {
                current.waited = 0;
            }
            let signed = signed.filter(|c| c.size >= start && c.size <= end);
            let tree = Checked {
                tree: &mut current.tree,
                signed: signed.as_ref(),
            };
            self.judge(&mut current.watch, tree, start, end, true)
                .await?
        };
        let findings = current.watch.take_findings();
        if findings.is_empty() && end == start {
            *state = Some(current);
            return Ok(WatchReport::default());
        }
        let (records, mut mutations, mut report) =
            self.incident_changes(findings, request_id).await?;
        mutations.push(Mutation::AdvanceWatch {
            name: WATCH_NAME.into(),
            from: Some(index(start)),
            to: index(end),
        });
        let attempted = records.clone();
        match self.audit.try_commit(records, mutations).await {
            Ok(_) => {
                for opened in &report.opened {
                    tracing::warn!(
                        incident = %opened.id,
                        kind = opened.kind,
                        first_index = opened.first_index,
                        last_index = opened.last_index,
                        "incident opened"
                    );
                }
                current.next_index = end;
                *state = Some(current);
                report.read = end - start;
                Ok(report)
            }
            // Another instance's pass moved the watch on, or an incident was closed meanwhile.
            // The entries of the refused commit stand in the log, so each is followed by one
            // saying it was not applied; the next pass primes the windows again (the state is
            // left empty) and judges the same entries anew.
            Err(CommitError::Refused(refusal)) => {
                tracing::warn!(error = %refusal.message, "breach watch pass not applied; judging again");
                let not_applied = attempted
                    .into_iter()
                    .map(|mut record| {
                        record.action = "incident.open_not_applied";
                        record.decision = AuditDecision::Deny;
                        record.reason = Some("conflict");
                        record
                    })
                    .collect::<Vec<_>>();
                if !not_applied.is_empty() {
                    self.audit.commit(not_applied, Vec::new()).await?;
                }
                Ok(WatchReport::default())
            }
            Err(unavailable) => Err(unavailable.into_service_error()),
        }
    }

    /// A watch whose windows hold the window of time before `start`, counted, not judged (up to
    /// `PRIME_LIMIT` entries).
    async fn primed_watch(&self, start: u64) -> ServiceResult<Watch> {
        let rules = self.watch_rules();
        let mut watch = Watch::new(rules);
        if start == 0 {
            return Ok(watch);
        }
        let Some(last) = self.entry_time(start - 1).await? else {
            return Ok(watch);
        };
        let window_ms = i64::try_from(rules.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let since = last.saturating_sub(window_ms);
        // The first entry of the window: times grow with the index (a commit stamps its batch).
        let (mut low, mut high) = (start.saturating_sub(PRIME_LIMIT), start - 1);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.entry_time(middle).await? {
                Some(at) if at < since => low = middle + 1,
                _ => high = middle,
            }
        }
        let unchecked = Checked {
            tree: &mut None,
            signed: None,
        };
        self.judge(&mut watch, unchecked, low, start, false).await?;
        Ok(watch)
    }

    async fn entry_time(&self, at: u64) -> ServiceResult<Option<i64>> {
        let rows = self.store.watched_entries(at, 1).await?;
        Ok(rows
            .first()
            .filter(|row| u64::try_from(row.idx).ok() == Some(at))
            .and_then(|row| entry_time_ms(&row.entry)))
    }

    /// Feeds the entries `[from, to)` to `watch`; returns where it stopped (`to`). Entries the
    /// store lacks (rows deleted, the tail cut) are an integrity finding like changed ones, and
    /// so is a tree over them whose root at `checked.signed`'s size is not the signed one.
    async fn judge(
        &self,
        watch: &mut Watch,
        checked: Checked<'_>,
        from: u64,
        to: u64,
        judge: bool,
    ) -> ServiceResult<u64> {
        let Checked { tree, signed } = checked;
        hold_against(tree, signed, watch);
        let mut next = from;
        'pages: while next < to {
            let limit = u32::try_from((to - next).min(u64::from(PAGE))).unwrap_or(PAGE);
            let rows = self.store.watched_entries(next, limit).await?;
            for row in &rows {
                let idx = u64::try_from(row.idx).unwrap_or(u64::MAX);
                if idx >= to {
                    break;
                }
                let entry = WatchedEntry {
                    index: idx,
                    tenant_id: row.tenant_id.as_deref(),
                    entry: &row.entry,
                    leaf_hash: row.leaf_hash.as_deref(),
                };
                let leaf = watch.observe(next, entry, judge);
                next = idx.saturating_add(1);
                let grown = match tree.as_mut() {
                    Some(t) if t.frontier.size() == idx => {
                        t.frontier.append_visit(leaf, |_, _| ()).is_ok()
                    }
                    _ => false,
                };
                if grown {
                    hold_against(tree, signed, watch);
                } else {
                    // A gap (itself a finding): the next pass restores the tree past it.
                    *tree = None;
                }
            }
            if rows.len() < limit as usize || rows.last().is_some_and(|r| r.idx >= index(to)) {
                // Nothing more below `to`: what is left of the range is missing.
                if next < to && judge {
                    watch.missing(next, to - 1);
                }
                break 'pages;
            }
            // Requests waiting on this thread go first: the watch is never in a hurry.
            tokio::task::yield_now().await;
        }
        Ok(to)
    }

    /// The records and mutations that turn `findings` into incidents: one per kind, tenant and
    /// subject while it is open (every later event adds to it), each new one recorded in the log
    /// and told to its tenant.
    async fn incident_changes(
        &self,
        findings: Vec<Finding>,
        request_id: &str,
    ) -> ServiceResult<(Vec<AuditRecord>, Vec<Mutation>, WatchReport)> {
        let mut report = WatchReport::default();
        let (mut records, mut mutations) = (Vec::new(), Vec::new());
        if findings.is_empty() {
            return Ok((records, mutations, report));
        }
        let open: HashMap<FindingKey, IncidentRow> = self
            .store
            .open_incidents()
            .await?
            .into_iter()
            .filter_map(|row| {
                let kind = IncidentKind::parse(&row.kind)?;
                Some(((kind, row.tenant_id.clone(), row.subject_id.clone()), row))
            })
            .collect();
        let now = self.now();
        for mut finding in findings {
            // Failed logins to a customer's account concern its tenant.
            if finding.kind == IncidentKind::LoginFailures
                && let Some(subject) = finding.subject_id.as_deref()
                && let Some(user) = self.user_row(subject).await?
            {
                finding.tenant_id.clone_from(&user.tenant_id);
            }
            if let Some(row) = open.get(&finding.key()) {
                mutations.push(Mutation::ExtendIncident {
                    id: row.id.clone(),
                    last_index: index(finding.last_index),
                    events: index(finding.events),
                    at: now,
                });
                report.extended += 1;
                continue;
            }
            let Some(crossed) = finding.crossed else {
                continue;
            };
            let row = IncidentRow {
                id: new_id(),
                kind: finding.kind.as_str().into(),
                tenant_id: finding.tenant_id.clone(),
                subject_id: finding.subject_id.clone(),
                first_index: index(crossed.first_index),
                last_index: index(finding.last_index),
                events: index(crossed.events),
                opened_at: now,
                updated_at: now,
                state: "open".into(),
                closed_by: None,
                closed_at: None,
                resolution: None,
            };
            let mut record = AuditRecord::new("incident.open", request_id);
            record.tenant_id.clone_from(&row.tenant_id);
            record.resource = incident_ref(Some(&row.id));
            record.records = row.subject_id.iter().cloned().collect();
            record.reason = Some(finding.kind.as_str());
            records.push(record);
            if let Some(notice) = self
                .incident_notice(&row, NotificationKind::IncidentOpened, now)
                .await?
            {
                mutations.push(notice);
            }
            report.opened.push(OpenedIncident {
                id: row.id.clone(),
                kind: finding.kind.as_str(),
                first_index: crossed.first_index,
                last_index: finding.last_index,
            });
            mutations.push(Mutation::OpenIncident(row));
        }
        Ok((records, mutations, report))
    }

    /// The tenant's notification about `incident`, when it concerns a tenant that still exists.
    async fn incident_notice(
        &self,
        incident: &IncidentRow,
        kind: NotificationKind,
        now: i64,
    ) -> ServiceResult<Option<Mutation>> {
        let Some(tenant_id) = incident.tenant_id.as_deref() else {
            return Ok(None);
        };
        let Some(tenant) = self.tenant_state(tenant_id).await? else {
            return Ok(None);
        };
        let data = json!({
            "tenant_id": tenant_id,
            "incident_id": incident.id,
            "kind": incident.kind,
            "subject_id": incident.subject_id,
            "first_index": incident.first_index,
            "last_index": incident.last_index,
            "state": incident.state,
            "resolution": incident.resolution,
        });
        self.outbox_row(&tenant, kind, data, None, now).map(Some)
    }

    /// Every incident, newest first (security officers, auditors).
    pub async fn incidents(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        state: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<Incident>> {
        let state = incident_state(state)?;
        let mut record = self.record(p, ctx, "incident.list", None, incident_ref(None));
        let resource = ResourceFacts::new(ResourceKind::AuditLog, "log", None);
        let decision = self.decide(p, Action::ReadIncidents, &resource, None, ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        self.audit.append(record).await?;
        let rows = self
            .store
            .incidents(None, state, page.cursor.as_deref(), page.limit)
            .await?;
        Ok(incident_page(&rows, page.limit))
    }

    /// The incidents about one tenant (its admins; security officers and auditors).
    pub async fn tenant_incidents(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        state: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<Incident>> {
        let state = incident_state(state)?;
        let record = self.record(p, ctx, "incident.list", Some(tenant_id), incident_ref(None));
        self.read_of_tenant_log(p, ctx, record, tenant_id, Action::ReadIncidents)
            .await?;
        let rows = self
            .store
            .incidents(
                Some(&TenantScope::new(tenant_id)),
                state,
                page.cursor.as_deref(),
                page.limit,
            )
            .await?;
        Ok(incident_page(&rows, page.limit))
    }

    /// Closes an open incident with a resolution (security officers); the
    /// tenant it concerns is told how.
    pub async fn close_incident(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        incident_id: &str,
        resolution: &str,
    ) -> ServiceResult<Incident> {
        let Some(resolution) = INCIDENT_RESOLUTIONS.iter().find(|r| **r == resolution) else {
            let known = INCIDENT_RESOLUTIONS.join(", ");
            return Err(ServiceError::validation(
                format!("resolution must be one of {known}"),
                &["resolution"],
            ));
        };
        let mut record = self.record(
            p,
            ctx,
            "incident.close",
            None,
            incident_ref(Some(incident_id)),
        );
        let incident = self.store.incident(incident_id).await?;
        record
            .tenant_id
            .clone_from(&incident.as_ref().and_then(|i| i.tenant_id.clone()));
        let resource = ResourceFacts::new(ResourceKind::AuditLog, "log", record.tenant_id.clone());
        let decision = self.decide(p, Action::CloseIncident, &resource, None, ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        let Some(mut incident) = incident else {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        };
        // Four eyes, as for a break-glass review: an officer does not close an incident about
        // their own access.
        if incident.subject_id.as_deref() == Some(p.user_id.as_str()) {
            return Err(self
                .refuse_because(
                    record,
                    "own_incident",
                    ServiceError::new(
                        ErrorCode::Forbidden,
                        "an incident about your own access is closed by another officer",
                    ),
                )
                .await);
        }
        record.reason = Some(resolution);
        let now = self.now();
        incident.state = "closed".into();
        incident.closed_by = Some(p.user_id.clone());
        incident.closed_at = Some(now);
        incident.updated_at = now;
        incident.resolution = Some((*resolution).to_owned());
        let mut mutations = vec![Mutation::CloseIncident {
            id: incident.id.clone(),
            closed_by: p.user_id.clone(),
            resolution: (*resolution).to_owned(),
            at: now,
        }];
        mutations.extend(
            self.incident_notice(&incident, NotificationKind::IncidentClosed, now)
                .await?,
        );
        self.commit_attempt(
            vec![record],
            mutations,
            ("incident.close_not_applied", "conflict"),
        )
        .await?;
        Ok(Incident::from(&incident))
    }
}

/// The tree of the entries as the watch read them, and where it last matched a signed
/// checkpoint (or was restored from the stored nodes).
pub(crate) struct TreeSince {
    frontier: Frontier,
    since: u64,
}

/// A tree to grow with the entries judged, and the signed checkpoint to hold it against.
struct Checked<'a> {
    tree: &'a mut Option<TreeSince>,
    signed: Option<&'a Checkpoint>,
}

/// Once the tree has `signed`'s size: its root must be the signed one. A mismatch names the
/// entries added since the tree last matched, and drops the tree, so that the next pass starts
/// again from the stored nodes rather than naming the same entries at every checkpoint.
fn hold_against(tree: &mut Option<TreeSince>, signed: Option<&Checkpoint>, watch: &mut Watch) {
    let (Some(t), Some(signed)) = (tree.as_mut(), signed) else {
        return;
    };
    if t.frontier.size() != signed.size {
        return;
    }
    if t.frontier.root() == signed.root {
        t.since = signed.size;
        return;
    }
    let last = signed.size.saturating_sub(1);
    watch.not_in_checkpoint(t.since.min(last), last);
    *tree = None;
}

fn incident_state(state: Option<&str>) -> ServiceResult<Option<&str>> {
    match state {
        None | Some("") => Ok(None),
        Some(s) if INCIDENT_STATES.contains(&s) => Ok(Some(s)),
        Some(_) => Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "state must be open or closed",
        )),
    }
}

fn incident_page(rows: &[IncidentRow], limit: u32) -> Page<Incident> {
    Page {
        items: rows.iter().map(Incident::from).collect(),
        next_cursor: super::next_cursor(rows, limit, |i| i.id.clone()),
    }
}
