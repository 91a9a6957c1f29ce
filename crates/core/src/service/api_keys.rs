//! API keys for service principals.
//!
//! Each key belongs to its own service principal: a user row with explicit roles and tenant whose
//! password hash is unusable, so it can never log in, and to which the same policy, suspension and
//! role-change rules apply as to any user. Creating a key is creating that user (`create_staff_user`
//! or `create_customer_user`); listing reads users (`read_user`); revoking a key is
//! `revoke_credentials`. A key cannot create keys. A staff principal cannot acknowledge the
//! confidentiality agreement itself before its first use, so the administrator creating it
//! acknowledges on its behalf, recorded as its own audit entry.

use std::sync::Arc;

use strongroom_crypto::token_hash;
use strongroom_policy::{Action, Denial, ResourceFacts, ResourceKind, Role};
use strongroom_store::{ApiKeyEntry, ApiKeyRow, Mutation};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::CredentialRef;
use super::required_text;
use super::users::{join_roles, new_user_row, parse_role_list, user_ref};
use crate::access::{Principal, RequestContext, parse_roles};
use crate::audit::{AuditRecord, ResourceRef};
use crate::auth::api_key::{self, CachedKey};
use crate::auth::password::UNUSABLE_HASH;
use crate::clock::rfc3339;
use crate::error::{ServiceError, ServiceResult};
use crate::model::{ApiKey, CreatedApiKey, NewApiKey, Page, PageRequest};
use crate::{Vault, new_id};

/// Keys read per query when listing.
const KEY_BATCH: u32 = 200;

pub(super) fn key_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "api_key",
        id: Some(id.to_owned()),
    })
}

