//! The vocabulary shared with the service layer: roles, purposes, field classes,
//! actions and the facts a decision is made on. Names match API.md.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name that is not one of a vocabulary's fixed names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownName {
    /// Which vocabulary ("role", "purpose", "field class", "action").
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
}

macro_rules! names {
    ($ty:ident, $kind:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The API name.
            pub fn as_str(&self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownName { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A user role. Staff roles belong to the operator; customer roles to one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PlatformAdmin,
    Auditor,
    SecurityOfficer,
    SupportSupervisor,
    SupportEngineer,
    Marketing,
    TenantAdmin,
    TenantUser,
}

names!(Role, "role", {
    PlatformAdmin => "platform_admin",
    Auditor => "auditor",
    SecurityOfficer => "security_officer",
    SupportSupervisor => "support_supervisor",
    SupportEngineer => "support_engineer",
    Marketing => "marketing",
    TenantAdmin => "tenant_admin",
    TenantUser => "tenant_user",
});

impl Role {
    /// Operator staff (not tied to a tenant).
    pub fn is_staff(&self) -> bool {
        !self.is_customer()
    }

    /// A customer role, tied to one tenant.
    pub fn is_customer(&self) -> bool {
        matches!(self, Role::TenantAdmin | Role::TenantUser)
    }
}

/// The purpose of use stated with every content request (`Access-Purpose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    CaseResolution,
    CustomerSelfService,
    DataSubjectRequest,
    SecurityInvestigation,
    LegalCompliance,
    AccountManagement,
    Marketing,
    Advertising,
}

names!(Purpose, "purpose", {
    CaseResolution => "case-resolution",
    CustomerSelfService => "customer-self-service",
    DataSubjectRequest => "data-subject-request",
    SecurityInvestigation => "security-investigation",
    LegalCompliance => "legal-compliance",
    AccountManagement => "account-management",
    Marketing => "marketing",
    Advertising => "advertising",
});

/// Classification of a record field, from least to most sensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    Metadata,
    CaseContent,
    ContactIdentity,
    ContactDetail,
    Sensitive,
}

names!(FieldClass, "field class", {
    Metadata => "metadata",
    CaseContent => "case_content",
    ContactIdentity => "contact_identity",
    ContactDetail => "contact_detail",
    Sensitive => "sensitive",
});

impl FieldClass {
    fn index(self) -> usize {
        self as usize
    }
}

/// How one field class is shown to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// In clear.
    Reveal,
    /// Shape without content (`j***@example.com`).
    Mask,
    /// Absent from the response.
    Withhold,
}

/// One [`Visibility`] per [`FieldClass`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FieldMask([Visibility; 5]);

impl FieldMask {
    /// Everything withheld: what a denied action gets.
    pub fn none() -> Self {
        FieldMask([Visibility::Withhold; 5])
    }

    /// The same visibility for every class.
    pub fn all(v: Visibility) -> Self {
        FieldMask([v; 5])
    }

    /// The visibility of one class.
    pub fn get(&self, c: FieldClass) -> Visibility {
        self.0
            .get(c.index())
            .copied()
            .unwrap_or(Visibility::Withhold)
    }

    /// Builder-style setter.
    #[must_use]
    pub fn with(mut self, c: FieldClass, v: Visibility) -> Self {
        self.set(c, v);
        self
    }

    /// Set the visibility of one class.
    pub fn set(&mut self, c: FieldClass, v: Visibility) {
        if let Some(slot) = self.0.get_mut(c.index()) {
            *slot = v;
        }
    }

    /// `(class, visibility)` pairs in class order.
    pub fn iter(&self) -> impl Iterator<Item = (FieldClass, Visibility)> + '_ {
        FieldClass::ALL.iter().map(|&c| (c, self.get(c)))
    }
}

