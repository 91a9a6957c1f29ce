//! Tenant key rotation with online re-encryption, key retirement and root-key rotation.
//!
//! Rotation adds a key version that every new write uses at once (the cached keyring is dropped).
//! A background job then moves older ciphertexts to it in small batches while the server keeps
//! serving: each row is rewritten only if its ciphertexts are still the ones read (a concurrent
//! user write wins). Progress is never kept in memory: a ciphertext's header names its version,
//! so after a crash the job simply finds what is left. A version no ciphertext names any more is
//! retired (its wrapped key deleted) after a grace period that outlasts any request that may still
//! hold the old keyring.

use std::collections::BTreeMap;
use std::time::Duration;

use strongroom_crypto::{FieldContext, RootKey, TenantKeyring, normalise_email};
use strongroom_policy::{Action, ResourceFacts, ResourceKind};
use strongroom_store::{CipherRow, CipherTable, Mutation, TenantScope};

use crate::Vault;
use crate::access::{Principal, RequestContext};
use crate::audit::{AuditRecord, ResourceRef};
use crate::auth::totp::SEAL_PURPOSE;
use crate::clock::rfc3339;
use crate::error::{ServiceError, ServiceResult};
use crate::model::keys::{KeyVersionStatus, ReencryptReport, RootRotationReport, TenantKeyStatus};

fn tenant_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "tenant",
        id: Some(id.to_owned()),
    })
}

/// The record kind bound into a table's ciphertexts (see the services that write them).
fn record_kind(table: CipherTable) -> &'static str {
    match table {
        CipherTable::Contacts => "contact",
        CipherTable::Cases => "case",
        CipherTable::Comments => "comment",
        CipherTable::Attachments => "attachment",
        CipherTable::AccessRequests => "access_request",
        CipherTable::WebhookSecrets => "webhook_secret",
    }
}

/// A row's new cells and, for a contact whose e-mail moved, its new blind index.
type Reencrypted = (Vec<Option<Vec<u8>>>, Option<Vec<u8>>);

/// The row's cells under the current version, and the contact's new e-mail index. `None` when
/// nothing needed changing.
fn reencrypt_row(
    ring: &TenantKeyring,
    table: CipherTable,
    row: &CipherRow,
) -> ServiceResult<Option<Reencrypted>> {
    let current = ring.current_version();
    let mut changed = false;
    let mut cells = Vec::with_capacity(row.cells.len());
    let mut email_index = None;
    for (field, cell) in table.columns().iter().zip(&row.cells) {
        let Some(ct) = cell else {
            cells.push(None);
            continue;
        };
        let version = TenantKeyring::ciphertext_version(ct)
            .map_err(|_| ServiceError::internal("ciphertext header unreadable"))?;
        if version == current {
            cells.push(Some(ct.clone()));
            continue;
        }
        let ctx = FieldContext {
            kind: record_kind(table),
            record_id: &row.id,
            field,
        };
        let attachment = table.attachment_sealed(field);
        let plain = if attachment {
            ring.decrypt_attachment(&ctx, ct)
        } else {
            ring.decrypt_field(&ctx, ct)
        }
        .map_err(|_| ServiceError::internal("field does not decrypt (integrity failure)"))?;
        if table == CipherTable::Contacts && *field == "email" {
            // The blind index is keyed per version: it moves with the e-mail ciphertext.
            let text = std::str::from_utf8(&plain)
                .map_err(|_| ServiceError::internal("field is not UTF-8"))?;
            email_index = Some(
                ring.blind_index(
                    record_kind(table),
                    "email",
                    normalise_email(text).as_bytes(),
                )
                .map_err(|_| ServiceError::internal("blind index"))?,
            );
        }
        let sealed = if attachment {
            ring.encrypt_attachment(&ctx, &plain)
        } else {
            ring.encrypt_field(&ctx, &plain)
        };
        cells.push(Some(
            sealed.map_err(|_| ServiceError::internal("field encryption failed"))?,
        ));
        changed = true;
    }
    Ok(changed.then_some((cells, email_index)))
}

