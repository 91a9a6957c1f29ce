//! Tenants and their processing instructions.

use std::net::Ipv4Addr;

use strongroom_policy::{Action, Denial, Purpose, ResourceFacts, ResourceKind};
use strongroom_store::{Mutation, TenantRow, TenantScope};

use super::required_text;
use crate::access::{Principal, RequestContext, tenant_state_from};
use crate::audit::ResourceRef;
use crate::clock::rfc3339;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::{InstructionsPatch, NewTenant, Tenant, TenantInstructions};
use crate::{TenantState, Vault, new_id};
use url::Host;

fn tenant_ref(id: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "tenant",
        id: Some(id.to_owned()),
    })
}

fn view(t: &TenantState) -> Tenant {
    Tenant {
        id: t.row.id.clone(),
        name: t.row.name.clone(),
        status: t.row.status.clone(),
        instructions: t.instructions.clone(),
        created_at: rfc3339(t.row.created_at),
        updated_at: rfc3339(t.row.updated_at),
    }
}

/// The settings of `next` that give operators or the platform more than `base` did: more
/// purposes, operator access without approval, exports, longer grants; and any change of the
/// retention (shorter deletes the customer's records sooner), of the idle time after which
/// customer accounts are suspended, of the region, or of where the customer's lockbox
/// notifications go. These are the customer's to decide.
fn widened(base: &TenantInstructions, next: &TenantInstructions) -> Vec<&'static str> {
    let more_purposes = next
        .allowed_purposes
        .iter()
        .any(|p| !base.allowed_purposes.contains(p));
    [
        ("allowed_purposes", more_purposes),
        (
            "operator_access_requires_approval",
            base.operator_access_requires_approval && !next.operator_access_requires_approval,
        ),
        (
            "export_allowed",
            !base.export_allowed && next.export_allowed,
        ),
        (
            "max_grant_hours",
            next.max_grant_hours > base.max_grant_hours,
        ),
        ("retention_days", next.retention_days != base.retention_days),
        (
            "customer_inactivity_days",
            next.customer_inactivity_days != base.customer_inactivity_days,
        ),
        ("region", next.region != base.region),
        ("webhook_url", next.webhook_url != base.webhook_url),
    ]
    .into_iter()
    .filter(|(_, widens)| *widens)
    .map(|(field, _)| field)
    .collect()
}

/// Whether `next` takes back something an open export was made under: exports themselves, a
/// purpose, or access without the customer's approval. Such exports expire with the change.
fn withdraws_exports(base: &TenantInstructions, next: &TenantInstructions) -> bool {
    (base.export_allowed && !next.export_allowed)
        || base
            .allowed_purposes
            .iter()
            .any(|p| !next.allowed_purposes.contains(p))
        || (!base.operator_access_requires_approval && next.operator_access_requires_approval)
}

/// Applies `patch` and checks the result; marketing and advertising can never reach tenant content.
fn merge(
    base: TenantInstructions,
    patch: InstructionsPatch,
    allow_loopback_http: bool,
) -> ServiceResult<TenantInstructions> {
    let mut out = base;
    if let Some(purposes) = patch.allowed_purposes {
        let mut parsed = Vec::with_capacity(purposes.len());
        for p in &purposes {
            match p.parse::<Purpose>() {
                Ok(Purpose::Marketing | Purpose::Advertising) => {
                    return Err(ServiceError::validation(
                        "marketing and advertising can never be allowed for tenant content",
                        &["instructions.allowed_purposes"],
                    ));
                }
                Ok(purpose) => {
                    if !parsed.contains(&purpose) {
                        parsed.push(purpose);
                    }
                }
                Err(_) => {
                    return Err(ServiceError::validation(
                        "unknown purpose",
                        &["instructions.allowed_purposes"],
                    ));
                }
            }
        }
        out.allowed_purposes = parsed.iter().map(|p| p.as_str().to_owned()).collect();
    }
    if let Some(days) = patch.retention_days {
        if !(1..=36_500).contains(&days) {
            return Err(ServiceError::validation(
                "retention_days must be between 1 and 36500",
                &["instructions.retention_days"],
            ));
        }
        out.retention_days = days;
    }
    if let Some(v) = patch.operator_access_requires_approval {
        out.operator_access_requires_approval = v;
    }
    if let Some(v) = patch.export_allowed {
        out.export_allowed = v;
    }
    match patch.customer_inactivity_days {
        None => {}
        // 0 removes the tenant's own limit (as "" removes the webhook): the platform's applies.
        Some(0) => out.customer_inactivity_days = None,
        Some(days @ 1..=3650) => out.customer_inactivity_days = Some(days),
        Some(_) => {
            return Err(ServiceError::validation(
                "customer_inactivity_days must be between 1 and 3650, or 0 to remove the limit",
                &["instructions.customer_inactivity_days"],
            ));
        }
    }
    if let Some(hours) = patch.max_grant_hours {
        if !(1..=720).contains(&hours) {
            return Err(ServiceError::validation(
                "max_grant_hours must be between 1 and 720",
                &["instructions.max_grant_hours"],
            ));
        }
        out.max_grant_hours = hours;
    }
    if let Some(url) = patch.webhook_url {
        if url.is_empty() {
            out.webhook_url = None;
        } else if valid_webhook_url(&url, allow_loopback_http) {
            out.webhook_url = Some(url);
        } else {
            return Err(ServiceError::validation(
                "webhook_url must be https:// to a public host (plain http:// to this machine only \
                 where the operator allows it)",
                &["instructions.webhook_url"],
            ));
        }
    }
    if let Some(region) = patch.region {
        let ok = !region.is_empty()
            && region.len() <= 32
            && region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(ServiceError::validation(
                "invalid region label",
                &["instructions.region"],
            ));
        }
        out.region = region;
    }
    Ok(out)
}

