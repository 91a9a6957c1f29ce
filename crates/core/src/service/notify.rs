//! Lockbox notifications: an outbox written in the same transaction as the change it reports,
//! listed in the API and delivered as Standard Webhooks by a background job. Bodies carry ids and
//! codes only. A delivery failure never touches an access decision: decisions never wait for it.

use serde_json::json;
use strongroom_crypto::{webhook_secret_text, webhook_signature};
use strongroom_policy::{Action, ResourceFacts, ResourceKind, Role};
use strongroom_store::{
    AccessRequestRow, Mutation, NotificationRow, TenantScope, WebhookSecretRow,
};

use super::tenants::valid_webhook_url;
use crate::access::{Principal, RequestContext};
use crate::audit::ResourceRef;
use crate::clock::rfc3339;
use crate::error::{ServiceError, ServiceResult};
use crate::model::lockbox::{Delivery, Notification, WebhookSecret};
use crate::model::{Page, PageRequest};
use crate::{TenantState, Vault, new_id, shape};

const SECRET_KIND: &str = "webhook_secret";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotificationKind {
    RequestCreated,
    BreakGlass,
    Expiring,
    Revoked,
    Reviewed,
    /// A customer account of the tenant will be suspended for inactivity soon.
    InactivityWarning,
    /// A customer account of the tenant was suspended for inactivity.
    InactivitySuspended,
    /// The breach watch opened an incident about the tenant.
    IncidentOpened,
    /// A security officer closed it.
    IncidentClosed,
}

impl NotificationKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::RequestCreated => "access_request.created",
            Self::BreakGlass => "grant.break_glass",
            Self::Expiring => "grant.expiring",
            Self::Revoked => "grant.revoked",
            Self::Reviewed => "grant.break_glass_reviewed",
            Self::InactivityWarning => "user.inactivity_warning",
            Self::InactivitySuspended => "user.suspended_inactive",
            Self::IncidentOpened => "incident.opened",
            Self::IncidentClosed => "incident.closed",
        }
    }
}

/// Retry delay after `attempts` failed attempts: base × 2^(attempts − 1), capped at one hour.
pub(crate) fn backoff_ms(base_ms: u64, attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(30);
    base_ms.saturating_mul(1u64 << exp).min(60 * 60 * 1000)
}

/// One webhook to send now: everything the sender needs, signed.
pub struct WebhookDelivery {
    pub notification_id: String,
    pub url: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
    attempts: i64,
}

/// How long a notification waits when this instance cannot open its tenant's webhook secret.
const KEYS_UNAVAILABLE_RETRY_MS: i64 = 60_000;

impl std::fmt::Debug for WebhookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDelivery")
            .field("notification_id", &self.notification_id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

fn tenant_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "tenant",
        id: Some(id.to_owned()),
    })
}

impl Vault {
    /// The outbox row for one lockbox event; queued for delivery when the tenant has an endpoint.
    pub(crate) fn notification(
        &self,
        tenant: &TenantState,
        kind: NotificationKind,
        row: &AccessRequestRow,
        now: i64,
    ) -> ServiceResult<Mutation> {
        let data = json!({
            "tenant_id": row.tenant_id,
            "access_request_id": row.id,
            "case_id": row.case_id,
            "requester_id": row.requester_id,
            "purpose": row.purpose,
            "field_classes": row.field_classes.split(',').collect::<Vec<_>>(),
            "break_glass": row.break_glass,
            "ends_at": row.ends_at.map(rfc3339),
        });
        self.outbox_row(tenant, kind, data, Some(row.id.clone()), now)
    }

    /// The outbox row for one event of `tenant`; `data` holds ids and codes only.
    pub(crate) fn outbox_row(
        &self,
        tenant: &TenantState,
        kind: NotificationKind,
        data: serde_json::Value,
        access_request_id: Option<String>,
        now: i64,
    ) -> ServiceResult<Mutation> {
        let id = format!("msg_{}", new_id());
        let body = json!({
            "type": kind.as_str(),
            "timestamp": rfc3339(now),
            "data": data,
        });
        let endpoint = tenant.instructions.webhook_url.is_some();
        Ok(Mutation::InsertNotification(NotificationRow {
            id,
            tenant_id: tenant.row.id.clone(),
            kind: kind.as_str().into(),
            access_request_id,
            body: serde_json::to_string(&body)
                .map_err(|_| ServiceError::internal("notification encoding"))?,
            created_at: now,
            delivery: if endpoint { "pending" } else { "no_endpoint" }.into(),
            attempts: 0,
            next_attempt_at: endpoint.then_some(now),
            last_attempt_at: None,
            last_status: None,
            delivered_at: None,
        }))
    }