impl Vault {
    /// `POST /v1/tenants/{id}/keys/rotate`.
    pub async fn rotate_tenant_keys(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
    ) -> ServiceResult<TenantKeyStatus> {
        let mut record = self.record(
            p,
            ctx,
            "tenant.keys.rotate",
            Some(tenant_id),
            tenant_ref(tenant_id),
        );
        self.key_gate(&mut record, p, ctx, tenant_id).await?;
        self.add_key_version(record, tenant_id).await?;
        self.key_status(tenant_id).await
    }

    /// `GET /v1/tenants/{id}/keys`: versions, their state and the ciphertexts each still holds.
    pub async fn tenant_key_status(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
    ) -> ServiceResult<TenantKeyStatus> {
        let mut record = self.record(
            p,
            ctx,
            "tenant.keys.read",
            Some(tenant_id),
            tenant_ref(tenant_id),
        );
        self.key_gate(&mut record, p, ctx, tenant_id).await?;
        self.audit.append(record).await?;
        self.key_status(tenant_id).await
    }

    async fn key_gate(
        &self,
        record: &mut AuditRecord,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
    ) -> ServiceResult<()> {
        let tenant = self.tenant_for(record, tenant_id).await?;
        let resource =
            ResourceFacts::new(ResourceKind::Tenant, tenant_id, Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::ManageTenantKeys,
            &resource,
            Some(&tenant.facts),
            ctx.purpose,
        );
        self.enforce(record, &decision).await
    }

    /// `strongroom keys rotate` (server stopped).
    pub async fn rotate_tenant_keys_unattended(
        &self,
        tenant_id: &str,
        request_id: &str,
    ) -> ServiceResult<TenantKeyStatus> {
        if self.tenant_state(tenant_id).await?.is_none() {
            return Err(ServiceError::not_found());
        }
        let mut record = AuditRecord::new("tenant.keys.rotate", request_id);
        record.tenant_id = Some(tenant_id.to_owned());
        record.resource = tenant_ref(tenant_id);
        self.add_key_version(record, tenant_id).await?;
        self.key_status(tenant_id).await
    }

    async fn add_key_version(&self, record: AuditRecord, tenant_id: &str) -> ServiceResult<u32> {
        let scope = TenantScope::new(tenant_id);
        let live = self.store.tenant_keys(&scope).await?;
        let retired = self.store.retired_tenant_keys(&scope).await?;
        let lost = self.store.lost_tenant_keys(&scope).await?;
        // Never reuse a retired or lost version number: their ciphertexts, if any survived, must
        // not meet new keys.
        let top = live
            .iter()
            .map(|k| k.version)
            .chain(retired.iter().map(|k| k.version))
            .chain(lost)
            .max()
            .unwrap_or(0);
        let next = u32::try_from(top.saturating_add(1))
            .map_err(|_| ServiceError::internal("key version out of range"))?;
        let row = self.keys.new_key_version(tenant_id, next, self.now())?;
        // A concurrent rotation to the same number fails on the primary key: one wins, and the
        // other is recorded as not applied.
        self.commit_attempt(
            vec![record],
            vec![self.keys.root_guard(), Mutation::InsertTenantKey(row)],
            ("tenant.keys.rotate_not_applied", "changed_meanwhile"),
        )
        .await?;
        self.keys.forget(tenant_id);
        self.reencrypt_wakeup.notify_one();
        Ok(next)
    }

    /// The key status without a caller (CLI; the data dir is locked by the operator's command).
    pub async fn tenant_key_status_unattended(
        &self,
        tenant_id: &str,
    ) -> ServiceResult<TenantKeyStatus> {
        self.key_status(tenant_id).await
    }