fn split_roles(roles: &str) -> Vec<String> {
    roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses the requested expiry; it must lie in the future and within `max_secs`.
fn expiry(value: Option<&str>, now: i64, max_secs: u64) -> Option<i64> {
    let at = OffsetDateTime::parse(value?.trim(), &Rfc3339).ok()?;
    let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?;
    let max_ms = i64::try_from(max_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    (ms > now && ms - now <= max_ms).then_some(ms)
}

fn view(entry: &ApiKeyEntry, now: i64) -> ApiKey {
    let k = &entry.key;
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if now >= k.expires_at {
        "expired"
    } else {
        "active"
    };
    ApiKey {
        id: k.id.clone(),
        name: k.name.clone(),
        user_id: k.user_id.clone(),
        created_by: k.created_by.clone(),
        roles: split_roles(&entry.roles),
        tenant_id: entry.tenant_id.clone(),
        status,
        created_at: rfc3339(k.created_at),
        expires_at: rfc3339(k.expires_at),
        last_used_at: k.last_used_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
    }
}

impl Vault {
    /// Refuses an API key anything that gives access (a key, a user, roles, a reactivation): a
    /// key could otherwise mint a password account that outlives it and its expiry.
    pub(crate) async fn refuse_minting_by_key(
        &self,
        p: &Principal,
        record: &AuditRecord,
    ) -> ServiceResult<()> {
        if p.via_api_key() {
            return Err(self
                .refuse(record.clone(), Denial::Forbidden, Vec::new())
                .await);
        }
        Ok(())
    }

    pub async fn create_api_key(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        input: NewApiKey,
    ) -> ServiceResult<CreatedApiKey> {
        let id = new_id();
        let principal_id = new_id();
        let mut record = self.record(
            p,
            ctx,
            "api_key.create",
            input.tenant_id.as_deref(),
            key_ref(&id),
        );
        self.refuse_minting_by_key(p, &record).await?;
        let now = self.now();
        let name = required_text(input.name.as_deref(), "name", 200);
        let roles = parse_role_list(input.roles.as_deref().unwrap_or_default());
        let expires_at = expiry(
            input.expires_at.as_deref(),
            now,
            self.settings.api_key_max_lifetime_secs,
        );
        let mut invalid = Vec::new();
        if name.is_err() {
            invalid.push("name");
        }
        if roles.is_err() {
            invalid.push("roles");
        }
        if expires_at.is_none() {
            invalid.push("expires_at");
        }
        let (Ok(name), Ok(roles), Some(expires_at)) = (name, roles, expires_at) else {
            return Err(ServiceError::validation(
                "name, roles and an expiry in the future within the allowed lifetime are required",
                &invalid,
            ));
        };
        let customer = roles.iter().any(Role::is_customer);
        let tenant = self
            .tenant_of_new_principal(&record, input.tenant_id.as_deref(), customer)
            .await?;
        let mut resource =
            ResourceFacts::new(ResourceKind::User, &principal_id, input.tenant_id.clone());
        resource.target_roles = roles.clone();
        let action = if customer {
            Action::CreateCustomerUser
        } else {
            Action::CreateStaffUser
        };
        let decision = self.decide(
            p,
            action,
            &resource,
            tenant.as_ref().map(|t| &t.facts),
            ctx.purpose,
        );
        self.enforce(&mut record, &decision).await?;

        let mut user = new_user_row(
            principal_id.clone(),
            format!("svc-{principal_id}"),
            name.clone(),
            UNUSABLE_HASH.to_owned(),
            join_roles(&roles),
            input.tenant_id.clone(),
            now,
        );
        let mut records = Vec::with_capacity(3);
        let mut created = self.record(
            p,
            ctx,
            "user.create",
            input.tenant_id.as_deref(),
            user_ref(&principal_id),
        );
        created.reason = Some("service_principal");
        created.policy_ids = record.policy_ids.clone();
        records.push(created);
        if !customer {
            user.confidentiality_version = Some(self.settings.confidentiality_version.clone());
            user.confidentiality_at = Some(now);
            let mut ack = self.record(
                p,
                ctx,
                "user.acknowledge_confidentiality",
                None,
                user_ref(&principal_id),
            );
            ack.reason = Some("on_behalf_of_service_principal");
            records.push(ack);
        }
        records.push(record);

        let key = api_key::generate()?;
        let row = ApiKeyRow {
            id: id.clone(),
            key_hash: token_hash(&key).to_vec(),
            user_id: principal_id.clone(),
            name: name.clone(),
            created_by: p.user_id.clone(),
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        self.audit
            .commit(
                records,
                vec![Mutation::InsertUser(user), Mutation::InsertApiKey(row)],
            )
            .await?;
        Ok(CreatedApiKey {
            id,
            name,
            user_id: principal_id,
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            tenant_id: input.tenant_id,
            expires_at: rfc3339(expires_at),
            created_at: rfc3339(now),
            key: key.to_string(),
        })
    }

    /// Keys whose principal the caller may read (customers: their own tenant's only).
    pub async fn api_keys(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> ServiceResult<Page<ApiKey>> {
        let mut record = self.record(p, ctx, "api_key.list", p.tenant_id.as_deref(), None);
        let customer = p.roles.iter().any(Role::is_customer);
        if customer && p.tenant_id.is_none() {
            self.audit.append(record).await?;
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let tenant_filter = if customer {
            p.tenant_id.as_deref()
        } else {
            None
        };
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let now = self.now();
        // Who may read a key is the policy's call, row by row, so pages are read until `limit`
        // keys are visible or none are left, and the cursor is the last key shown: a cursor
        // taken from the rows read would name keys the caller may not see.
        // Read in batches of a few hundred whatever the page size: a page of one must not cost
        // a query per key.
        let batch = page.limit.max(KEY_BATCH);
        let mut items = Vec::new();
        let mut after = page.cursor.clone();
        let mut more = false;
        'pages: loop {
            let rows = self
                .store
                .api_keys(tenant_filter, after.as_deref(), batch)
                .await?;
            let exhausted = rows.len() < usize::try_from(batch).unwrap_or(usize::MAX);
            after = rows.last().map(|r| r.key.id.clone());
            for entry in &rows {
                if items.len() == limit {
                    more = true;
                    break 'pages;
                }
                if self.may_read_key(p, ctx, entry).await? {
                    items.push(view(entry, now));
                }
            }
            if exhausted || after.is_none() {
                break;
            }
        }
        record.records = items.iter().map(|k: &ApiKey| k.id.clone()).collect();
        self.audit.append(record).await?;
        let next_cursor = more.then(|| items.last().map(|k| k.id.clone())).flatten();
        Ok(Page { items, next_cursor })
    }

    async fn may_read_key(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        entry: &ApiKeyEntry,
    ) -> ServiceResult<bool> {
        let tenant = match &entry.tenant_id {
            Some(tid) => self.tenant_state(tid).await?,
            None => None,
        };
        let mut resource = ResourceFacts::new(
            ResourceKind::User,
            &entry.key.user_id,
            entry.tenant_id.clone(),
        );
        resource.target_roles = parse_roles(&entry.roles);
        let decision = self.decide(
            p,
            Action::ReadUser,
            &resource,
            tenant.as_ref().map(|t| &t.facts),
            ctx.purpose,
        );
        Ok(decision.allowed)
    }

    pub async fn revoke_api_key(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        key_id: &str,
    ) -> ServiceResult<()> {
        let Some(row) = self.store.api_key(key_id).await? else {
            let record = self.record(p, ctx, "api_key.revoke", None, key_ref(key_id));
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        };
        let (_, mut record) = self
            .user_target(
                p,
                ctx,
                &row.user_id,
                Action::RevokeCredentials,
                "api_key.revoke",
                &[],
            )
            .await?;
        record.resource = key_ref(key_id);
        self.audit
            .commit(
                vec![record],
                vec![Mutation::RevokeApiKey {
                    id: key_id.to_owned(),
                    at: self.now(),
                }],
            )
            .await?;
        self.api_keys.revoke_id(key_id);
        Ok(())
    }

    /// Resolves an `srk_` bearer key to its service principal; `unauthenticated` unless the key
    /// exists and is neither revoked nor expired, `account_suspended` when its principal is not
    /// active. Refusals of an existing key are recorded against its principal.
    pub(crate) async fn authenticate_api_key(
        &self,
        key: &str,
        request_id: &str,
    ) -> ServiceResult<Principal> {
        if !api_key::well_formed(key) {
            return Err(ServiceError::unauthenticated());
        }
        let hash = token_hash(key);
        let now = self.now();
        let cached = match self.api_keys.get(&hash) {
            Some(k) => k,
            None => {
                let generation = self.api_keys.generation();
                // No row, no entry: random keys must not grow the log.
                let row = self
                    .store
                    .api_key_by_hash(&hash)
                    .await?
                    .ok_or_else(ServiceError::unauthenticated)?;
                // The lookup was by hash; compare again, in constant time, before trusting the row.
                if !bool::from(row.key_hash.as_slice().ct_eq(hash.as_slice())) {
                    return Err(ServiceError::unauthenticated());
                }
                let k = Arc::new(CachedKey::from_row(&row));
                self.api_keys
                    .insert_loaded(hash, Arc::clone(&k), generation);
                k
            }
        };
        let refused = || CredentialRef {
            user_id: &cached.user_id,
            resource: ResourceRef {
                kind: "api_key",
                id: Some(cached.id.clone()),
            },
            request_id,
        };
        if cached.is_revoked() || now >= cached.expires_at {
            let reason = if cached.is_revoked() {
                "api_key_revoked"
            } else {
                "api_key_expired"
            };
            return Err(self
                .refuse_credential(refused(), None, reason, Vec::new())
                .await);
        }
        let user = self.active_user(&cached.user_id, refused).await?;
        if cached.touch(now) {
            self.record_use_later(Mutation::TouchApiKey {
                id: cached.id.clone(),
                at: now,
            });
        }
        Ok(Principal {
            user_id: user.id.clone(),
            username: user.username.clone(),
            roles: parse_roles(&user.roles),
            tenant_id: user.tenant_id.clone(),
            confidentiality_version: user.confidentiality_version.clone(),
            // Only active principals get here; the policy's own guardrail still reads it.
            active: true,
            token_hash: hash,
            // Keys are issued to service principals, which never log in: no second factor to enrol.
            enrolment_only: false,
            api_key_id: Some(cached.id.clone()),
            logged_in_at: None,
        })
    }
}
