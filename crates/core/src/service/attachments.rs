//! Files attached to cases: logs, dumps, screenshots (DESIGN.md "Attachment: file content,
//! scanned, encrypted"). A file is scanned before it is stored and again before each download,
//! so that a signature learnt since the upload still stops it; a file the scanner refuses, or
//! cannot judge, is never stored or served. The name is case content like a comment's body; the
//! content is sealed under the tenant's attachment key and shredded with the tenant's keys.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use strongroom_crypto::{FieldContext, TenantKeyring, Zeroizing};
use strongroom_policy::{Action, Denial, FieldClass, Visibility};
use strongroom_store::{AttachmentRow, Mutation, TenantScope};

use super::case_gate::{Gate, case_facts};
use crate::access::{Principal, RequestContext, is_id};
use crate::audit::AuditRecord;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::{AttachmentInput, Page, PageRequest, RecordView};
use crate::scan::Verdict;
use crate::{Vault, new_id, shape};

const KIND: &str = "attachment";

/// Longest file name, in characters.
const MAX_NAME_CHARS: usize = 255;

/// Longest media type (RFC 6838 allows 127 characters on each side of the slash).
const MAX_MEDIA_TYPE: usize = 255;

const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

fn content_context(id: &str) -> FieldContext<'_> {
    FieldContext {
        kind: KIND,
        record_id: id,
        field: "content",
    }
}

/// A checked upload: the content decoded, the name and media type well-formed.
struct Upload {
    name: String,
    media_type: String,
    content: Zeroizing<Vec<u8>>,
}

fn checked(input: AttachmentInput, max_bytes: u64) -> ServiceResult<Upload> {
    // The file in base64 is the file: wiped once decoded, like the decoded copy.
    let encoded = Zeroizing::new(input.content);
    // Refused before decoding: base64 holds three bytes in every four characters, less up to
    // two of padding.
    let decoded_at_least = (encoded.len() as u64 / 4)
        .saturating_mul(3)
        .saturating_sub(2);
    if decoded_at_least > max_bytes {
        return Err(too_large());
    }
    let content =
        Zeroizing::new(STANDARD.decode(encoded.as_bytes()).map_err(|_| {
            ServiceError::validation("content is not standard base64", &["content"])
        })?);
    if content.len() as u64 > max_bytes {
        return Err(too_large());
    }
    if content.is_empty() {
        return Err(ServiceError::validation("the file is empty", &["content"]));
    }
    let name = input.name.trim();
    let name_ok = !matches!(name, "" | "." | "..")
        && name.chars().count() <= MAX_NAME_CHARS
        && !name
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c) || matches!(c, '/' | '\\'));
    if !name_ok {
        return Err(ServiceError::validation(
            "a file name is 1 to 255 characters, without path separators or control characters",
            &["name"],
        ));
    }
    let media_type = match input.media_type.as_deref() {
        None => DEFAULT_MEDIA_TYPE.to_owned(),
        Some(given) if is_media_type(given) => given.to_ascii_lowercase(),
        Some(_) => {
            return Err(ServiceError::validation(
                "media_type is not a type/subtype such as text/plain",
                &["media_type"],
            ));
        }
    };
    Ok(Upload {
        name: name.to_owned(),
        media_type,
        content,
    })
}

/// Unicode's format characters (category Cf): they change how a name reads without showing,
/// such as bidirectional overrides (`x\u{202E}fdp.exe` shows as `xexe.pdf`), zero-width
/// characters, soft hyphens, the byte-order mark and tag characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

fn too_large() -> ServiceError {
    ServiceError::new(
        ErrorCode::PayloadTooLarge,
        "the file is larger than the configured attachment limit",
    )
}

/// `type/subtype`, each an RFC 6838 restricted name, without parameters.
fn is_media_type(text: &str) -> bool {
    let restricted = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && part.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '!' | '#' | '$' | '&' | '-' | '^' | '_' | '.' | '+')
            })
    };
    text.len() <= MAX_MEDIA_TYPE
        && text
            .split_once('/')
            .is_some_and(|(kind, sub)| restricted(kind) && restricted(sub))
}

/// What an export finds of a file's content.
pub(super) enum StoredContent {
    /// Purged with its case since the file was listed.
    Gone,
    /// Sealed under a key version whose keys are lost.
    Unreadable,
    Sha256([u8; 32]),
}