    async fn key_status(&self, tenant_id: &str) -> ServiceResult<TenantKeyStatus> {
        let scope = TenantScope::new(tenant_id);
        let live = self.store.tenant_keys(&scope).await?;
        let retired = self.store.retired_tenant_keys(&scope).await?;
        let usage: BTreeMap<i64, i64> = self
            .store
            .key_usage(&scope)
            .await?
            .into_iter()
            .map(|u| (u.version, u.ciphertexts))
            .collect();
        let current = live.iter().map(|k| k.version).max().unwrap_or(0);
        let version = |v: i64| {
            u32::try_from(v).map_err(|_| ServiceError::internal("key version out of range"))
        };
        let mut versions = Vec::with_capacity(live.len() + retired.len());
        for k in &live {
            versions.push(KeyVersionStatus {
                version: version(k.version)?,
                state: if k.version == current {
                    "current"
                } else {
                    "draining"
                },
                ciphertexts: usage.get(&k.version).copied().unwrap_or(0),
                created_at: rfc3339(k.created_at),
                retired_at: None,
            });
        }
        for k in &retired {
            versions.push(KeyVersionStatus {
                version: version(k.version)?,
                state: "retired",
                ciphertexts: usage.get(&k.version).copied().unwrap_or(0),
                created_at: rfc3339(k.created_at),
                retired_at: Some(rfc3339(k.retired_at)),
            });
        }
        versions.sort_by_key(|v| v.version);
        Ok(TenantKeyStatus {
            tenant_id: tenant_id.to_owned(),
            current_version: version(current)?,
            reencryption_pending: usage
                .iter()
                .filter(|(v, _)| **v != current)
                .map(|(_, n)| *n)
                .sum(),
            versions,
        })
    }