    /// The tenant's notifications, newest first (its admins).
    pub async fn notifications(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        page: &PageRequest,
    ) -> ServiceResult<Page<Notification>> {
        let mut record = self.record(
            p,
            ctx,
            "notification.list",
            Some(tenant_id),
            tenant_ref(tenant_id),
        );
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let resource =
            ResourceFacts::new(ResourceKind::AuditLog, "log", Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::ReadTenantAccessLog,
            &resource,
            Some(&tenant.facts),
            ctx.purpose,
        );
        self.enforce(&mut record, &decision).await?;
        let rows = self
            .store
            .notifications(
                &TenantScope::new(tenant_id),
                page.cursor.as_deref(),
                page.limit,
            )
            .await?;
        self.audit.append(record).await?;
        let items = rows
            .iter()
            .map(|n| Notification {
                id: n.id.clone(),
                kind: n.kind.clone(),
                access_request_id: n.access_request_id.clone(),
                created_at: rfc3339(n.created_at),
                payload: serde_json::from_str(&n.body).unwrap_or_default(),
                delivery: Delivery {
                    state: n.delivery.clone(),
                    attempts: n.attempts,
                    last_attempt_at: n.last_attempt_at.map(rfc3339),
                    last_status: n.last_status,
                    next_attempt_at: n.next_attempt_at.map(rfc3339),
                    delivered_at: n.delivered_at.map(rfc3339),
                },
            })
            .collect();
        let next_cursor = super::next_cursor(&rows, page.limit, |n| n.id.clone());
        Ok(Page { items, next_cursor })
    }

    /// The tenant's webhook secret (its admins only): `rotate` makes a new one, as does the first
    /// request. Stored sealed with the tenant's keys, since the server must sign with it.
    pub async fn webhook_secret(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        rotate: bool,
    ) -> ServiceResult<WebhookSecret> {
        let action = if rotate {
            "webhook_secret.rotate"
        } else {
            "webhook_secret.read"
        };
        let mut record = self.record(p, ctx, action, Some(tenant_id), tenant_ref(tenant_id));
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let resource =
            ResourceFacts::new(ResourceKind::Tenant, tenant_id, Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::UpdateTenantInstructions,
            &resource,
            Some(&tenant.facts),
            ctx.purpose,
        );
        self.enforce(&mut record, &decision).await?;
        // The secret is the customer's: the platform administrator may set instructions but not
        // read it.
        if !p.roles.contains(&Role::TenantAdmin) {
            return Err(self
                .refuse(record, strongroom_policy::Denial::Forbidden, Vec::new())
                .await);
        }
        let scope = TenantScope::new(tenant_id);
        let existing = self.store.webhook_secret(&scope).await?;
        let replaces = existing.as_ref().map(|row| row.secret.clone());
        if let (Some(row), false) = (existing, rotate) {
            let key = self
                .keys
                .with_keyring(self.store.as_ref(), tenant_id, |ring| {
                    shape::open_bytes(ring, SECRET_KIND, tenant_id, "secret", &row.secret)
                })
                .await?;
            self.audit.append(record).await?;
            return Ok(WebhookSecret {
                secret: webhook_secret_text(&key).to_string(),
                created_at: rfc3339(row.created_at),
            });
        }
        let key =
            strongroom_crypto::new_webhook_key().map_err(|_| ServiceError::internal("random"))?;
        let now = self.now();
        let ring = self.keys.keyring(self.store.as_ref(), tenant_id).await?;
        let sealed = shape::seal_bytes(&ring, SECRET_KIND, tenant_id, "secret", key.as_ref())?;
        let not_applied = if rotate {
            "webhook_secret.rotate_not_applied"
        } else {
            "webhook_secret.read_not_applied"
        };
        self.commit_attempt(
            vec![record],
            vec![Mutation::SetWebhookSecret {
                row: WebhookSecretRow {
                    tenant_id: tenant_id.to_owned(),
                    secret: sealed,
                    created_at: now,
                },
                replaces,
            }],
            (not_applied, "changed_meanwhile"),
        )
        .await?;
        Ok(WebhookSecret {
            secret: webhook_secret_text(key.as_ref()).to_string(),
            created_at: rfc3339(now),
        })
    }