/// A file's content in clear, or `None` when it is sealed under a key version whose keys are lost
/// (a restore accepted it); any other failure to open is an integrity failure.
fn open_content(
    ring: &TenantKeyring,
    id: &str,
    sealed: &[u8],
) -> ServiceResult<Option<Zeroizing<Vec<u8>>>> {
    shape::unless_lost(
        ring,
        ring.decrypt_attachment(&content_context(id), sealed),
        "attachment does not decrypt (integrity failure)",
    )
}

fn malware(signature: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::MalwareDetected,
        "the file matches a malware signature; it was not stored or served",
    )
    .with_details(serde_json::json!({ "signature": signature }))
}

fn scanner_unavailable() -> ServiceError {
    ServiceError::new(
        ErrorCode::ScannerUnavailable,
        "the malware scanner gave no verdict; the file was not stored or served",
    )
}

impl Vault {
    /// Scans `content` and, unless it is clean, records `gate`'s request as refused (`refused`,
    /// with the reason) and answers with the error the caller sees.
    async fn require_clean(
        &self,
        gate: &Gate,
        content: &[u8],
        refused: &'static str,
    ) -> ServiceResult<()> {
        let scanner = &self.settings.attachment_scanner;
        let limit = Duration::from_millis(self.settings.attachment_scan_timeout_ms);
        let (reason, err) = match scanner.scan(content, limit).await {
            Ok(Verdict::Clean) => return Ok(()),
            Ok(Verdict::Infected(signature)) => {
                tracing::warn!(
                    tenant_id = %gate.row.tenant_id,
                    case_id = %gate.row.id,
                    scanner = scanner.name(),
                    signature = %signature,
                    "a file matched a malware signature"
                );
                ("malware_detected", malware(&signature))
            }
            Err(err) => {
                tracing::error!(scanner = scanner.name(), error = %err, "no malware scan verdict");
                ("scanner_unavailable", scanner_unavailable())
            }
        };
        Err(self
            .record_refusal(gate.record.clone(), refused, reason, err)
            .await)
    }

    /// Records `record` as refused (`action`, `reason`) and hands back `err`, or the log's own
    /// error when it cannot take the record: nothing leaves either way.
    async fn record_refusal(
        &self,
        mut record: AuditRecord,
        action: &'static str,
        reason: &'static str,
        err: ServiceError,
    ) -> ServiceError {
        record.action = action;
        self.refuse_because(record, reason, err).await
    }

