//! The facts of a request in canonical form: the decision cache key, and the
//! only input the Cedar context is built from (so the key holds every fact
//! that reaches Cedar, and nothing else does).

use std::str::FromStr;

use cedar_policy::{Context, EntityId, EntityTypeName, EntityUid, RestrictedExpression as Rx};

use crate::model::{AccessRequest, Action, FieldClass, Purpose, ResourceKind, Role};

/// A set of enum values as bits (`1 << discriminant`): order and duplicates
/// of the input do not matter.
fn bits<T: Copy + Into<usize>>(items: &[T]) -> u16 {
    items.iter().fold(0u16, |acc, &x| {
        acc | 1u16.checked_shl(x.into() as u32).unwrap_or(0)
    })
}

fn members<T: Copy + Into<usize>>(all: &'static [T], set: u16) -> impl Iterator<Item = T> {
    all.iter()
        .copied()
        .filter(move |&x| set & 1u16.checked_shl(x.into() as u32).unwrap_or(0) != 0)
}

macro_rules! index_into_usize {
    ($($t:ty),+) => {$(
        impl From<$t> for usize {
            fn from(v: $t) -> usize { v as usize }
        }
    )+};
}
index_into_usize!(Role, Purpose, FieldClass);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TenantKey {
    pub id: String,
    pub active: bool,
    pub allowed_purposes: u16,
    pub requires_approval: bool,
}

/// Everything `decide` hands to Cedar.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Facts {
    pub action: Action,
    pub kind: ResourceKind,
    /// Principal and resource ids: only when a policy may name one.
    pub ids: Option<(String, String)>,
    pub roles: u16,
    pub active: bool,
    pub acknowledged: bool,
    pub caller_tenant: Option<String>,
    pub target_tenant: Option<String>,
    pub assigned: bool,
    pub grant: Option<u16>,
    pub target_roles: u16,
    pub requested_by_caller: bool,
    pub tenant: Option<TenantKey>,
    pub purpose: Option<Purpose>,
}

impl Facts {
    /// With `identities` false, tenant ids are replaced by placeholders that
    /// keep only which of them are equal, and principal/resource ids are left
    /// out: sound when no policy names a specific entity.
    pub fn new<'a>(req: &AccessRequest<'a>, identities: bool) -> Self {
        let mut seen: Vec<&'a str> = Vec::with_capacity(3);
        let mut tenant_id = |id: &'a str| -> String {
            if identities {
                return id.to_owned();
            }
            let n = match seen.iter().position(|s| *s == id) {
                Some(n) => n,
                None => {
                    seen.push(id);
                    seen.len() - 1
                }
            };
            format!("tenant-{n}")
        };
        let p = req.principal;
        let r = req.resource;
        let caller_tenant = p.tenant_id.as_deref().map(&mut tenant_id);
        let target_tenant = r.tenant_id.as_deref().map(&mut tenant_id);
        let tenant = req.tenant.map(|t| TenantKey {
            id: tenant_id(&t.id),
            active: t.active,
            allowed_purposes: bits(&t.allowed_purposes),
            requires_approval: t.operator_access_requires_approval,
        });
        Facts {
            action: req.action,
            kind: r.kind,
            ids: identities.then(|| (p.id.clone(), r.id.clone())),
            roles: bits(&p.roles),
            active: p.active,
            acknowledged: p.confidentiality_acknowledged,
            caller_tenant,
            target_tenant,
            assigned: r.assigned_to_principal,
            grant: r.grant.as_ref().map(|g| bits(&g.field_classes)),
            target_roles: bits(&r.target_roles),
            requested_by_caller: r.requested_by_principal,
            tenant,
            purpose: req.purpose,
        }
    }
}

/// Entity uids built once, cloned per request (cheap: shared strings).
pub(crate) struct Vocab {
    pub actions: Vec<EntityUid>,
    roles: Vec<EntityUid>,
    purposes: Vec<EntityUid>,
    classes: Vec<EntityUid>,
    pub user: EntityTypeName,
    tenant: EntityTypeName,
    pub kinds: Vec<EntityTypeName>,
}

