//! Building an export in memory: every record shaped by the caller's own read decision (so an export
//! never holds a field the caller could not read), written as JSON lines, hashed, and encrypted to the
//! recipient with age. The plaintext buffer is wiped before it is dropped.
//!
//! The format is documented in `docs/export-format.md`.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use strongroom_crypto::{TenantKeyring, Zeroizing};
use strongroom_ledger::NoteVerifier;
use strongroom_policy::{Action, FieldClass, Purpose, ResourceFacts, Visibility};
use strongroom_store::{CaseRow, TenantScope};

use super::attachments::StoredContent;
use super::case_gate::case_facts;
use super::cases::reachable_cases;
use super::contacts::contact_facts;
use super::grants::Grants;
use crate::access::Principal;
use crate::audit::AuditRecord;
use crate::error::{ServiceError, ServiceResult};
use crate::model::exports::ExportScope;
use crate::{TenantState, Vault, shape};

/// The archive format's name and version (first line of the plaintext).
pub(super) const FORMAT: &str = "strongroom-export";
pub(super) const FORMAT_VERSION: u32 = 1;

const PAGE: u32 = 500;

/// A byte buffer that never leaves plaintext behind: it grows by moving into a larger wiped buffer
/// (a plain `Vec` would free its old allocation unwiped), and wipes itself on drop.
#[derive(Default)]
pub(super) struct Wiping(Zeroizing<Vec<u8>>);

impl Wiping {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Write for Wiping {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let needed = self.0.len().saturating_add(buf.len());
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                needed.max(self.0.capacity().saturating_mul(2)).max(4096),
            ));
            bigger.extend_from_slice(&self.0);
            // The old buffer is wiped as it drops.
            self.0 = bigger;
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The content of an export, before the manifest line: JSON lines, wiped on drop.
pub(super) struct Content {
    pub lines: Wiping,
    pub counts: Counts,
    pub record_ids: Vec<String>,
    pub masked: BTreeSet<&'static str>,
    pub withheld: BTreeSet<String>,
    /// Fields sealed under a lost key version in at least one record: the export is short of them.
    pub unreadable: BTreeSet<&'static str>,
    /// The earliest end of the grants among the facts of a record included: the export must not
    /// stay downloadable after the access it was built under has ended.
    pub grants_end_at: Option<i64>,
}

#[derive(Default, serde::Serialize)]
pub(super) struct Counts {
    pub contacts: u64,
    pub cases: u64,
    pub comments: u64,
    /// Files' records: name, type, size and the SHA-256 of the content, not the content.
    pub attachments: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_entries: Option<u64>,
}

impl Counts {
    pub fn records(&self) -> u64 {
        self.contacts + self.cases + self.comments + self.attachments
    }
}

impl Content {
    fn new() -> Self {
        Self {
            lines: Wiping::default(),
            counts: Counts::default(),
            record_ids: Vec::new(),
            masked: BTreeSet::new(),
            withheld: BTreeSet::new(),
            unreadable: BTreeSet::new(),
            grants_end_at: None,
        }
    }

    /// Notes the grant (if any) among the facts of a record just included.
    fn opened_by(&mut self, facts: &ResourceFacts, grants: &Grants) {
        if let Some(end) = facts.grant.as_ref().and_then(|g| grants.ends_at(&g.id)) {
            self.grants_end_at = Some(self.grants_end_at.map_or(end, |e| e.min(end)));
        }
    }

    fn push(&mut self, line: &Value) -> ServiceResult<()> {
        serde_json::to_writer(&mut self.lines, line)
            .and_then(|()| self.lines.write_all(b"\n").map_err(serde_json::Error::io))
            .map_err(|_| ServiceError::internal("export line"))
    }

    /// Refuses the export once it holds `max` records.
    fn room_for_one(&self, max: u64) -> ServiceResult<()> {
        if self.counts.records() >= max {
            return Err(ServiceError::validation(
                "the export would hold more records than allowed; narrow its scope",
                &["scope"],
            ));
        }
        Ok(())
    }