    pub async fn add_attachment(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        input: AttachmentInput,
    ) -> ServiceResult<RecordView> {
        // The scan below may take many seconds: access withdrawn meanwhile refuses the commit.
        let epoch = self.current_access_epoch(p).await?;
        let (mut gate, _) = self
            .case_gate(
                p,
                ctx,
                tenant_id,
                case_id,
                Action::AddAttachment,
                "attachment.create",
            )
            .await?;
        let guard = self.access_guard(p, epoch, &gate.record).await?;
        gate.record.fields_requested = vec!["name", "content"];
        // Decoded only for a caller who may add to the case; a refused body is recorded too.
        let upload = match checked(input, self.settings.attachment_max_bytes) {
            Ok(upload) => upload,
            Err(err) => {
                let reason = err.code.as_str();
                return Err(self
                    .record_refusal(gate.record, "attachment.create_refused", reason, err)
                    .await);
            }
        };
        self.require_clean(&gate, &upload.content, "attachment.create_refused")
            .await?;
        let ring = self.keys.keyring(self.store.as_ref(), tenant_id).await?;
        let id = new_id();
        let sealed = ring
            .encrypt_attachment(&content_context(&id), &upload.content)
            .map_err(|_| ServiceError::internal("attachment encryption failed"))?;
        let now = self.now();
        let row = AttachmentRow {
            tenant_id: tenant_id.to_owned(),
            id: id.clone(),
            case_id: case_id.to_owned(),
            uploaded_by: p.user_id.clone(),
            name: shape::seal(&ring, KIND, &id, "name", &upload.name)?,
            media_type: upload.media_type,
            size: i64::try_from(upload.content.len()).unwrap_or(i64::MAX),
            scanner: self.settings.attachment_scanner.name().to_owned(),
            scanned_at: now,
            created_at: now,
        };
        gate.record.records = vec![id];
        let d = self.decide(
            p,
            Action::ReadAttachments,
            &case_facts(p, &gate.row, &gate.grants),
            Some(&gate.tenant.facts),
            ctx.purpose,
        );
        let view = shape::disclose(&mut gate.record, shape::attachment(&ring, &row, &d.fields)?);
        self.commit_attempt(
            vec![gate.record],
            [
                guard.at(self.now()),
                vec![Mutation::InsertAttachment {
                    row,
                    content: sealed,
                }],
            ]
            .concat(),
            ("attachment.create_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(view)
    }

    pub async fn list_attachments(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        page: &PageRequest,
    ) -> ServiceResult<Page<RecordView>> {
        let (gate, decision) = self
            .case_gate(
                p,
                ctx,
                tenant_id,
                case_id,
                Action::ReadAttachments,
                "attachment.list",
            )
            .await?;
        let rows = self
            .store
            .attachments(
                &TenantScope::new(tenant_id),
                case_id,
                page.cursor.as_deref(),
                page.limit,
            )
            .await?;
        self.disclose_case_page(
            gate,
            rows,
            page.limit,
            |r| &r.id,
            |ring, r| shape::attachment(ring, r, &decision.fields),
        )
        .await
    }

    /// The case's gate for one of its files, and the file's row; a file of another case (or
    /// tenant) is not found, and its refusal recorded.
    async fn attachment_gate(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        (tenant_id, case_id, id): (&str, &str, &str),
        (action, audit_action): (Action, &'static str),
    ) -> ServiceResult<(Gate, strongroom_policy::Decision, AttachmentRow)> {
        let (mut gate, decision) = self
            .case_gate(p, ctx, tenant_id, case_id, action, audit_action)
            .await?;
        // A path id enters the log only in the shape of the ids we issue (see `is_id`).
        gate.record.records = is_id(id).then(|| id.to_owned()).into_iter().collect();
        let Some(row) = self
            .store
            .attachment(&TenantScope::new(tenant_id), case_id, id)
            .await?
        else {
            return Err(self.refuse(gate.record, Denial::NotFound, Vec::new()).await);
        };
        Ok((gate, decision, row))
    }

    pub async fn read_attachment(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        id: &str,
    ) -> ServiceResult<RecordView> {
        let (mut gate, decision, row) = self
            .attachment_gate(
                p,
                ctx,
                (tenant_id, case_id, id),
                (Action::ReadAttachments, "attachment.read"),
            )
            .await?;
        let shaped = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                shape::attachment(ring, &row, &decision.fields)
            })
            .await?;
        let view = shape::disclose(&mut gate.record, shaped);
        self.audit.append(gate.record).await?;
        Ok(view)
    }

    /// Removes one file from its case: the data owner's call (its tenant's admin), as a
    /// contact's deletion is. Recorded with the file's id, in the commit that removes it.
    pub async fn delete_attachment(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        id: &str,
    ) -> ServiceResult<()> {
        let (gate, _, _) = self
            .attachment_gate(
                p,
                ctx,
                (tenant_id, case_id, id),
                (Action::DeleteAttachment, "attachment.delete"),
            )
            .await?;
        self.commit_attempt(
            vec![gate.record],
            vec![Mutation::DeleteAttachment {
                scope: TenantScope::new(tenant_id),
                case_id: case_id.to_owned(),
                id: id.to_owned(),
            }],
            ("attachment.delete_not_applied", "deleted_meanwhile"),
        )
        .await?;
        Ok(())
    }

    /// What an export says of a file's content: the SHA-256 of it in clear, read and opened one
    /// file at a time.
    pub(super) async fn attachment_digest(
        &self,
        ring: &TenantKeyring,
        row: &AttachmentRow,
    ) -> ServiceResult<StoredContent> {
        let Some(sealed) = self
            .store
            .attachment_content(&TenantScope::new(&row.tenant_id), &row.case_id, &row.id)
            .await?
        else {
            return Ok(StoredContent::Gone);
        };
        Ok(match open_content(ring, &row.id, &sealed)? {
            Some(content) => StoredContent::Sha256(Sha256::digest(content.as_slice()).into()),
            None => StoredContent::Unreadable,
        })
    }

    /// A file's content, for a caller who sees case content in clear: there is no masked form
    /// of a file. Scanned again first; recorded before it leaves.
    pub async fn download_attachment(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        id: &str,
    ) -> ServiceResult<Zeroizing<Vec<u8>>> {
        let epoch = self.current_access_epoch(p).await?;
        let (mut gate, decision, row) = self
            .attachment_gate(
                p,
                ctx,
                (tenant_id, case_id, id),
                (Action::ReadAttachments, "attachment.download"),
            )
            .await?;
        gate.record.fields_requested = vec!["content"];
        if decision.fields.get(FieldClass::CaseContent) != Visibility::Reveal {
            let ids = self.field_refusal_ids(
                p,
                Action::ReadAttachments,
                &case_facts(p, &gate.row, &gate.grants),
                Some(&gate.tenant.facts),
                ctx.purpose,
                FieldClass::CaseContent,
            );
            return Err(self.refuse(gate.record, Denial::Forbidden, ids).await);
        }
        let Some(sealed) = self
            .store
            .attachment_content(&TenantScope::new(tenant_id), case_id, id)
            .await?
        else {
            // Purged with its case since the row was read.
            return Err(self.refuse(gate.record, Denial::NotFound, Vec::new()).await);
        };
        let opened = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                open_content(ring, &row.id, &sealed)
            })
            .await?;
        let Some(content) = opened else {
            let err = ServiceError::new(
                ErrorCode::ContentUnreadable,
                "the file is sealed under a key version whose keys are lost",
            );
            return Err(self
                .record_refusal(
                    gate.record,
                    "attachment.download_refused",
                    "content_unreadable",
                    err,
                )
                .await);
        };
        self.require_clean(&gate, &content, "attachment.download_refused")
            .await?;
        gate.record.fields_disclosed = vec!["content"];
        // Recorded with the access it was judged on still in place: the scan may have taken
        // long enough for a grant to be revoked.
        let guard = self.access_guard(p, epoch, &gate.record).await?;
        self.commit_attempt(
            vec![gate.record],
            guard.at(self.now()),
            ("attachment.download_not_applied", "access_changed"),
        )
        .await?;
        Ok(content)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn input(name: &str, media_type: Option<&str>, content: &str) -> AttachmentInput {
        AttachmentInput {
            name: name.into(),
            media_type: media_type.map(str::to_owned),
            content: content.into(),
        }
    }