/// Cedar actions: the API actions (by `Action::index`), then per field class
/// `read_<class>` and `unmask_<class>`.
pub(crate) const FIELD_BASE: usize = 28;
pub(crate) const CEDAR_ACTIONS: usize = FIELD_BASE + 2 * 5;

pub(crate) fn read_index(c: FieldClass) -> usize {
    FIELD_BASE + 2 * (c as usize)
}

pub(crate) fn unmask_index(c: FieldClass) -> usize {
    read_index(c) + 1
}

impl Vocab {
    pub fn new() -> Result<Self, String> {
        let ty = |name: &str| {
            EntityTypeName::from_str(name).map_err(|e| format!("entity type {name}: {e}"))
        };
        let uid = |t: &EntityTypeName, id: &str| {
            EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
        };
        let action = ty("Action")?;
        let role = ty("Role")?;
        let purpose = ty("Purpose")?;
        let class = ty("FieldClass")?;
        let mut actions: Vec<EntityUid> = Vec::with_capacity(CEDAR_ACTIONS);
        actions.extend(Action::ALL.iter().map(|a| uid(&action, a.as_str())));
        for c in FieldClass::ALL {
            actions.push(uid(&action, &format!("read_{c}")));
            actions.push(uid(&action, &format!("unmask_{c}")));
        }
        Ok(Vocab {
            actions,
            roles: Role::ALL.iter().map(|r| uid(&role, r.as_str())).collect(),
            purposes: Purpose::ALL
                .iter()
                .map(|p| uid(&purpose, p.as_str()))
                .collect(),
            classes: FieldClass::ALL
                .iter()
                .map(|c| uid(&class, c.as_str()))
                .collect(),
            user: ty("User")?,
            tenant: ty("Tenant")?,
            kinds: ResourceKind::ALL
                .iter()
                .map(|k| ty(k.as_str()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Principal and resource uids (placeholders without identities).
    pub fn principal_and_resource(&self, f: &Facts) -> Option<(EntityUid, EntityUid)> {
        let (p, r) = match &f.ids {
            Some((p, r)) => (p.as_str(), r.as_str()),
            None => ("caller", "target"),
        };
        let kind = self.kinds.get(f.kind.index())?.clone();
        Some((
            EntityUid::from_type_name_and_id(self.user.clone(), EntityId::new(p)),
            EntityUid::from_type_name_and_id(kind, EntityId::new(r)),
        ))
    }

    fn set<T: Copy + Into<usize>>(list: &[EntityUid], all: &'static [T], set: u16) -> Rx {
        Rx::new_set(
            members(all, set)
                .filter_map(|x| list.get(x.into()).cloned())
                .map(Rx::new_entity_uid),
        )
    }

    fn tenant(&self, id: &str) -> Rx {
        Rx::new_entity_uid(EntityUid::from_type_name_and_id(
            self.tenant.clone(),
            EntityId::new(id),
        ))
    }

    /// The `Facts` record of `schema.cedarschema`.
    pub fn context(&self, f: &Facts) -> Option<Context> {
        let mut caller = vec![
            (
                "roles".to_owned(),
                Self::set(&self.roles, Role::ALL, f.roles),
            ),
            ("active".to_owned(), Rx::new_bool(f.active)),
            ("acknowledged".to_owned(), Rx::new_bool(f.acknowledged)),
        ];
        if let Some(t) = &f.caller_tenant {
            caller.push(("tenant".to_owned(), self.tenant(t)));
        }
        let mut target = vec![
            ("assigned".to_owned(), Rx::new_bool(f.assigned)),
            (
                "roles".to_owned(),
                Self::set(&self.roles, Role::ALL, f.target_roles),
            ),
            (
                "requested_by_caller".to_owned(),
                Rx::new_bool(f.requested_by_caller),
            ),
        ];
        if let Some(t) = &f.target_tenant {
            target.push(("tenant".to_owned(), self.tenant(t)));
        }
        if let Some(g) = f.grant {
            let classes = Self::set(&self.classes, FieldClass::ALL, g);
            let grant = Rx::new_record([("classes".to_owned(), classes)]).ok()?;
            target.push(("grant".to_owned(), grant));
        }
        let mut pairs = vec![
            ("caller".to_owned(), Rx::new_record(caller).ok()?),
            ("target".to_owned(), Rx::new_record(target).ok()?),
        ];
        if let Some(t) = &f.tenant {
            let tenant = Rx::new_record([
                ("id".to_owned(), self.tenant(&t.id)),
                ("active".to_owned(), Rx::new_bool(t.active)),
                (
                    "allowed_purposes".to_owned(),
                    Self::set(&self.purposes, Purpose::ALL, t.allowed_purposes),
                ),
                (
                    "requires_approval".to_owned(),
                    Rx::new_bool(t.requires_approval),
                ),
            ])
            .ok()?;
            pairs.push(("tenant".to_owned(), tenant));
        }
        if let Some(p) = f.purpose {
            let uid = self.purposes.get(usize::from(p))?.clone();
            pairs.push(("purpose".to_owned(), Rx::new_entity_uid(uid)));
        }
        Context::from_pairs(pairs).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::{PrincipalFacts, ResourceFacts, TenantFacts};

    fn req_facts(caller: Option<&str>, target: Option<&str>, tenant: &str, ids: bool) -> Facts {
        let p = PrincipalFacts {
            id: "alice".into(),
            roles: vec![Role::TenantUser, Role::TenantAdmin, Role::TenantUser],
            tenant_id: caller.map(str::to_owned),
            active: true,
            confidentiality_acknowledged: true,
        };
        let r = ResourceFacts::new(ResourceKind::Case, "case-9", target.map(str::to_owned));
        let t = TenantFacts {
            id: tenant.into(),
            active: true,
            allowed_purposes: vec![Purpose::CaseResolution],
            operator_access_requires_approval: false,
        };
        Facts::new(
            &AccessRequest {
                principal: &p,
                action: Action::ReadCase,
                resource: &r,
                tenant: Some(&t),
                purpose: None,
            },
            ids,
        )
    }

    #[test]
    fn placeholders_keep_equality_only() {
        let a = req_facts(Some("acme"), Some("acme"), "acme", false);
        let b = req_facts(Some("zeta"), Some("zeta"), "zeta", false);
        assert_eq!(a, b);
        let c = req_facts(Some("acme"), Some("zeta"), "zeta", false);
        assert_ne!(a, c);
        assert_eq!(c.caller_tenant.as_deref(), Some("tenant-0"));
        assert_eq!(c.target_tenant.as_deref(), Some("tenant-1"));
        assert_eq!(c.tenant.as_ref().map(|t| t.id.as_str()), Some("tenant-1"));
        let d = req_facts(None, Some("zeta"), "acme", false);
        assert_eq!(d.target_tenant.as_deref(), Some("tenant-0"));
        assert_eq!(d.tenant.as_ref().map(|t| t.id.as_str()), Some("tenant-1"));
        assert!(a.ids.is_none());
    }

    #[test]
    fn identities_are_kept_when_asked() {
        let a = req_facts(Some("acme"), Some("acme"), "acme", true);
        let b = req_facts(Some("zeta"), Some("zeta"), "zeta", true);
        assert_ne!(a, b);
        assert_eq!(a.ids, Some(("alice".into(), "case-9".into())));
        assert_eq!(a.caller_tenant.as_deref(), Some("acme"));
    }

    #[test]
    fn sets_ignore_order_and_duplicates() {
        assert_eq!(
            bits(&[Role::TenantUser, Role::TenantAdmin, Role::TenantUser]),
            bits(&[Role::TenantAdmin, Role::TenantUser])
        );
        let back: Vec<Role> =
            members(Role::ALL, bits(&[Role::TenantUser, Role::Auditor])).collect();
        assert_eq!(back, [Role::Auditor, Role::TenantUser]);
    }
}