/// `https://` to a public host, or, where the operator allows it, plain `http://` to this machine
/// (a local relay or a test receiver). Customers set this URL, so an address inside the operator's
/// networks (loopback, private, link-local, reserved) is refused: the server must not probe them
/// for a tenant. The host is judged as the delivery's own URL parser reads it, so spellings such
/// as `2130706433` or `127.1` are the addresses they reach. Names are not resolved here; a name
/// pointing inside is the operator's egress filter's to stop.
pub(crate) fn valid_webhook_url(raw: &str, allow_loopback_http: bool) -> bool {
    if raw.len() > 2000 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let Some(host) = url.host() else {
        return false;
    };
    match url.scheme() {
        "https" => !internal_host(&host),
        "http" => allow_loopback_http && loopback_host(&host),
        _ => false,
    }
}

fn loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => local_name(name),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `localhost` and its subdomains, with or without the root's trailing dot.
fn local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn internal_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => local_name(name) || name.trim_end_matches('.').is_empty(),
        Host::Ipv4(ip) => internal_ipv4(*ip),
        Host::Ipv6(ip) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // IPv4 inside IPv6: mapped, compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
                // reach IPv4 hosts, inside ones included; no customer needs them written so.
                || ip.to_ipv4().is_some()
                || ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                || ip.segments()[..3] == [0x64, 0xff9b, 1] // local-use NAT64
                || first == 0x2002
                || (first & 0xffc0) == 0xfec0 // site-local
                || ip.segments()[..2] == [0x2001, 0] // Teredo
                || ip.segments()[..2] == [0x2001, 0xdb8] // documentation
        }
    }
}

fn internal_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || a >= 240 // reserved
        || (a == 100 && (b & 0xc0) == 64) // carrier-grade NAT
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation (TEST-NET-1)
        || (a == 198 && b == 51 && c == 100) // documentation (TEST-NET-2)
        || (a == 203 && b == 0 && c == 113) // documentation (TEST-NET-3)
        || (a == 192 && b == 88 && c == 99) // 6to4 relays
}