    /// Waits until a rotation asks for re-encryption, or `timeout` passes.
    pub async fn reencryption_requested(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.reencrypt_wakeup.notified()).await;
    }

    /// Re-encrypts every tenant that has more than one key version; what the background job runs.
    pub async fn reencrypt_all(&self, request_id: &str) -> ServiceResult<ReencryptReport> {
        let mut total = ReencryptReport::default();
        let mut after: Option<String> = None;
        loop {
            let tenants = self.store.tenants(after.as_deref(), 200).await?;
            let Some(last) = tenants.last() else {
                break;
            };
            after = Some(last.id.clone());
            for t in &tenants {
                let scope = TenantScope::new(t.id.as_str());
                if self.store.tenant_keys(&scope).await?.len() < 2 {
                    continue;
                }
                // One tenant whose keys fail must not hold up every other tenant's rotation.
                match self.reencrypt_tenant(&t.id, request_id).await {
                    Ok(report) => {
                        total.rows_reencrypted += report.rows_reencrypted;
                        total.versions_retired.extend(report.versions_retired);
                    }
                    Err(err) => {
                        tracing::error!(tenant_id = %t.id, error = %err.message, "re-encryption failed");
                    }
                }
            }
        }
        Ok(total)
    }

    /// One pass over a tenant's ciphertexts, then retirement of versions nothing uses.
    pub async fn reencrypt_tenant(
        &self,
        tenant_id: &str,
        request_id: &str,
    ) -> ServiceResult<ReencryptReport> {
        let scope = TenantScope::new(tenant_id);
        // Another instance may have rotated since this one cached the keyring: moving records
        // to an older version than theirs would undo part of that rotation.
        let ring = self
            .keys
            .current_keyring(self.store.as_ref(), tenant_id)
            .await?;
        let current = i64::from(ring.current_version());
        let configured_batch = self.settings.reencrypt_batch_size.max(1);
        let pause = Duration::from_millis(self.settings.reencrypt_batch_pause_ms);
        let mut report = ReencryptReport::default();
        for table in CipherTable::ALL {
            let batch = configured_batch.min(table.max_batch());
            let mut after: Option<String> = None;
            loop {
                let rows = self
                    .store
                    .stale_ciphertexts(&scope, table, current, after.as_deref(), batch)
                    .await?;
                let Some(last) = rows.last() else {
                    break;
                };
                after = Some(last.id.clone());
                let mut mutations = Vec::with_capacity(rows.len());
                let mut ids = Vec::with_capacity(rows.len());
                for row in &rows {
                    match reencrypt_row(&ring, table, row) {
                        Ok(Some((new, email_index))) => {
                            ids.push(row.id.clone());
                            mutations.push(Mutation::ReencryptRow {
                                table,
                                scope: scope.clone(),
                                id: row.id.clone(),
                                old: row.cells.clone(),
                                new,
                                email_index,
                            });
                        }
                        Ok(None) => {}
                        // Left as it is: its version is then never retired (fail closed).
                        Err(_) => tracing::error!(
                            tenant_id,
                            table = table.table(),
                            row = %row.id,
                            "a ciphertext does not re-encrypt"
                        ),
                    }
                }
                if !mutations.is_empty() {
                    let mut record = AuditRecord::new("tenant.keys.reencrypt", request_id);
                    record.tenant_id = Some(tenant_id.to_owned());
                    record.resource = tenant_ref(tenant_id);
                    record.records = ids;
                    report.rows_reencrypted += mutations.len() as u64;
                    self.audit.commit(vec![record], mutations).await?;
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        report.versions_retired = self.retire_unused(tenant_id, request_id).await?;
        Ok(report)
    }

    /// Retires older versions no ciphertext names, once the current one is older than the grace.
    async fn retire_unused(&self, tenant_id: &str, request_id: &str) -> ServiceResult<Vec<u32>> {
        let scope = TenantScope::new(tenant_id);
        let live = self.store.tenant_keys(&scope).await?;
        let Some(newest) = live.iter().max_by_key(|k| k.version) else {
            return Ok(Vec::new());
        };
        let grace_ms = i64::try_from(self.settings.key_retire_grace_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        if self.now().saturating_sub(newest.created_at) < grace_ms {
            return Ok(Vec::new());
        }
        let in_use: BTreeMap<i64, i64> = self
            .store
            .key_usage(&scope)
            .await?
            .into_iter()
            .map(|u| (u.version, u.ciphertexts))
            .collect();
        let mut retired = Vec::new();
        for k in live.iter().filter(|k| k.version < newest.version) {
            if in_use.get(&k.version).copied().unwrap_or(0) > 0 {
                continue;
            }
            let mut record = AuditRecord::new("tenant.keys.retire", request_id);
            record.tenant_id = Some(tenant_id.to_owned());
            record.resource = tenant_ref(tenant_id);
            let mutation = Mutation::RetireTenantKey {
                scope: scope.clone(),
                version: k.version,
                at: self.now(),
            };
            let attempt = self.commit_attempt(
                vec![record],
                vec![mutation],
                ("tenant.keys.retire_not_applied", "in_use_again"),
            );
            match attempt.await {
                Ok(_) => {
                    if let Ok(v) = u32::try_from(k.version) {
                        retired.push(v);
                    }
                }
                // Used again in the meantime: a later pass moves it first.
                Err(e) if e.code == crate::ErrorCode::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        if !retired.is_empty() {
            self.keys.forget(tenant_id);
        }
        Ok(retired)
    }

    /// Rewraps every tenant key and re-seals every user secret under `new_root`, in one
    /// transaction: afterwards only `new_root` opens the data. The caller swaps the key file.
    ///
    /// Other instances on a shared store may add or change keys and second factors meanwhile:
    /// the commit applies only if every one is still as read and none was added (one left under
    /// the old root would never open again), and is read and tried again a few times if not.
    pub async fn rotate_root_key(
        &self,
        new_root: &RootKey,
        request_id: &str,
    ) -> ServiceResult<RootRotationReport> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            let keys = self.store.all_tenant_keys().await?;
            let totp = self.store.all_totp().await?;
            let mut mutations = Vec::with_capacity(keys.len() + totp.len() + 2);
            mutations.push(self.keys.root_replacement(new_root));
            mutations.push(Mutation::RequireRootSealedCounts {
                tenant_keys: i64::try_from(keys.len()).unwrap_or(i64::MAX),
                user_secrets: i64::try_from(totp.len()).unwrap_or(i64::MAX),
            });
            for k in &keys {
                mutations.push(Mutation::RewrapTenantKey {
                    tenant_id: k.tenant_id.clone(),
                    version: k.version,
                    was: k.wrapped.clone(),
                    wrapped: self.keys.rewrap(k, new_root)?,
                });
            }
            for t in &totp {
                mutations.push(Mutation::ResealTotp {
                    user_id: t.user_id.clone(),
                    was: t.secret.clone(),
                    secret: self.keys.reseal_user_secret(
                        &t.user_id,
                        SEAL_PURPOSE,
                        &t.secret,
                        new_root,
                    )?,
                });
            }
            let record = AuditRecord::new("keys.rotate_root", request_id);
            let committed = self
                .commit_attempt(
                    vec![record],
                    mutations,
                    ("keys.rotate_root_not_applied", "changed_meanwhile"),
                )
                .await;
            match committed {
                Ok(_) => {
                    return Ok(RootRotationReport {
                        tenant_keys_rewrapped: keys.len(),
                        user_secrets_resealed: totp.len(),
                    });
                }
                Err(err) if err.code == crate::ErrorCode::Conflict && attempt < ATTEMPTS => {
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}
