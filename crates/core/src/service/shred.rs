//! Deletion of a tenant by crypto-shredding, and the signed deletion certificate.
//!
//! One audit entry and one store transaction destroy the tenant's wrapped keys and remove every
//! row holding its id; caches are evicted and the write-ahead journal is truncated. The
//! certificate is a C2SP signed note by the audit log's Ed25519 key whose body is a fixed first
//! line and one line of compact JSON naming the tenant, the time, what was destroyed, and the
//! deletion entry with its inclusion proof against a signed checkpoint that covers it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use strongroom_policy::{Action, ResourceFacts, ResourceKind};
use strongroom_store::{Mutation, TenantScope};

use crate::Vault;
use crate::access::{Principal, RequestContext, is_reference};
use crate::audit::ResourceRef;
use crate::clock::rfc3339;
use crate::error::{ServiceError, ServiceResult};

/// The first line of a certificate's signed body.
pub const CERTIFICATE_HEADER: &str = "strongroom deletion certificate v1";
/// How long a deletion waits for a signed checkpoint covering its entry.
/// The signer runs every 200 ms; this covers a loaded machine with a wide margin.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

/// The answer to `DELETE /v1/tenants/{id}`.
#[derive(Debug, Serialize)]
pub struct DeletionCertificate {
    /// The signed note: verify it with the log's verifier key (`GET /v1/audit/verifier-key`).
    pub certificate: String,
    /// The signed statement, parsed (the same JSON as the note's second line).
    pub statement: serde_json::Value,
    /// The signed checkpoint the inclusion proof is against.
    pub checkpoint: String,
    pub verifier_key: String,
}

#[derive(Serialize)]
struct Statement<'a> {
    tenant_id: &'a str,
    deleted_at: String,
    deleted_by: &'a str,
    request_reference: &'a str,
    destroyed: Destroyed,
    audit: AuditEvidence,
}

#[derive(Serialize)]
struct Destroyed {
    key_versions: Vec<u32>,
    rows: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct AuditEvidence {
    log_origin: String,
    index: u64,
    /// Base64 of the deletion entry's exact leaf bytes.
    entry: String,
    checkpoint_size: u64,
    checkpoint_root: String,
    inclusion_proof: Vec<String>,
}

impl Vault {
    /// Crypto-shreds a tenant and returns the signed deletion certificate.
    pub async fn delete_tenant(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        request_reference: &str,
    ) -> ServiceResult<DeletionCertificate> {
        let resource_ref = Some(ResourceRef {
            kind: "tenant",
            id: Some(tenant_id.to_owned()),
        });
        let mut record = self.record(p, ctx, "tenant.delete", Some(tenant_id), resource_ref);
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let resource =
            ResourceFacts::new(ResourceKind::Tenant, tenant_id, Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::DeleteTenant,
            &resource,
            Some(&tenant.facts),
            ctx.purpose,
        );
        self.enforce(&mut record, &decision).await?;
        if !is_reference(request_reference) {
            return Err(ServiceError::validation(
                "request_reference must be 3-64 letters, digits or -._:/ with a digit among them (a \
                 reference, not text)",
                &["request_reference"],
            ));
        }
        let users = self.tenant_user_ids(tenant_id).await?;
        record.justification = Some(format!("request_reference:{request_reference}"));
        record.reason = Some("tenant_shredded");
        let now = self.now();
        let index = self
            .commit_attempt(
                vec![record],
                vec![Mutation::ShredTenant {
                    scope: TenantScope::new(tenant_id),
                    request_ref: request_reference.to_owned(),
                    at: now,
                }],
                ("tenant.delete_not_applied", "tenant_gone"),
            )
            .await?;
        self.evict_tenant(tenant_id, &users);
        self.purge_journal().await;
        self.certify(p, tenant_id, index).await
    }

