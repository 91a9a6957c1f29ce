//! Turning ciphertext rows into what one reader may see: decrypt only what the decision reveals or masks,
//! mask, withhold the rest, and say so in `_access`.

use serde_json::{Value, json};
use strongroom_crypto::{CryptoError, FieldContext, TenantKeyring};
use strongroom_policy::{FieldClass, FieldMask, Visibility};
use strongroom_store::{AttachmentRow, CaseRow, CommentRow, ContactRow};

use crate::audit::AuditRecord;
use crate::clock::rfc3339;
use crate::error::{ServiceError, ServiceResult};
use crate::mask;
use crate::model::RecordView;

/// A shaped record and what it disclosed, for the audit entry.
pub(crate) struct Shaped {
    pub view: RecordView,
    pub requested: Vec<&'static str>,
    pub disclosed: Vec<&'static str>,
    pub masked: Vec<&'static str>,
    /// Fields sealed under a key version no longer held: shown as null, disclosing nothing.
    pub unreadable: Vec<&'static str>,
}

pub(crate) fn contact_class(field: &str) -> FieldClass {
    match field {
        "name" | "email" => FieldClass::ContactIdentity,
        "phone" | "address" => FieldClass::ContactDetail,
        _ => FieldClass::Sensitive,
    }
}

pub(crate) fn seal(
    ring: &TenantKeyring,
    kind: &str,
    record_id: &str,
    field: &str,
    plaintext: &str,
) -> ServiceResult<Vec<u8>> {
    ring.encrypt_field(
        &FieldContext {
            kind,
            record_id,
            field,
        },
        plaintext.as_bytes(),
    )
    .map_err(|_| ServiceError::internal("field encryption failed"))
}

/// A field's plaintext, or `None` when it is sealed under a key version whose keys are lost (a
/// restore accepted records sealed under it): a view shows such a field as null and names it in
/// `_access.unreadable`, so that one lost version does not make every list that meets its records
/// fail. Any other failure to open (altered, bound elsewhere, a version neither held nor lost) is
/// an integrity failure.
pub(crate) fn open_readable(
    ring: &TenantKeyring,
    kind: &str,
    record_id: &str,
    field: &str,
    ciphertext: &[u8],
) -> ServiceResult<Option<String>> {
    let ctx = FieldContext {
        kind,
        record_id,
        field,
    };
    let opened = unless_lost(
        ring,
        ring.decrypt_field(&ctx, ciphertext),
        "field does not decrypt (integrity failure)",
    )?;
    opened
        .map(|plain| String::from_utf8(plain.to_vec()))
        .transpose()
        .map_err(|_| ServiceError::internal("field is not UTF-8"))
}

/// What an opening with `ring` came to: the plaintext, `None` when the ciphertext names a key
/// version whose keys are lost (a restore accepted it), or else [`not_opened`]. The one place
/// that decides what may read as unreadable.
pub(crate) fn unless_lost<T>(
    ring: &TenantKeyring,
    opened: Result<T, CryptoError>,
    integrity: &'static str,
) -> ServiceResult<Option<T>> {
    match opened {
        Ok(plain) => Ok(Some(plain)),
        Err(CryptoError::KeyVersionLost { .. }) => Ok(None),
        Err(err) => Err(not_opened(ring, &err, integrity)),
    }
}

/// Why a ciphertext did not open with `ring`: a version newer than the ring's current one means
/// the ring predates a rotation (by another instance, on a shared store), which reading the keys
/// again mends; anything else is an integrity failure, `integrity` for the operator log.
fn not_opened(ring: &TenantKeyring, err: &CryptoError, integrity: &'static str) -> ServiceError {
    match err {
        CryptoError::UnknownKeyVersion { version } if *version > ring.current_version() => {
            ServiceError::keyring_behind()
        }
        _ => ServiceError::internal(integrity),
    }
}