impl Vault {
    pub async fn create_tenant(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        input: NewTenant,
    ) -> ServiceResult<Tenant> {
        let id = new_id();
        let mut record = self.record(p, ctx, "tenant.create", Some(&id), tenant_ref(&id));
        let resource = ResourceFacts::new(ResourceKind::Tenant, &id, Some(id.clone()));
        let decision = self.decide(p, Action::CreateTenant, &resource, None, ctx.purpose);
        self.enforce(&mut record, &decision).await?;
        let name = required_text(Some(&input.name), "name", 200)?;
        let instructions = merge(
            TenantInstructions::default(),
            input.instructions,
            self.settings.webhook_allow_loopback_http,
        )?;
        let now = self.now();
        let row = TenantRow {
            id: id.clone(),
            name,
            status: "active".into(),
            instructions: serde_json::to_string(&instructions)
                .map_err(|_| ServiceError::internal("instructions encoding"))?,
            created_at: now,
            updated_at: now,
        };
        let keys = self.keys.new_tenant_keys(&id, now)?;
        record.fields_requested = vec!["name", "instructions"];
        self.commit_attempt(
            vec![record],
            vec![
                self.keys.root_guard(),
                Mutation::InsertTenant(row.clone()),
                Mutation::InsertTenantKey(keys),
            ],
            ("tenant.create_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(view(&tenant_state_from(row)?))
    }

    pub async fn tenant(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
    ) -> ServiceResult<Tenant> {
        let mut record = self.record(
            p,
            ctx,
            "tenant.read",
            Some(tenant_id),
            tenant_ref(tenant_id),
        );
        let tenant = self.tenant_for(&record, tenant_id).await?;
        let resource =
            ResourceFacts::new(ResourceKind::Tenant, tenant_id, Some(tenant_id.to_owned()));
        let decision = self.decide(
            p,
            Action::ReadTenant,
            &resource,
            Some(&tenant.facts),
            ctx.purpose,
        );
        self.enforce(&mut record, &decision).await?;
        self.audit.append(record).await?;
        Ok(view(&tenant))
    }

    pub async fn update_instructions(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        patch: InstructionsPatch,
    ) -> ServiceResult<Tenant> {
        let mut record = self.record(
            p,
            ctx,
            "tenant.update_instructions",
            Some(tenant_id),
            tenant_ref(tenant_id),
        );
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
        let instructions = merge(
            tenant.instructions.clone(),
            patch,
            self.settings.webhook_allow_loopback_http,
        )?;
        // The instructions are the customer's to the operator: the platform may tighten them (an
        // incident, a contract ended) but only the tenant's own admin may loosen them, or change
        // how long the customer's records and accounts are kept.
        if p.tenant_id.as_deref() != Some(tenant_id) {
            let widened = widened(&tenant.instructions, &instructions);
            if !widened.is_empty() {
                record.fields_requested = widened;
                let refused = self
                    .refuse(record, Denial::Forbidden, decision.policy_ids)
                    .await;
                return Err(if refused.code == ErrorCode::Forbidden {
                    ServiceError::new(
                        ErrorCode::Forbidden,
                        "only the tenant's admin may loosen its instructions; the platform may \
                         only tighten them",
                    )
                } else {
                    refused
                });
            }
        }
        let mut row = tenant.row.clone();
        row.instructions = serde_json::to_string(&instructions)
            .map_err(|_| ServiceError::internal("instructions encoding"))?;
        row.updated_at = super::next_version(self.now(), tenant.row.updated_at);
        record.fields_requested = vec!["instructions"];
        let mut mutations = vec![Mutation::UpdateTenant {
            row: row.clone(),
            read_updated_at: tenant.row.updated_at,
        }];
        // In the same commit: an export being built meanwhile was read under the old version
        // and is refused at its insert.
        if withdraws_exports(&tenant.instructions, &instructions) {
            mutations.push(Mutation::ExpireTenantExports {
                scope: TenantScope::new(tenant_id),
            });
        }
        let outcome = self
            .commit_attempt(
                vec![record],
                mutations,
                (
                    "tenant.update_instructions_not_applied",
                    "changed_meanwhile",
                ),
            )
            .await;
        // Changed or not, the cached copy goes: after a conflict it is the stale one.
        self.forget_tenant(tenant_id);
        outcome?;
        Ok(view(&tenant_state_from(row)?))
    }
}

#[cfg(test)]
mod tests {
    use super::{merge, valid_webhook_url, widened};
    use crate::model::{InstructionsPatch, TenantInstructions};

    #[test]
    fn the_customer_inactivity_limit_is_set_changed_and_removed() {
        let patch = |days| InstructionsPatch {
            customer_inactivity_days: Some(days),
            ..InstructionsPatch::default()
        };
        let base = TenantInstructions::default();
        let set = merge(base, patch(30), false)
            .ok()
            .map(|i| i.customer_inactivity_days);
        assert_eq!(set, Some(Some(30)));
        let with_limit = TenantInstructions {
            customer_inactivity_days: Some(30),
            ..TenantInstructions::default()
        };
        let removed = merge(with_limit.clone(), patch(0), false).ok();
        assert_eq!(removed.map(|i| i.customer_inactivity_days), Some(None));
        let kept = merge(with_limit.clone(), InstructionsPatch::default(), false).ok();
        assert_eq!(kept.map(|i| i.customer_inactivity_days), Some(Some(30)));
        assert!(merge(with_limit, patch(3651), false).is_err());
    }

    #[test]
    fn tightening_widens_nothing_and_each_loosening_is_named() {
        let base = TenantInstructions {
            allowed_purposes: vec!["case-resolution".into(), "legal-compliance".into()],
            operator_access_requires_approval: true,
            export_allowed: false,
            customer_inactivity_days: Some(30),
            webhook_url: Some("https://hooks.example.com/a".into()),
            ..TenantInstructions::default()
        };
        let mut tighter = base.clone();
        tighter.allowed_purposes = vec!["case-resolution".into()];
        tighter.operator_access_requires_approval = true;
        tighter.max_grant_hours = 1;
        assert!(widened(&base, &tighter).is_empty());
        assert!(widened(&base, &base).is_empty());

        let loosen = |change: fn(&mut TenantInstructions)| {
            let mut next = base.clone();
            change(&mut next);
            widened(&base, &next)
        };
        type Loosening = (fn(&mut TenantInstructions), &'static str);
        let cases: [Loosening; 11] = [
            (
                |i| i.allowed_purposes.push("security-investigation".into()),
                "allowed_purposes",
            ),
            (
                |i| i.operator_access_requires_approval = false,
                "operator_access_requires_approval",
            ),
            (|i| i.export_allowed = true, "export_allowed"),
            (|i| i.max_grant_hours += 1, "max_grant_hours"),
            (|i| i.retention_days += 1, "retention_days"),
            (|i| i.retention_days -= 1, "retention_days"),
            (
                |i| i.customer_inactivity_days = Some(10),
                "customer_inactivity_days",
            ),
            (
                |i| i.customer_inactivity_days = Some(31),
                "customer_inactivity_days",
            ),
            (
                |i| i.customer_inactivity_days = None,
                "customer_inactivity_days",
            ),
            (|i| i.region = "us".into(), "region"),
            (|i| i.webhook_url = None, "webhook_url"),
        ];
        for (change, field) in cases {
            assert_eq!(loosen(change), vec![field]);
        }
    }

    #[test]
    fn webhook_urls() {
        assert!(valid_webhook_url(
            "https://hooks.example.com/strongroom",
            false
        ));
        assert!(valid_webhook_url("http://127.0.0.1:8080/hook", true));
        assert!(valid_webhook_url("http://[::1]:8080/", true));
        assert!(!valid_webhook_url("http://127.0.0.1:8080/hook", false));
        assert!(!valid_webhook_url("http://hooks.example.com/", true));
        assert!(!valid_webhook_url("http://127.0.0.1.evil.com/", true));
        assert!(!valid_webhook_url("https://user:pw@example.com/", false));
        assert!(!valid_webhook_url("ftp://example.com/", false));
        assert!(valid_webhook_url("https://hooks.example.com./x", false));
        assert!(valid_webhook_url("https://93.184.215.14/", false));
        assert!(valid_webhook_url("https://[2606:2800:21f:cb07::1]/", false));
        assert!(valid_webhook_url("http://localhost:8080/", true));
        for internal in [
            "https://127.0.0.1/",
            "https://localhost:8443/",
            "https://10.0.0.5:8443/admin",
            "https://192.168.1.1/",
            "https://172.16.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://0.0.0.0/",
            // Other spellings the delivery's URL parser reads as inside addresses.
            "https://2130706433:8443/x",
            "https://127.1/",
            "https://0x7f.1/",
            "https://0/",
            "https://2852039166/latest/meta-data",
            "https://localhost./",
            "https://LOCALHOST.localhost./",
            "https://[::a00:1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a00:1::]/",
            "https://198.18.0.1/",
            "https://240.0.0.1/",
            "https://192.0.0.8/",
            "https://192.0.2.1/",
            "https://198.51.100.7/",
            "https://203.0.113.9/",
            "https://192.88.99.1/",
            "https://[64:ff9b:1::a00:1]/",
            "https://[fec0::1]/",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "https://[2001:db8::1]/",
            "https://example.com@127.0.0.1/",
        ] {
            assert!(!valid_webhook_url(internal, false), "{internal}");
        }
    }
}