    /// Truncates the write-ahead journal so old page images of the keys leave the disk. A reader
    /// in the middle of a transaction can hold it up (the store waits for it as long as its busy
    /// timeout): then this keeps retrying in the background, since nothing else truncates the
    /// journal, rather than hold the request.
    async fn purge_journal(&self) {
        if self.store.purge_journal().await.unwrap_or(false) {
            return;
        }
        tracing::warn!(
            "journal not truncated after a tenant deletion (readers kept it busy); retrying in \
             the background"
        );
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            const EVERY: Duration = Duration::from_secs(5);
            for _ in 0..720 {
                tokio::time::sleep(EVERY).await;
                if store.purge_journal().await.unwrap_or(false) {
                    tracing::info!("journal truncated after a tenant deletion");
                    return;
                }
            }
            tracing::error!(
                "journal still not truncated an hour after a tenant deletion; old page images \
                 of the deleted keys may remain in it until the next full checkpoint"
            );
        });
    }

    async fn tenant_user_ids(&self, tenant_id: &str) -> ServiceResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.users(after.as_deref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            ids.extend(
                page.iter()
                    .filter(|u| u.tenant_id.as_deref() == Some(tenant_id))
                    .map(|u| u.id.clone()),
            );
        }
        Ok(ids)
    }

    /// Forgets everything of the tenant held in memory: keys, tenant, users, sessions, API keys.
    fn evict_tenant(&self, tenant_id: &str, users: &[String]) {
        self.keys.shred(tenant_id);
        self.forget_tenant(tenant_id);
        for user in users {
            self.sessions.revoke_user(user);
            self.api_keys.revoke_user(user);
            self.forget_user(user);
        }
        self.users
            .invalidate_where(|u| u.tenant_id.as_deref() == Some(tenant_id));
    }

    async fn certify(
        &self,
        p: &Principal,
        tenant_id: &str,
        index: u64,
    ) -> ServiceResult<DeletionCertificate> {
        let shred = self
            .store
            .tenant_shred(tenant_id)
            .await?
            .ok_or_else(|| ServiceError::internal("deletion tombstone missing"))?;
        // The deletion is committed: from here no failure may say "nothing changed" (503).
        let (checkpoint_note, checkpoint) = self
            .audit
            .checkpoint_covering(index, CHECKPOINT_WAIT)
            .await
            .map_err(|_| {
                ServiceError::internal(
                    "the tenant is deleted, but no checkpoint covered the deletion in time for a certificate",
                )
            })?;
        let proof = self.audit.inclusion_proof(index, checkpoint.size).await?;
        let entry = self
            .audit
            .entries(index, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::internal("deletion entry missing"))?;
        let key_versions = shred
            .key_versions
            .split(',')
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ServiceError::internal("tombstone key versions"))?;
        let mut rows = serde_json::Map::new();
        for pair in shred.row_counts.split(',').filter(|v| !v.is_empty()) {
            let (kind, count) = pair
                .split_once('=')
                .and_then(|(k, n)| Some((k, n.parse::<u64>().ok()?)))
                .ok_or_else(|| ServiceError::internal("tombstone row counts"))?;
            rows.insert(kind.to_owned(), count.into());
        }
        let statement = Statement {
            tenant_id,
            deleted_at: rfc3339(shred.deleted_at),
            deleted_by: &p.user_id,
            request_reference: &shred.request_ref,
            destroyed: Destroyed { key_versions, rows },
            audit: AuditEvidence {
                log_origin: self.audit.origin().to_owned(),
                index,
                entry: STANDARD.encode(&entry.entry),
                checkpoint_size: checkpoint.size,
                checkpoint_root: STANDARD.encode(checkpoint.root),
                inclusion_proof: proof.hashes,
            },
        };
        let json = serde_json::to_string(&statement)
            .map_err(|_| ServiceError::internal("certificate encoding"))?;
        let certificate = self
            .audit
            .sign_statement(&format!("{CERTIFICATE_HEADER}\n{json}\n"))?;
        Ok(DeletionCertificate {
            certificate,
            statement: serde_json::from_str(&json)
                .map_err(|_| ServiceError::internal("certificate encoding"))?,
            checkpoint: checkpoint_note.to_string(),
            verifier_key: self.audit.verifier_key().to_owned(),
        })
    }
}