    /// Adds one shaped record, noting what it masked, withheld or could not read (field names
    /// only).
    fn record(
        &mut self,
        kind: &'static str,
        shaped: shape::Shaped,
        record: &mut AuditRecord,
        max: u64,
    ) -> ServiceResult<()> {
        self.room_for_one(max)?;
        self.masked.extend(shaped.masked.iter().copied());
        self.unreadable.extend(shaped.unreadable.iter().copied());
        if let Some(Value::Array(w)) = shaped.view.get("_access").and_then(|a| a.get("withheld")) {
            self.withheld
                .extend(w.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        let id = shaped
            .view
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let view = shape::disclose(record, shaped);
        self.push(&json!({ "kind": kind, "record": view }))?;
        match kind {
            "contact" => self.counts.contacts += 1,
            "case" => self.counts.cases += 1,
            "attachment" => self.counts.attachments += 1,
            _ => self.counts.comments += 1,
        }
        self.record_ids.push(id);
        Ok(())
    }
}

/// What to gather and for whom.
pub(super) struct Gather<'a> {
    pub p: &'a Principal,
    pub tenant: &'a TenantState,
    pub purpose: Purpose,
    pub scope: &'a ExportScope,
    pub archive: bool,
}

impl Gather<'_> {
    fn wants(&self, kind: &str) -> bool {
        self.archive || self.scope.record_kinds.iter().any(|k| k == kind)
    }

    fn id_ok(&self, id: &str) -> bool {
        self.archive
            || self
                .scope
                .ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|i| i == id))
    }

    fn case_ok(&self, row: &CaseRow) -> bool {
        self.id_ok(&row.id)
            && (self.archive
                || self
                    .scope
                    .case_status
                    .as_ref()
                    .is_none_or(|s| s.contains(&row.status)))
    }
}

