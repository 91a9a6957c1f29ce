//! Contacts: the customer's personal data. Every field is ciphertext at rest; the email also has a blind
//! index for exact lookup.

use std::collections::HashSet;
use std::sync::Arc;

use strongroom_crypto::{TenantKeyring, normalise_email};
use strongroom_policy::{
    Action, Decision, Denial, FieldClass, GrantFacts, ResourceFacts, ResourceKind, Visibility,
};
use strongroom_store::{CaseFilter, ContactRow, Mutation, TenantScope};

use super::{MAX_FIELD_CHARS, optional_text, required_text};
use crate::access::{Principal, RequestContext};
use crate::audit::{AuditRecord, ResourceRef};
use crate::error::{ServiceError, ServiceResult};
use crate::model::{ContactInput, Page, PageRequest, RecordView};
use crate::{TenantState, Vault, new_id, shape};

const KIND: &str = "contact";

fn contact_ref(id: Option<&str>) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: KIND,
        id: id.map(str::to_owned),
    })
}

fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Digits and the usual separators, with at least three digits.
fn valid_phone(phone: &str) -> bool {
    phone
        .chars()
        .all(|c| c.is_ascii_digit() || crate::mask::is_phone_separator(c))
        && phone.chars().filter(char::is_ascii_digit).count() >= 3
}

fn email_index(ring: &TenantKeyring, email: &str) -> ServiceResult<Vec<u8>> {
    ring.blind_index(KIND, "email", normalise_email(email).as_bytes())
        .map_err(|_| ServiceError::internal("blind index"))
}

/// `row` with the fields `input` holds validated and sealed under `ring`'s current version (an
/// e-mail with its new blind index).
fn sealed_update(
    ring: &TenantKeyring,
    row: &ContactRow,
    input: &ContactInput,
) -> ServiceResult<ContactRow> {
    let mut row = row.clone();
    let id = row.id.clone();
    let contact_id = id.as_str();
    if let Some(name) = input.name.as_deref() {
        let name = required_text(Some(name), "name", 1_000)?;
        row.name = shape::seal(ring, KIND, contact_id, "name", &name)?;
    }
    if let Some(email) = input.email.as_deref() {
        let email = optional_text(Some(email), "email", 320)?;
        if email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(ServiceError::validation("not an email address", &["email"]));
        }
        row.email = email
            .as_deref()
            .map(|e| shape::seal(ring, KIND, contact_id, "email", e))
            .transpose()?;
        row.email_index = email.as_deref().map(|e| email_index(ring, e)).transpose()?;
    }
    for (field, value, max) in [
        ("phone", &input.phone, 64),
        ("address", &input.address, 2_000),
        ("notes", &input.notes, MAX_FIELD_CHARS),
    ] {
        if let Some(v) = value.as_deref() {
            let v = optional_text(Some(v), field, max)?;
            if field == "phone" && v.as_deref().is_some_and(|p| !valid_phone(p)) {
                return Err(ServiceError::validation(
                    "a phone number holds digits and + - ( ) . only",
                    &["phone"],
                ));
            }
            let sealed = v
                .as_deref()
                .map(|v| shape::seal(ring, KIND, contact_id, field, v))
                .transpose()?;
            match field {
                "phone" => row.phone = sealed,
                "address" => row.address = sealed,
                _ => row.notes = sealed,
            }
        }
    }
    Ok(row)
}

/// The policy facts of one contact: staff reach it through a case assigned to them, or through an
/// active grant on a case that references it.
pub(super) fn contact_facts(
    row: &ContactRow,
    assigned_to_principal: bool,
    grant: Option<&GrantFacts>,
) -> ResourceFacts {
    let mut r = ResourceFacts::new(ResourceKind::Contact, &row.id, Some(row.tenant_id.clone()));
    r.assigned_to_principal = assigned_to_principal;
    r.grant = grant.cloned();
    r
}

struct Gate {
    tenant: Arc<TenantState>,
    row: ContactRow,
    record: AuditRecord,
    reachable: bool,
    grant: Option<GrantFacts>,
}