    /// Background job: queue a warning for each grant ending within the warning window.
    pub async fn notify_expiring_grants(&self) -> ServiceResult<usize> {
        let now = self.now();
        let window = i64::try_from(self.settings.grant_expiry_warning_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let rows = self
            .store
            .grants_ending(now, now.saturating_add(window))
            .await?;
        let mut mutations = Vec::new();
        for row in &rows {
            let Some(tenant) = self.tenant_state(&row.tenant_id).await? else {
                continue;
            };
            mutations.push(Mutation::MarkExpiryNotified {
                id: row.id.clone(),
                at: now,
            });
            mutations.push(self.notification(&tenant, NotificationKind::Expiring, row, now)?);
        }
        if !mutations.is_empty() {
            self.audit.commit(Vec::new(), mutations).await?;
        }
        Ok(rows.len())
    }

    /// Background job: the webhooks due now, signed. Notifications whose tenant has since lost
    /// its endpoint or secret are marked failed.
    pub async fn due_webhooks(&self, limit: u32) -> ServiceResult<Vec<WebhookDelivery>> {
        let now = self.now();
        let mut out = Vec::new();
        for n in self.store.due_notifications(now, limit).await? {
            let scope = TenantScope::new(&n.tenant_id);
            let url = self
                .tenant_state(&n.tenant_id)
                .await?
                .and_then(|t| t.instructions.webhook_url.clone())
                // One stored under an older, looser check is not called.
                .filter(|url| valid_webhook_url(url, self.settings.webhook_allow_loopback_http));
            let secret = self.store.webhook_secret(&scope).await?;
            let (Some(url), Some(secret)) = (url, secret) else {
                self.audit
                    .commit(
                        Vec::new(),
                        vec![Mutation::RecordDeliveryAttempt {
                            id: n.id.clone(),
                            delivered: false,
                            status: None,
                            at: now,
                            next_attempt_at: None,
                        }],
                    )
                    .await?;
                continue;
            };
            // A tenant whose secret cannot be opened must not stop every other tenant's deliveries.
            let key = self
                .keys
                .with_keyring(self.store.as_ref(), &n.tenant_id, |ring| {
                    shape::open_bytes(ring, SECRET_KIND, &n.tenant_id, "secret", &secret.secret)
                })
                .await;
            let key = match key {
                Ok(key) => key,
                Err(err) => {
                    tracing::error!(tenant_id = %n.tenant_id, error = %err.message, "webhook secret unavailable");
                    // Put off, not counted (what failed is this instance's keys, which another
                    // instance or a restart may hold): left due, this tenant's rows would fill
                    // every batch ahead of the other tenants'.
                    self.audit
                        .commit(
                            Vec::new(),
                            vec![Mutation::PostponeDelivery {
                                id: n.id.clone(),
                                until: now.saturating_add(KEYS_UNAVAILABLE_RETRY_MS),
                            }],
                        )
                        .await?;
                    continue;
                }
            };
            let timestamp = now / 1000;
            out.push(WebhookDelivery {
                signature: webhook_signature(&key, &n.id, timestamp, n.body.as_bytes()),
                notification_id: n.id,
                url,
                timestamp,
                body: n.body,
                attempts: n.attempts,
            });
        }
        Ok(out)
    }

    /// Background job: the outcome of one attempt (`status` None: no answer). A 2xx delivers;
    /// anything else retries with exponential backoff until the attempts run out.
    pub async fn webhook_attempted(
        &self,
        delivery: &WebhookDelivery,
        status: Option<u16>,
    ) -> ServiceResult<()> {
        let now = self.now();
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let attempts = u32::try_from(delivery.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let next_attempt_at =
            (!delivered && attempts < self.settings.webhook_max_attempts).then(|| {
                let delay = backoff_ms(self.settings.webhook_backoff_base_ms, attempts);
                now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
            });
        self.audit
            .commit(
                Vec::new(),
                vec![Mutation::RecordDeliveryAttempt {
                    id: delivery.notification_id.clone(),
                    delivered,
                    status: status.map(i64::from),
                    at: now,
                    next_attempt_at,
                }],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1000, 1), 1000);
        assert_eq!(backoff_ms(1000, 2), 2000);
        assert_eq!(backoff_ms(1000, 5), 16_000);
        assert_eq!(backoff_ms(1000, 40), 60 * 60 * 1000);
        assert_eq!(backoff_ms(u64::MAX, 3), 60 * 60 * 1000);
    }
}
