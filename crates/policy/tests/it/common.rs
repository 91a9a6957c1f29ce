//! Fact builders shared by the tests.

use std::sync::OnceLock;

use strongroom_policy::{
    AccessRequest, Action, Decision, FieldClass, GrantFacts, PolicyEngine, PrincipalFacts, Purpose,
    ResourceFacts, ResourceKind, Role, TenantFacts,
};

pub const OWN: &str = "tenant-own";
pub const OTHER: &str = "tenant-other";

/// The built-in policies only, loaded once per test binary.
pub fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::load(None).unwrap())
}

/// Built-ins plus an extra directory holding `permit(principal, action, resource);`.
pub fn permissive_engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("allow_all.cedar"),
            "permit(principal, action, resource);\n",
        )
        .unwrap();
        PolicyEngine::load(Some(dir.path())).unwrap()
    })
}

/// A principal with one role: customers belong to `OWN`, staff to no tenant.
pub fn principal(role: Role) -> PrincipalFacts {
    PrincipalFacts {
        id: format!("user-{}", role.as_str()),
        roles: vec![role],
        tenant_id: role.is_customer().then(|| OWN.to_owned()),
        active: true,
        confidentiality_acknowledged: true,
    }
}

pub fn tenant(id: &str, requires_approval: bool, allowed: &[Purpose]) -> TenantFacts {
    TenantFacts {
        id: id.to_owned(),
        active: true,
        allowed_purposes: allowed.to_vec(),
        operator_access_requires_approval: requires_approval,
    }
}

pub fn grant(id: &str, classes: &[FieldClass]) -> GrantFacts {
    GrantFacts {
        id: id.to_owned(),
        field_classes: classes.to_vec(),
    }
}

/// The resource kind a content action is asked about.
pub fn content_kind(action: Action) -> ResourceKind {
    match action {
        Action::ReadContact
        | Action::SearchContacts
        | Action::CreateContact
        | Action::UpdateContact
        | Action::DeleteContact => ResourceKind::Contact,
        _ => ResourceKind::Case,
    }
}

pub fn record(action: Action, tenant_id: &str) -> ResourceFacts {
    ResourceFacts::new(content_kind(action), "record-1", Some(tenant_id.to_owned()))
}

pub fn decide(
    engine: &PolicyEngine,
    p: &PrincipalFacts,
    action: Action,
    r: &ResourceFacts,
    t: Option<&TenantFacts>,
    purpose: Option<Purpose>,
) -> Decision {
    engine.decide(&AccessRequest {
        principal: p,
        action,
        resource: r,
        tenant: t,
        purpose,
    })
}

pub const CONTENT_ACTIONS: &[Action] = &[
    Action::ReadContact,
    Action::SearchContacts,
    Action::CreateContact,
    Action::UpdateContact,
    Action::DeleteContact,
    Action::ReadCase,
    Action::ListCases,
    Action::CreateCase,
    Action::UpdateCase,
    Action::AssignCase,
    Action::AddComment,
    Action::ReadComments,
    Action::AddAttachment,
    Action::ReadAttachments,
    Action::DeleteAttachment,
    Action::ExportRecords,
];