/// Seals raw bytes (a secret key) like a field.
pub(crate) fn seal_bytes(
    ring: &TenantKeyring,
    kind: &str,
    record_id: &str,
    field: &str,
    plaintext: &[u8],
) -> ServiceResult<Vec<u8>> {
    ring.encrypt_field(
        &FieldContext {
            kind,
            record_id,
            field,
        },
        plaintext,
    )
    .map_err(|_| ServiceError::internal("field encryption failed"))
}

/// Opens what [`seal_bytes`] sealed; the plaintext is wiped on drop.
pub(crate) fn open_bytes(
    ring: &TenantKeyring,
    kind: &str,
    record_id: &str,
    field: &str,
    ciphertext: &[u8],
) -> ServiceResult<strongroom_crypto::Zeroizing<Vec<u8>>> {
    let plain = ring
        .decrypt_field(
            &FieldContext {
                kind,
                record_id,
                field,
            },
            ciphertext,
        )
        .map_err(|err| not_opened(ring, &err, "field does not decrypt (integrity failure)"))?;
    Ok(strongroom_crypto::Zeroizing::new(plain.to_vec()))
}

struct Builder<'a> {
    ring: &'a TenantKeyring,
    kind: &'static str,
    id: &'a str,
    mask: &'a FieldMask,
    out: Shaped,
    withheld: Vec<&'static str>,
}

impl<'a> Builder<'a> {
    fn new(
        ring: &'a TenantKeyring,
        kind: &'static str,
        id: &'a str,
        tenant_id: &str,
        mask: &'a FieldMask,
    ) -> Self {
        let mut view = RecordView::new();
        view.insert("id".into(), json!(id));
        view.insert("tenant_id".into(), json!(tenant_id));
        Self {
            ring,
            kind,
            id,
            mask,
            out: Shaped {
                view,
                requested: Vec::new(),
                disclosed: Vec::new(),
                masked: Vec::new(),
                unreadable: Vec::new(),
            },
            withheld: Vec::new(),
        }
    }

    fn secret(
        &mut self,
        field: &'static str,
        class: FieldClass,
        ciphertext: Option<&[u8]>,
    ) -> ServiceResult<()> {
        self.out.requested.push(field);
        let visibility = self.mask.get(class);
        if visibility == Visibility::Withhold {
            self.withheld.push(field);
            return Ok(());
        }
        let plain = match ciphertext {
            Some(ct) => match open_readable(self.ring, self.kind, self.id, field, ct)? {
                Some(plain) => Some(plain),
                None => {
                    self.out.view.insert(field.into(), Value::Null);
                    self.out.unreadable.push(field);
                    return Ok(());
                }
            },
            None => None,
        };
        let value = match (visibility, plain) {
            (_, None) => Value::Null,
            (Visibility::Mask, Some(plain)) => Value::String(mask::field(self.kind, field, &plain)),
            (_, Some(plain)) => Value::String(plain),
        };
        self.out.view.insert(field.into(), value);
        if visibility == Visibility::Mask {
            self.out.masked.push(field);
        } else {
            self.out.disclosed.push(field);
        }
        Ok(())
    }

    fn metadata(&mut self, field: &'static str, value: Value) {
        if self.mask.get(FieldClass::Metadata) == Visibility::Withhold {
            self.withheld.push(field);
        } else {
            self.out.view.insert(field.into(), value);
        }
    }

    fn finish(mut self) -> Shaped {
        let mut access = json!({ "masked": self.out.masked, "withheld": self.withheld });
        if !self.out.unreadable.is_empty() {
            access["unreadable"] = json!(self.out.unreadable);
        }
        self.out.view.insert("_access".into(), access);
        self.out
    }
}