    fn field(err: ServiceError) -> (ErrorCode, String) {
        let fields = err
            .details
            .map(|d| d["fields"].to_string())
            .unwrap_or_default();
        (err.code, fields)
    }

    #[test]
    fn uploads_are_checked_before_anything_else() {
        let ok = checked(input(" crash.log ", Some("Text/Plain"), "aGVsbG8="), 10).unwrap();
        assert_eq!(ok.name, "crash.log");
        assert_eq!(ok.media_type, "text/plain");
        assert_eq!(ok.content.as_slice(), b"hello");
        let default = checked(input("a", None, "aGVsbG8="), 10).unwrap();
        assert_eq!(default.media_type, DEFAULT_MEDIA_TYPE);

        let refused = [
            (input("a", None, "not base64!"), "content"),
            (input("a", None, ""), "content"),
            (input("", None, "aGVsbG8="), "name"),
            (input("../etc/passwd", None, "aGVsbG8="), "name"),
            (input("a\u{0}b", None, "aGVsbG8="), "name"),
            (input("x\u{202E}fdp.exe", None, "aGVsbG8="), "name"),
            (input("..", None, "aGVsbG8="), "name"),
            (input("a\u{00AD}b", None, "aGVsbG8="), "name"),
            (input("a\u{E0041}b", None, "aGVsbG8="), "name"),
            (input(&"x".repeat(256), None, "aGVsbG8="), "name"),
            (input("a", Some("text"), "aGVsbG8="), "media_type"),
            (
                input("a", Some("text/html; charset=utf-8"), "aGVsbG8="),
                "media_type",
            ),
            (input("a", Some("/plain"), "aGVsbG8="), "media_type"),
        ];
        for (bad, name) in refused {
            let (code, fields) = field(checked(bad, 10).err().unwrap());
            assert_eq!(code, ErrorCode::ValidationFailed);
            assert!(fields.contains(name), "{fields}");
        }
        // Over the limit, by the encoded length before decoding and by the decoded length after.
        let big = STANDARD.encode([0u8; 12]);
        assert_eq!(
            checked(input("a", None, &big), 11).err().unwrap().code,
            ErrorCode::PayloadTooLarge
        );
        assert!(checked(input("a", None, &big), 12).is_ok());
        let padded = STANDARD.encode([0u8; 11]);
        assert_eq!(
            checked(input("a", None, &padded), 10).err().unwrap().code,
            ErrorCode::PayloadTooLarge
        );
    }
}