impl Vault {
    /// The records of the export, each shaped exactly as the caller's `GET` would shape it.
    pub(super) async fn gather(
        &self,
        g: &Gather<'_>,
        ring: &TenantKeyring,
        record: &mut AuditRecord,
    ) -> ServiceResult<Content> {
        let p = g.p;
        let tenant_id = g.tenant.row.id.as_str();
        let scope = TenantScope::new(tenant_id);
        let max = self.settings.export_max_records;
        let grants = self.grants_for(p, tenant_id, Some(g.purpose)).await?;
        let mut out = Content::new();

        if g.wants("contacts") {
            self.gather_contacts(g, ring, &grants, record, &mut out, max)
                .await?;
        }
        if g.wants("cases") || g.wants("comments") || g.wants("attachments") {
            // The cases the caller's list shows (as GET does).
            let filter = reachable_cases(p, &grants);
            let mut after: Option<String> = None;
            loop {
                let rows = self
                    .store
                    .cases(&scope, &filter, after.as_deref(), PAGE)
                    .await?;
                after = rows.last().map(|r| r.id.clone());
                for row in rows.iter().filter(|r| g.case_ok(r)) {
                    let facts = case_facts(p, row, &grants);
                    if g.wants("cases") {
                        let d = self.decide(
                            p,
                            Action::ReadCase,
                            &facts,
                            Some(&g.tenant.facts),
                            Some(g.purpose),
                        );
                        if d.allowed {
                            out.record("case", shape::case(ring, row, &d.fields)?, record, max)?;
                            out.opened_by(&facts, &grants);
                        }
                    }
                    if g.wants("comments") {
                        let d = self.decide(
                            p,
                            Action::ReadComments,
                            &facts,
                            Some(&g.tenant.facts),
                            Some(g.purpose),
                        );
                        if d.allowed {
                            let mut c_after: Option<String> = None;
                            loop {
                                let comments = self
                                    .store
                                    .comments(&scope, &row.id, c_after.as_deref(), PAGE)
                                    .await?;
                                c_after = comments.last().map(|c| c.id.clone());
                                for c in &comments {
                                    let shaped = shape::comment(ring, c, &d.fields)?;
                                    out.record("comment", shaped, record, max)?;
                                    out.opened_by(&facts, &grants);
                                }
                                if comments.len() < PAGE as usize {
                                    break;
                                }
                            }
                        }
                    }
                    if g.wants("attachments") {
                        self.gather_attachments(g, ring, (row, &facts, &grants), record, &mut out)
                            .await?;
                    }
                }
                if rows.len() < PAGE as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The records of a case's files, as `GET` shapes them, each with the SHA-256 of its content
    /// when the caller may download it: the content itself stays out (an export is built in
    /// memory), and the hash lets the recipient check each file it then downloads.
    async fn gather_attachments(
        &self,
        g: &Gather<'_>,
        ring: &TenantKeyring,
        (case, facts, grants): (&CaseRow, &ResourceFacts, &Grants),
        record: &mut AuditRecord,
        out: &mut Content,
    ) -> ServiceResult<()> {
        let d = self.decide(
            g.p,
            Action::ReadAttachments,
            facts,
            Some(&g.tenant.facts),
            Some(g.purpose),
        );
        if !d.allowed {
            return Ok(());
        }
        let scope = TenantScope::new(&case.tenant_id);
        let hashed = d.fields.get(FieldClass::CaseContent) == Visibility::Reveal;
        let max = self.settings.export_max_records;
        let mut after: Option<String> = None;
        loop {
            let files = self
                .store
                .attachments(&scope, &case.id, after.as_deref(), PAGE)
                .await?;
            after = files.last().map(|f| f.id.clone());
            for file in &files {
                out.room_for_one(max)?;
                let mut shaped = shape::attachment(ring, file, &d.fields)?;
                if hashed {
                    shaped.requested.push("content");
                    match self.attachment_digest(ring, file).await? {
                        // Purged with its case since the page was read: not exported.
                        StoredContent::Gone => continue,
                        StoredContent::Unreadable => shaped.mark_unreadable("content"),
                        StoredContent::Sha256(digest) => {
                            // Taken of the content in clear: recorded as its disclosure.
                            shaped.disclosed.push("content");
                            shaped
                                .view
                                .insert("content_sha256".into(), json!(hex::encode(digest)));
                        }
                    }
                }
                out.record("attachment", shaped, record, max)?;
                out.opened_by(facts, grants);
            }
            if files.len() < PAGE as usize {
                return Ok(());
            }
        }
    }

    async fn gather_contacts(
        &self,
        g: &Gather<'_>,
        ring: &TenantKeyring,
        grants: &Grants,
        record: &mut AuditRecord,
        out: &mut Content,
        max: u64,
    ) -> ServiceResult<()> {
        let p = g.p;
        let scope = TenantScope::new(&g.tenant.row.id);
        // Staff reach a contact through a case assigned to them (as in the contact list).
        let reachable = self.contacts_of_assigned_cases(p, &scope).await?;
        let mut after: Option<String> = None;
        loop {
            let rows = self.store.contacts(&scope, after.as_deref(), PAGE).await?;
            after = rows.last().map(|r| r.id.clone());
            for row in rows.iter().filter(|r| g.id_ok(&r.id)) {
                let reached = reachable.as_ref().is_some_and(|r| r.contains(&row.id));
                let facts = contact_facts(row, reached, grants.for_contact(&row.id));
                let d = self.decide(
                    p,
                    Action::ReadContact,
                    &facts,
                    Some(&g.tenant.facts),
                    Some(g.purpose),
                );
                if d.allowed {
                    out.record(
                        "contact",
                        shape::contact(ring, row, &d.fields)?,
                        record,
                        max,
                    )?;
                    out.opened_by(&facts, grants);
                }
            }
            if rows.len() < PAGE as usize {
                return Ok(());
            }
        }
    }

    /// The tenant's audit entries covered by the latest signed checkpoint, each with its inclusion
    /// proof against that checkpoint; the checkpoint note and verifier key come first.
    pub(super) async fn gather_audit(
        &self,
        tenant_id: &str,
        out: &mut Content,
    ) -> ServiceResult<()> {
        let note = self.audit.checkpoint();
        let verifier = NoteVerifier::parse(self.audit.verifier_key())
            .map_err(|_| ServiceError::internal("audit verifier key"))?;
        let checkpoint = verifier
            .verify_checkpoint(&note)
            .map_err(|_| ServiceError::internal("audit checkpoint does not verify"))?;
        out.push(&json!({
            "kind": "checkpoint",
            "note": &*note,
            "verifier_key": self.audit.verifier_key(),
            "tree_size": checkpoint.size,
        }))?;
        let scope = TenantScope::new(tenant_id);
        let mut after: Option<u64> = None;
        let mut n = 0u64;
        'pages: loop {
            let rows = self
                .store
                .audit_entries_for_tenant(&scope, after, PAGE)
                .await?;
            let full = rows.len() >= PAGE as usize;
            for row in rows {
                let index =
                    u64::try_from(row.idx).map_err(|_| ServiceError::internal("audit index"))?;
                if index >= checkpoint.size {
                    break 'pages;
                }
                after = Some(index);
                let proof = self.audit.inclusion_proof(index, checkpoint.size).await?;
                let entry: Value = serde_json::from_slice(&row.entry)
                    .map_err(|_| ServiceError::internal("audit entry unreadable"))?;
                out.push(&json!({
                    "kind": "audit_entry",
                    "index": index,
                    "entry": entry,
                    "leaf": b64(&row.entry),
                    "inclusion": { "tree_size": proof.tree_size, "hashes": proof.hashes },
                }))?;
                n += 1;
            }
            if !full {
                break;
            }
        }
        out.counts.audit_entries = Some(n);
        Ok(())
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An age X25519 recipient, or `validation_failed` naming `recipient` (the value is not echoed).
pub(super) fn parse_recipient(text: &str) -> ServiceResult<age::x25519::Recipient> {
    text.trim().parse().map_err(|_| {
        ServiceError::validation(
            "recipient must be an age X25519 public key (age1…)",
            &["recipient"],
        )
    })
}

/// Hex SHA-256 of the content lines.
pub(super) fn content_hash(content: &Content) -> String {
    hex::encode(Sha256::digest(content.lines.bytes()))
}

/// Manifest line + content, streamed into age for `recipient`; no other plaintext copy is made.
pub(super) fn seal(
    recipient: &age::x25519::Recipient,
    manifest: &Value,
    content: &Content,
) -> ServiceResult<Vec<u8>> {
    let mut header = serde_json::to_vec(
        &json!({ "format": FORMAT, "version": FORMAT_VERSION, "manifest": manifest }),
    )
    .map_err(|_| ServiceError::internal("export manifest"))?;
    header.push(b'\n');
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|_| ServiceError::internal("export encryption"))?;
    let mut out = Vec::with_capacity(content.lines.bytes().len() + header.len() + 1024);
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|_| ServiceError::internal("export encryption"))?;
    writer
        .write_all(&header)
        .and_then(|()| writer.write_all(content.lines.bytes()))
        .and_then(|()| writer.finish().map(|_| ()))
        .map_err(|_| ServiceError::internal("export encryption"))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_wiping_buffer_keeps_every_byte_across_growth() {
        let mut w = Wiping::default();
        let mut want = Vec::new();
        for i in 0..10_000u32 {
            let chunk = i.to_string();
            w.write_all(chunk.as_bytes()).unwrap();
            want.extend_from_slice(chunk.as_bytes());
        }
        assert_eq!(w.bytes(), &want[..]);
    }

    #[test]
    fn sealed_exports_open_with_the_recipients_identity_only() {
        let id = age::x25519::Identity::generate();
        let mut c = Content::new();
        c.push(&json!({"kind": "contact", "record": {"name": "x"}}))
            .unwrap();
        let sealed = seal(&id.to_public(), &json!({"n": 1}), &c).unwrap();
        let plain = age::decrypt(&id, &sealed).unwrap();
        let text = String::from_utf8(plain).unwrap();
        let (head, rest) = text.split_once('\n').unwrap();
        assert!(head.contains("\"strongroom-export\""));
        assert_eq!(rest.as_bytes(), c.lines.bytes());
        assert!(age::decrypt(&age::x25519::Identity::generate(), &sealed).is_err());
        assert!(parse_recipient("age1nope").is_err());
        assert!(parse_recipient(&id.to_public().to_string()).is_ok());
    }
}