pub(crate) fn contact(
    ring: &TenantKeyring,
    row: &ContactRow,
    mask: &FieldMask,
) -> ServiceResult<Shaped> {
    let mut b = Builder::new(ring, "contact", &row.id, &row.tenant_id, mask);
    b.secret("name", FieldClass::ContactIdentity, Some(&row.name))?;
    b.secret("email", FieldClass::ContactIdentity, row.email.as_deref())?;
    b.secret("phone", FieldClass::ContactDetail, row.phone.as_deref())?;
    b.secret("address", FieldClass::ContactDetail, row.address.as_deref())?;
    b.secret("notes", FieldClass::Sensitive, row.notes.as_deref())?;
    b.metadata("created_at", json!(rfc3339(row.created_at)));
    b.metadata("updated_at", json!(rfc3339(row.updated_at)));
    Ok(b.finish())
}

pub(crate) fn case(ring: &TenantKeyring, row: &CaseRow, mask: &FieldMask) -> ServiceResult<Shaped> {
    let mut b = Builder::new(ring, "case", &row.id, &row.tenant_id, mask);
    b.secret("title", FieldClass::CaseContent, Some(&row.title))?;
    b.secret(
        "description",
        FieldClass::CaseContent,
        row.description.as_deref(),
    )?;
    b.metadata("severity", json!(row.severity));
    b.metadata("status", json!(row.status));
    b.metadata("product", json!(row.product));
    b.metadata("contact_id", json!(row.contact_id));
    b.metadata("assignee_id", json!(row.assignee_id));
    b.metadata("created_at", json!(rfc3339(row.created_at)));
    b.metadata("updated_at", json!(rfc3339(row.updated_at)));
    Ok(b.finish())
}

pub(crate) fn comment(
    ring: &TenantKeyring,
    row: &CommentRow,
    mask: &FieldMask,
) -> ServiceResult<Shaped> {
    let mut b = Builder::new(ring, "comment", &row.id, &row.tenant_id, mask);
    b.metadata("case_id", json!(row.case_id));
    b.metadata("author_id", json!(row.author_id));
    b.secret("body", FieldClass::CaseContent, Some(&row.body))?;
    b.metadata("created_at", json!(rfc3339(row.created_at)));
    Ok(b.finish())
}

pub(crate) fn attachment(
    ring: &TenantKeyring,
    row: &AttachmentRow,
    mask: &FieldMask,
) -> ServiceResult<Shaped> {
    let mut b = Builder::new(ring, "attachment", &row.id, &row.tenant_id, mask);
    b.metadata("case_id", json!(row.case_id));
    b.metadata("uploaded_by", json!(row.uploaded_by));
    b.secret("name", FieldClass::CaseContent, Some(&row.name))?;
    b.metadata("media_type", json!(row.media_type));
    b.metadata("size", json!(row.size));
    b.metadata(
        "scan",
        json!({ "verdict": "clean", "scanner": row.scanner, "scanned_at": rfc3339(row.scanned_at) }),
    );
    b.metadata("created_at", json!(rfc3339(row.created_at)));
    Ok(b.finish())
}

impl Shaped {
    /// Names `field` in the view's `_access.unreadable`, as the builder does for fields.
    pub(crate) fn mark_unreadable(&mut self, field: &'static str) {
        self.unreadable.push(field);
        if let Some(access) = self.view.get_mut("_access") {
            access["unreadable"] = json!(self.unreadable);
        }
    }
}