/// Everything a caller can ask to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    // tenant content (need a purpose)
    ReadContact,
    SearchContacts,
    CreateContact,
    UpdateContact,
    DeleteContact,
    ReadCase,
    ListCases,
    CreateCase,
    UpdateCase,
    AssignCase,
    AddComment,
    ReadComments,
    /// Upload a file to a case (scanned before it is stored).
    AddAttachment,
    /// List a case's files, read one's details or download its content.
    ReadAttachments,
    /// Remove one file from a case (the data owner's call, as a contact's deletion).
    DeleteAttachment,
    /// Export records (or the tenant's archive) to an age recipient.
    ExportRecords,
    // administration (no purpose needed)
    CreateTenant,
    ReadTenant,
    UpdateTenantInstructions,
    /// Crypto-shred a tenant: destroy its keys and remove its rows.
    DeleteTenant,
    CreateStaffUser,
    CreateCustomerUser,
    ReadUser,
    UpdateUserRoles,
    SuspendUser,
    ReactivateUser,
    /// Removes a user's second factor (a lost device): the next login enrols again.
    ResetSecondFactor,
    /// Revoke a user's sessions or API keys.
    RevokeCredentials,
    ReadAuditLog,
    ReadTenantAccessLog,
    /// Incidents the breach watch raised: all of them, or those about one tenant.
    ReadIncidents,
    CloseIncident,
    // access governance (platform-wide)
    ReviewAccess,
    SweepInactiveUsers,
    /// The active staff who can be assigned cases, for the supervisors who assign them.
    ListAssignees,
    // operator access (lockbox)
    RequestAccess,
    ApproveAccess,
    RevokeAccess,
    ListAccessRequests,
    /// Four eyes on a large export: a second person approves it.
    ApproveExport,
    /// Every export of a tenant (state and manifest, no content), for those who approve them.
    ReviewExports,
    // key management (platform-wide operation on one tenant's keys)
    /// Rotate a tenant's keys and see the re-encryption progress.
    ManageTenantKeys,
}

names!(Action, "action", {
    ReadContact => "read_contact",
    SearchContacts => "search_contacts",
    CreateContact => "create_contact",
    UpdateContact => "update_contact",
    DeleteContact => "delete_contact",
    ReadCase => "read_case",
    ListCases => "list_cases",
    CreateCase => "create_case",
    UpdateCase => "update_case",
    AssignCase => "assign_case",
    AddComment => "add_comment",
    ReadComments => "read_comments",
    AddAttachment => "add_attachment",
    ReadAttachments => "read_attachments",
    DeleteAttachment => "delete_attachment",
    ExportRecords => "export_records",
    CreateTenant => "create_tenant",
    ReadTenant => "read_tenant",
    UpdateTenantInstructions => "update_tenant_instructions",
    DeleteTenant => "delete_tenant",
    CreateStaffUser => "create_staff_user",
    CreateCustomerUser => "create_customer_user",
    ReadUser => "read_user",
    UpdateUserRoles => "update_user_roles",
    SuspendUser => "suspend_user",
    ReactivateUser => "reactivate_user",
    ResetSecondFactor => "reset_second_factor",
    RevokeCredentials => "revoke_credentials",
    ReadAuditLog => "read_audit_log",
    ReadTenantAccessLog => "read_tenant_access_log",
    ReadIncidents => "read_incidents",
    CloseIncident => "close_incident",
    ReviewAccess => "review_access",
    SweepInactiveUsers => "sweep_inactive_users",
    ListAssignees => "list_assignees",
    RequestAccess => "request_access",
    ApproveAccess => "approve_access",
    RevokeAccess => "revoke_access",
    ListAccessRequests => "list_access_requests",
    ApproveExport => "approve_export",
    ReviewExports => "review_exports",
    ManageTenantKeys => "manage_tenant_keys",
});

impl Action {
    /// Reads or writes a tenant's content: needs a purpose, yields a field mask.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            Action::ReadContact
                | Action::SearchContacts
                | Action::CreateContact
                | Action::UpdateContact
                | Action::DeleteContact
                | Action::ReadCase
                | Action::ListCases
                | Action::CreateCase
                | Action::UpdateCase
                | Action::AssignCase
                | Action::AddComment
                | Action::ReadComments
                | Action::AddAttachment
                | Action::ReadAttachments
                | Action::DeleteAttachment
                | Action::ExportRecords
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The caller, as loaded by the service layer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrincipalFacts {
    pub id: String,
    pub roles: Vec<Role>,
    /// Customers only.
    pub tenant_id: Option<String>,
    /// false = suspended or deactivated.
    pub active: bool,
    /// The current confidentiality agreement is acknowledged.
    pub confidentiality_acknowledged: bool,
}

/// The tenant the request is about, with its processing instructions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantFacts {
    pub id: String,
    pub active: bool,
    pub allowed_purposes: Vec<Purpose>,
    pub operator_access_requires_approval: bool,
}

/// What kind of thing the request targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Tenant,
    Contact,
    Case,
    Comment,
    User,
    AuditLog,
    AccessRequest,
}