impl Vault {
    /// For staff, the contacts of the cases assigned to them in `scope` (every page of them):
    /// the contacts they reach through an assignment. `None` for customers, who reach all.
    pub(super) async fn contacts_of_assigned_cases(
        &self,
        p: &Principal,
        scope: &TenantScope,
    ) -> ServiceResult<Option<HashSet<String>>> {
        const PAGE: u32 = 500;
        if !p.is_staff() {
            return Ok(None);
        }
        let filter = CaseFilter {
            assignee_id: Some(p.user_id.clone()),
            also_ids: Vec::new(),
        };
        let mut contacts = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let cases = self
                .store
                .cases(scope, &filter, after.as_deref(), PAGE)
                .await?;
            after = cases.last().map(|c| c.id.clone());
            let full = cases.len() >= PAGE as usize;
            contacts.extend(cases.into_iter().filter_map(|c| c.contact_id));
            if !full {
                return Ok(Some(contacts));
            }
        }
    }

    /// Facts → decision → (recorded) refusal, for an operation on one existing contact.
    async fn contact_gate(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        contact_id: &str,
        action: Action,
        audit_action: &'static str,
    ) -> ServiceResult<(Gate, Decision)> {
        let (mut record, purpose, tenant) = self
            .open_content(
                p,
                ctx,
                audit_action,
                tenant_id,
                contact_ref(Some(contact_id)),
            )
            .await?;
        let scope = TenantScope::new(tenant_id);
        // An id that is not in this tenant is not found, whoever asks and whatever their role.
        // Staff reach a contact through a case assigned to them; customers through their tenant.
        let found = if p.is_staff() {
            self.store
                .contact_with_reach(&scope, contact_id, &p.user_id)
                .await?
        } else {
            self.store
                .contact(&scope, contact_id)
                .await?
                .map(|row| (row, false))
        };
        let Some((row, reachable)) = found else {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        };
        let grant = self
            .grants_for(p, tenant_id, Some(purpose))
            .await?
            .for_contact(contact_id)
            .cloned();
        record.grant_id = grant.as_ref().map(|g| g.id.clone());
        let decision = self.decide(
            p,
            action,
            &contact_facts(&row, reachable, grant.as_ref()),
            Some(&tenant.facts),
            Some(purpose),
        );
        self.enforce(&mut record, &decision).await?;
        Ok((
            Gate {
                tenant,
                row,
                record,
                reachable,
                grant,
            },
            decision,
        ))
    }

    pub async fn read_contact(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        contact_id: &str,
    ) -> ServiceResult<RecordView> {
        let (mut gate, decision) = self
            .contact_gate(
                p,
                ctx,
                tenant_id,
                contact_id,
                Action::ReadContact,
                "contact.read",
            )
            .await?;
        let shaped = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                shape::contact(ring, &gate.row, &decision.fields)
            })
            .await?;
        let view = shape::disclose(&mut gate.record, shaped);
        self.audit.append(gate.record).await?;
        Ok(view)
    }

    pub async fn create_contact(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        input: ContactInput,
    ) -> ServiceResult<RecordView> {
        let id = new_id();
        let (mut record, purpose, tenant) = self
            .open_content(p, ctx, "contact.create", tenant_id, contact_ref(Some(&id)))
            .await?;
        let resource = ResourceFacts::new(ResourceKind::Contact, &id, Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::CreateContact,
            &resource,
            Some(&tenant.facts),
            Some(purpose),
        );
        self.enforce(&mut record, &decision).await?;

        let name = required_text(input.name.as_deref(), "name", 1_000)?;
        let email = optional_text(input.email.as_deref(), "email", 320)?;
        if email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(ServiceError::validation("not an email address", &["email"]));
        }
        let phone = optional_text(input.phone.as_deref(), "phone", 64)?;
        if phone.as_deref().is_some_and(|p| !valid_phone(p)) {
            return Err(ServiceError::validation(
                "a phone number holds digits and + - ( ) . only",
                &["phone"],
            ));
        }
        let address = optional_text(input.address.as_deref(), "address", 2_000)?;
        let notes = optional_text(input.notes.as_deref(), "notes", MAX_FIELD_CHARS)?;

        let ring = self.keys.keyring(self.store.as_ref(), tenant_id).await?;
        let seal = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| shape::seal(&ring, KIND, &id, field, v))
                .transpose()
        };
        let now = self.now();
        let row = ContactRow {
            tenant_id: tenant_id.to_owned(),
            id: id.clone(),
            name: shape::seal(&ring, KIND, &id, "name", &name)?,
            email: seal("email", &email)?,
            phone: seal("phone", &phone)?,
            address: seal("address", &address)?,
            notes: seal("notes", &notes)?,
            email_index: email
                .as_deref()
                .map(|e| email_index(&ring, e))
                .transpose()?,
            created_at: now,
            updated_at: now,
        };
        record.fields_requested = present_fields(&input);
        let read = self.decide(
            p,
            Action::ReadContact,
            &contact_facts(&row, false, None),
            Some(&tenant.facts),
            ctx.purpose,
        );
        let view = shape::disclose(&mut record, shape::contact(&ring, &row, &read.fields)?);
        self.commit_attempt(
            vec![record],
            vec![Mutation::InsertContact(row.clone())],
            ("contact.create_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(view)
    }

    pub async fn update_contact(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        contact_id: &str,
        input: ContactInput,
    ) -> ServiceResult<RecordView> {
        let (mut gate, decision) = self
            .contact_gate(
                p,
                ctx,
                tenant_id,
                contact_id,
                Action::UpdateContact,
                "contact.update",
            )
            .await?;
        // Writing a field one may not read would let a caller probe or clobber it.
        for field in present_fields(&input) {
            let class = shape::contact_class(field);
            if decision.fields.get(class) != Visibility::Reveal {
                let ids = self.field_refusal_ids(
                    p,
                    Action::UpdateContact,
                    &contact_facts(&gate.row, gate.reachable, gate.grant.as_ref()),
                    Some(&gate.tenant.facts),
                    ctx.purpose,
                    class,
                );
                return Err(self.refuse(gate.record, Denial::Forbidden, ids).await);
            }
        }
        gate.record.fields_requested = present_fields(&input);
        let updated_at = super::next_version(self.now(), gate.row.updated_at);
        // The stored row may hold fields sealed under a version this instance has not loaded yet.
        let (row, shaped) = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                let mut row = sealed_update(ring, &gate.row, &input)?;
                row.updated_at = updated_at;
                let read = self.decide(
                    p,
                    Action::ReadContact,
                    &contact_facts(&row, gate.reachable, gate.grant.as_ref()),
                    Some(&gate.tenant.facts),
                    ctx.purpose,
                );
                let shaped = shape::contact(ring, &row, &read.fields)?;
                Ok((row, shaped))
            })
            .await?;
        let view = shape::disclose(&mut gate.record, shaped);
        let read_updated_at = gate.row.updated_at;
        self.commit_attempt(
            vec![gate.record],
            vec![Mutation::UpdateContact {
                row,
                read_updated_at,
            }],
            ("contact.update_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(view)
    }

    pub async fn delete_contact(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        contact_id: &str,
    ) -> ServiceResult<()> {
        let (gate, _) = self
            .contact_gate(
                p,
                ctx,
                tenant_id,
                contact_id,
                Action::DeleteContact,
                "contact.delete",
            )
            .await?;
        self.commit_attempt(
            vec![gate.record],
            vec![Mutation::DeleteContact {
                scope: TenantScope::new(tenant_id),
                id: contact_id.to_owned(),
            }],
            ("contact.delete_not_applied", "deleted_meanwhile"),
        )
        .await?;
        Ok(())
    }

    /// Lists contacts, or finds them by exact email through the blind index (`email` set).
    ///
    /// The request is first checked as if a contact were reachable, so that purpose, confidentiality
    /// and role guardrails answer with their own codes; each hit is then decided on its own facts. A
    /// search never returns a record whose email the caller could not see: a hit would disclose it.
    pub async fn list_contacts(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        email: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<RecordView>> {
        let action_name = if email.is_some() {
            "contact.search"
        } else {
            "contact.list"
        };
        let (mut record, purpose, tenant) = self
            .open_content(p, ctx, action_name, tenant_id, contact_ref(None))
            .await?;
        let probe = ResourceFacts::reachable(ResourceKind::Contact, "", Some(tenant_id.to_owned()));
        let action = if email.is_some() {
            Action::SearchContacts
        } else {
            Action::ReadContact
        };
        let decision = self.decide(p, action, &probe, Some(&tenant.facts), Some(purpose));
        self.enforce(&mut record, &decision).await?;

        let scope = TenantScope::new(tenant_id);
        let grants = self.grants_for(p, tenant_id, Some(purpose)).await?;
        let reachable = self.contacts_of_assigned_cases(p, &scope).await?;
        let (rows, next_cursor) = match (email, &reachable) {
            (Some(email), _) => {
                record.fields_requested = vec!["email"];
                // Rows not yet re-encrypted after a rotation carry an older version's index, and
                // rows another instance wrote just after one the new version's.
                let ring = self
                    .keys
                    .current_keyring(self.store.as_ref(), tenant_id)
                    .await?;
                let normalised = normalise_email(email);
                let mut rows = Vec::new();
                let mut seen = HashSet::new();
                // One more than a page under each version: merged by id, the first `limit` are
                // the page, and any beyond says there is another.
                for version in ring.versions() {
                    let index = ring
                        .blind_index_at(version, KIND, "email", normalised.as_bytes())
                        .map_err(|_| ServiceError::internal("blind index"))?;
                    let cursor = page.cursor.as_deref();
                    let found = self
                        .store
                        .contacts_by_email_index(
                            &scope,
                            &index,
                            cursor,
                            page.limit.saturating_add(1),
                        )
                        .await?;
                    rows.extend(found.into_iter().filter(|row| seen.insert(row.id.clone())));
                }
                rows.sort_by(|a, b| a.id.cmp(&b.id));
                let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
                let next = (rows.len() > limit)
                    .then(|| rows.get(limit.saturating_sub(1)).map(|r| r.id.clone()))
                    .flatten();
                rows.truncate(limit);
                (rows, next)
            }
            // Staff page through the contacts they reach, not the tenant's whole list: a cursor
            // taken from the whole list would name contacts they may not see.
            (None, Some(reach)) => {
                let mut ids: Vec<&String> = reach
                    .iter()
                    .chain(grants.contact_ids())
                    .filter(|id| {
                        page.cursor
                            .as_deref()
                            .is_none_or(|after| id.as_str() > after)
                    })
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
                let next = (ids.len() > limit)
                    .then(|| ids.get(limit.saturating_sub(1)).map(|id| (*id).clone()))
                    .flatten();
                let mut rows = Vec::new();
                for id in ids.into_iter().take(limit) {
                    if let Some(row) = self.store.contact(&scope, id).await? {
                        rows.push(row);
                    }
                }
                (rows, next)
            }
            (None, None) => {
                let rows = self
                    .store
                    .contacts(&scope, page.cursor.as_deref(), page.limit)
                    .await?;
                let next = super::next_cursor(&rows, page.limit, |r| r.id.clone());
                (rows, next)
            }
        };
        let wanted = email.map(normalise_email);
        // Over a copy of the record, so that a second pass (the keyring read again) starts clean.
        let (record, items) = self
            .keys
            .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                let mut record = record.clone();
                let mut items = Vec::new();
                for row in &rows {
                    let reached = reachable.as_ref().is_some_and(|r| r.contains(&row.id));
                    let grant = grants.for_contact(&row.id);
                    let d = self.decide(
                        p,
                        Action::ReadContact,
                        &contact_facts(row, reached, grant),
                        Some(&tenant.facts),
                        Some(purpose),
                    );
                    if !d.allowed {
                        continue;
                    }
                    if record.grant_id.is_none() {
                        record.grant_id = grant.map(|g| g.id.clone());
                    }
                    if let Some(wanted) = &wanted {
                        if d.fields.get(FieldClass::ContactIdentity) != Visibility::Reveal {
                            continue;
                        }
                        let Some(ct) = row.email.as_deref() else {
                            continue;
                        };
                        // The index collides by design: confirm on the decrypted value (an
                        // e-mail sealed under a lost key version confirms nothing).
                        let Some(email) = shape::open_readable(ring, KIND, &row.id, "email", ct)?
                        else {
                            continue;
                        };
                        if normalise_email(&email) != *wanted {
                            continue;
                        }
                    }
                    record.records.push(row.id.clone());
                    items.push(shape::disclose(
                        &mut record,
                        shape::contact(ring, row, &d.fields)?,
                    ));
                }
                Ok((record, items))
            })
            .await?;
        self.audit.append(record).await?;
        Ok(Page { items, next_cursor })
    }
}

fn present_fields(input: &ContactInput) -> Vec<&'static str> {
    let mut fields = Vec::new();
    for (name, present) in [
        ("name", input.name.is_some()),
        ("email", input.email.is_some()),
        ("phone", input.phone.is_some()),
        ("address", input.address.is_some()),
        ("notes", input.notes.is_some()),
    ] {
        if present {
            fields.push(name);
        }
    }
    fields
}