/// Records in `record` what `shaped` discloses (accumulating across the records of a list) and hands
/// back the view: a view reaches a caller only through its audit record.
pub(crate) fn disclose(record: &mut AuditRecord, shaped: Shaped) -> RecordView {
    for (into, from) in [
        (&mut record.fields_requested, &shaped.requested),
        (&mut record.fields_disclosed, &shaped.disclosed),
        (&mut record.fields_masked, &shaped.masked),
    ] {
        for f in from {
            if !into.contains(f) {
                into.push(f);
            }
        }
    }
    shaped.view
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use strongroom_crypto::TenantKeys;
    use strongroom_policy::Visibility;

    use super::*;

    fn ring(version: u32) -> TenantKeyring {
        TenantKeyring::new("t1", vec![TenantKeys::generate(version).unwrap()]).unwrap()
    }

    fn comment_row(body: Vec<u8>) -> CommentRow {
        CommentRow {
            tenant_id: "t1".into(),
            id: "m1".into(),
            case_id: "c1".into(),
            author_id: "u1".into(),
            body,
            created_at: 0,
        }
    }

    #[test]
    fn a_field_under_a_lost_version_is_shown_as_unreadable_and_any_other_failure_is_an_error() {
        let (gone, current) = (ring(1), ring(2).with_lost_versions([1]));
        let sealed = seal(&gone, "comment", "m1", "body", "hello").unwrap();
        // Not marked lost, the same version is an integrity failure: a header rewritten to name
        // a version nobody holds hides nothing.
        let unmarked = comment(
            &ring(2),
            &comment_row(sealed.clone()),
            &FieldMask::all(Visibility::Reveal),
        );
        assert!(unmarked.is_err());
        for visibility in [Visibility::Reveal, Visibility::Mask] {
            let shaped = comment(
                &current,
                &comment_row(sealed.clone()),
                &FieldMask::all(visibility),
            )
            .unwrap();
            assert_eq!(shaped.view["body"], Value::Null);
            assert_eq!(shaped.view["_access"]["unreadable"], json!(["body"]));
            assert!(shaped.disclosed.is_empty() && shaped.masked.is_empty());
        }
        // Withheld, it is not even looked at.
        let withheld = comment(&current, &comment_row(sealed), &FieldMask::none()).unwrap();
        assert!(withheld.view["_access"].get("unreadable").is_none());

        // Readable: no such member at all.
        let fine = seal(&current, "comment", "m1", "body", "hello").unwrap();
        let shaped = comment(
            &current,
            &comment_row(fine.clone()),
            &FieldMask::all(Visibility::Reveal),
        )
        .unwrap();
        assert_eq!(shaped.view["body"], "hello");
        assert!(shaped.view["_access"].get("unreadable").is_none());

        // Under a held version but altered, or bound to another record: an integrity failure.
        let mut altered = fine;
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(
            comment(
                &current,
                &comment_row(altered),
                &FieldMask::all(Visibility::Reveal)
            )
            .is_err()
        );
        let elsewhere = seal(&current, "comment", "m2", "body", "hello").unwrap();
        assert!(
            comment(
                &current,
                &comment_row(elsewhere),
                &FieldMask::all(Visibility::Reveal)
            )
            .is_err()
        );
    }

    #[test]
    fn only_a_version_above_the_rings_current_one_asks_for_the_keys_again() {
        let reveal = FieldMask::all(Visibility::Reveal);
        let newer = seal(&ring(3), "comment", "m1", "body", "hello").unwrap();
        // `Shaped` holds plaintext and has no `Debug`, so no `unwrap_err`.
        let failure = |shaped: ServiceResult<Shaped>| shaped.err().unwrap();
        let behind = failure(comment(&ring(2), &comment_row(newer.clone()), &reveal));
        assert!(behind.is_keyring_behind());
        assert_eq!(behind.code, crate::ErrorCode::Internal);
        let bytes = open_bytes(&ring(2), "comment", "m1", "body", &newer).err();
        assert!(bytes.is_some_and(|e| e.is_keyring_behind()));

        // An older version not held, or one held but altered, is no rotation: integrity failures.
        let older = seal(&ring(1), "comment", "m1", "body", "hello").unwrap();
        let missing = failure(comment(&ring(2), &comment_row(older), &reveal));
        assert!(!missing.is_keyring_behind());
        let mut altered = seal(&ring(2), "comment", "m1", "body", "hello").unwrap();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        let altered = failure(comment(&ring(2), &comment_row(altered), &reveal));
        assert!(!altered.is_keyring_behind());
    }
}