impl ResourceKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ResourceKind] = &[
        ResourceKind::Tenant,
        ResourceKind::Contact,
        ResourceKind::Case,
        ResourceKind::Comment,
        ResourceKind::User,
        ResourceKind::AuditLog,
        ResourceKind::AccessRequest,
    ];

    /// The Cedar entity type name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResourceKind::Tenant => "Tenant",
            ResourceKind::Contact => "Contact",
            ResourceKind::Case => "Case",
            ResourceKind::Comment => "Comment",
            ResourceKind::User => "User",
            ResourceKind::AuditLog => "AuditLog",
            ResourceKind::AccessRequest => "AccessRequest",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// An ACTIVE approved grant held by the principal on this very record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GrantFacts {
    pub id: String,
    pub field_classes: Vec<FieldClass>,
}

/// The target of the request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceFacts {
    pub kind: ResourceKind,
    pub id: String,
    pub tenant_id: Option<String>,
    /// staff: the case (or, for a contact, some case referencing it) is assigned to the principal
    pub assigned_to_principal: bool,
    pub grant: Option<GrantFacts>,
    /// User administration: the target user's roles. For `UpdateUserRoles` pass the
    /// union of the current and the requested roles; for `Create*User` the new roles.
    pub target_roles: Vec<Role>,
    /// For `ApproveAccess`/`RevokeAccess`: the request was made by the principal.
    pub requested_by_principal: bool,
}

impl ResourceFacts {
    /// A target with no assignment, grant, roles or request: fill in what applies.
    pub fn new(kind: ResourceKind, id: impl Into<String>, tenant_id: Option<String>) -> Self {
        ResourceFacts {
            kind,
            id: id.into(),
            tenant_id,
            assigned_to_principal: false,
            grant: None,
            target_roles: Vec::new(),
            requested_by_principal: false,
        }
    }

    /// A target of `kind` as the caller reaches it through a case assigned to them: asks whether
    /// anything of that kind in the tenant could be open to the caller, for this purpose (a list,
    /// an export, the purpose of an access request).
    pub fn reachable(kind: ResourceKind, id: impl Into<String>, tenant_id: Option<String>) -> Self {
        ResourceFacts {
            assigned_to_principal: true,
            ..Self::new(kind, id, tenant_id)
        }
    }
}

/// One question to the policy decision point.
#[derive(Clone, Copy, Debug)]
pub struct AccessRequest<'a> {
    pub principal: &'a PrincipalFacts,
    pub action: Action,
    pub resource: &'a ResourceFacts,
    pub tenant: Option<&'a TenantFacts>,
    pub purpose: Option<Purpose>,
}

/// Why an action was refused; each maps to an API error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Denial {
    NotFound,
    Forbidden,
    PurposeRequired,
    PurposeNotPermitted,
    AccessGrantRequired,
    ConfidentialityAcknowledgementRequired,
    AccountSuspended,
}

impl Denial {
    /// Every denial, most decisive first: when several guardrails fire, the
    /// first of these wins.
    pub const BY_PRIORITY: &'static [Denial] = &[
        Denial::AccountSuspended,
        Denial::NotFound,
        Denial::PurposeRequired,
        Denial::Forbidden,
        Denial::ConfidentialityAcknowledgementRequired,
        Denial::PurposeNotPermitted,
        Denial::AccessGrantRequired,
    ];

    /// The API.md error code.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NotFound => "not_found",
            Denial::Forbidden => "forbidden",
            Denial::PurposeRequired => "purpose_required",
            Denial::PurposeNotPermitted => "purpose_not_permitted",
            Denial::AccessGrantRequired => "access_grant_required",
            Denial::ConfidentialityAcknowledgementRequired => {
                "confidentiality_acknowledgement_required"
            }
            Denial::AccountSuspended => "account_suspended",
        }
    }

    /// The denial for an error code, if it is one.
    pub fn from_code(code: &str) -> Option<Denial> {
        Denial::BY_PRIORITY
            .iter()
            .copied()
            .find(|d| d.code() == code)
    }

    /// Lower is more decisive.
    pub fn priority(&self) -> usize {
        Denial::BY_PRIORITY
            .iter()
            .position(|d| d == self)
            .unwrap_or(usize::MAX)
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The answer: obey it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Set exactly when `allowed` is false.
    pub denial: Option<Denial>,
    /// What the caller may see of the record; `FieldMask::none()` when denied and
    /// for actions that carry no content (administration, lockbox).
    pub fields: FieldMask,
    /// The `@id` of the determining policies: the satisfied permits when allowed,
    /// the satisfied forbids (or the failing policies) when denied.
    pub policy_ids: Vec<String>,
}

impl Decision {
    pub(crate) fn deny(denial: Denial, policy_ids: Vec<String>) -> Self {
        Decision {
            allowed: false,
            denial: Some(denial),
            fields: FieldMask::none(),
            policy_ids,
        }
    }
}
