//! The rules of the brief restated as plain Rust, independently of the Cedar
//! files: the matrix compares the engine against this.

use strongroom_policy::{Action, Denial, FieldClass, FieldMask, Purpose, Role, Visibility};

use Visibility::{Mask as M, Reveal as R, Withhold as W};

/// How a staff member reaches the record.
#[derive(Clone, Debug)]
pub struct Reach {
    pub assigned: bool,
    pub grant: Option<Vec<FieldClass>>,
}

/// One content request with a single-role principal.
#[derive(Clone, Debug)]
pub struct Case {
    pub role: Role,
    pub action: Action,
    pub own_tenant: bool,
    pub reach: Reach,
    pub purpose: Option<Purpose>,
    pub approval: bool,
    pub tenant_allowed: Vec<Purpose>,
}

pub type Outcome = Result<FieldMask, Denial>;

pub fn role_purposes(role: Role) -> &'static [Purpose] {
    use Purpose::*;
    match role {
        Role::TenantAdmin => &[
            CustomerSelfService,
            DataSubjectRequest,
            AccountManagement,
            LegalCompliance,
        ],
        Role::TenantUser => &[CustomerSelfService],
        Role::SupportEngineer | Role::SupportSupervisor => &[CaseResolution],
        Role::SecurityOfficer => &[SecurityInvestigation, LegalCompliance],
        Role::Marketing => &[Marketing, Advertising],
        Role::PlatformAdmin | Role::Auditor => &[],
    }
}

fn staff_read_actions() -> &'static [Action] {
    &[
        Action::ReadContact,
        Action::ReadCase,
        Action::ListCases,
        Action::UpdateCase,
        Action::AddComment,
        Action::ReadComments,
        Action::AddAttachment,
        Action::ReadAttachments,
        Action::ExportRecords,
    ]
}

impl Case {
    fn staff(&self) -> bool {
        self.role.is_staff()
    }

    fn reached(&self) -> bool {
        self.reach.assigned || self.reach.grant.is_some()
    }

    /// Staff may see class `c` through this reach (lockbox rule).
    fn has_class(&self, c: FieldClass) -> bool {
        (self.reach.assigned && !self.approval)
            || self.reach.grant.as_ref().is_some_and(|g| g.contains(&c))
    }

    fn triage(&self) -> bool {
        self.role == Role::SupportSupervisor
            && self.purpose == Some(Purpose::CaseResolution)
            && matches!(
                self.action,
                Action::ListCases | Action::ReadCase | Action::AssignCase
            )
    }

    /// Denials of every guardrail that applies.
    pub fn guardrails(&self) -> Vec<Denial> {
        let mut out = Vec::new();
        if self.role.is_customer() && !self.own_tenant {
            out.push(Denial::NotFound);
        }
        match self.purpose {
            None => out.push(Denial::PurposeRequired),
            Some(p) => {
                if matches!(p, Purpose::Marketing | Purpose::Advertising)
                    || !role_purposes(self.role).contains(&p)
                    || !self.tenant_allowed.contains(&p)
                {
                    out.push(Denial::PurposeNotPermitted);
                }
            }
        }
        if matches!(
            self.role,
            Role::PlatformAdmin | Role::Auditor | Role::Marketing
        ) {
            out.push(Denial::Forbidden);
        }
        if self.staff() {
            if !self.reached() && !self.triage() {
                out.push(Denial::AccessGrantRequired);
            }
            let needs_content = matches!(
                self.action,
                Action::UpdateCase
                    | Action::AddComment
                    | Action::ReadComments
                    | Action::AddAttachment
                    | Action::ReadAttachments
                    | Action::DeleteAttachment
            );
            if needs_content && !self.has_class(FieldClass::CaseContent) {
                out.push(Denial::AccessGrantRequired);
            }
            if self.action == Action::ReadContact
                && !self.has_class(FieldClass::ContactIdentity)
                && !self.has_class(FieldClass::ContactDetail)
            {
                out.push(Denial::AccessGrantRequired);
            }
        }
        out
    }

    /// A role permit matches.
    fn role_permits(&self) -> bool {
        let Some(p) = self.purpose else { return false };
        let own_purpose = role_purposes(self.role).contains(&p);
        match self.role {
            Role::TenantAdmin => {
                self.own_tenant && own_purpose && self.action != Action::AssignCase
            }
            Role::TenantUser => {
                self.own_tenant
                    && own_purpose
                    && !matches!(
                        self.action,
                        Action::DeleteContact | Action::DeleteAttachment | Action::AssignCase
                    )
            }
            Role::SupportEngineer | Role::SecurityOfficer => {
                own_purpose && self.reached() && staff_read_actions().contains(&self.action)
            }
            Role::SupportSupervisor => {
                own_purpose
                    && ((self.reached()
                        && (staff_read_actions().contains(&self.action)
                            || self.action == Action::AssignCase))
                        || self.triage())
            }
            Role::PlatformAdmin | Role::Auditor | Role::Marketing => false,
        }
    }

    /// The role's default row of the table.
    fn role_ceiling(&self) -> FieldMask {
        let row = match self.role {
            Role::TenantAdmin => [R, R, R, R, R],
            Role::TenantUser => [R, R, R, R, M],
            Role::SupportEngineer => [R, R, R, M, W],
            Role::SupportSupervisor if self.reached() => [R, R, R, M, W],
            Role::SupportSupervisor => [R, W, W, W, W],
            Role::SecurityOfficer => [R, R, M, M, W],
            Role::PlatformAdmin | Role::Auditor | Role::Marketing => [W; 5],
        };
        mask(row)
    }

    /// The most any permit may disclose (what the guardrails leave).
    fn guardrail_ceiling(&self) -> FieldMask {
        if self.role.is_customer() {
            let sensitive = if self.role == Role::TenantAdmin { R } else { M };
            return mask([R, R, R, R, sensitive]);
        }
        let class = |c: FieldClass, v: Visibility| if self.has_class(c) { v } else { W };
        let investigation = matches!(
            self.purpose,
            Some(Purpose::SecurityInvestigation | Purpose::LegalCompliance)
        );
        mask([
            R,
            class(FieldClass::CaseContent, R),
            class(
                FieldClass::ContactIdentity,
                if investigation { M } else { R },
            ),
            class(FieldClass::ContactDetail, M),
            W,
        ])
    }

    /// The built-in policies.
    pub fn expected(&self) -> Outcome {
        if let Some(d) = first(self.guardrails()) {
            return Err(d);
        }
        if !self.role_permits() {
            return Err(Denial::Forbidden);
        }
        Ok(restrict(self.role_ceiling(), self.guardrail_ceiling()))
    }

    /// The built-in policies plus `permit(principal, action, resource);`.
    pub fn expected_permissive(&self) -> Outcome {
        match first(self.guardrails()) {
            Some(d) => Err(d),
            None => Ok(self.guardrail_ceiling()),
        }
    }
}

/// The most decisive denial. Separation of duties (`forbidden`) outranks the confidentiality and
/// purpose checks: a role that may never see content is told so, not asked for another purpose.
pub fn first(mut denials: Vec<Denial>) -> Option<Denial> {
    let rank = |d: &Denial| match d {
        Denial::AccountSuspended => 0,
        Denial::NotFound => 1,
        Denial::PurposeRequired => 2,
        Denial::Forbidden => 3,
        Denial::ConfidentialityAcknowledgementRequired => 4,
        Denial::PurposeNotPermitted => 5,
        Denial::AccessGrantRequired => 6,
    };
    denials.sort_by_key(rank);
    denials.into_iter().next()
}

pub fn mask(row: [Visibility; 5]) -> FieldMask {
    FieldClass::ALL
        .iter()
        .zip(row)
        .fold(FieldMask::none(), |m, (&c, v)| m.with(c, v))
}

/// The more restrictive of two masks, class by class.
pub fn restrict(a: FieldMask, b: FieldMask) -> FieldMask {
    let rank = |v: Visibility| match v {
        R => 0,
        M => 1,
        W => 2,
    };
    FieldClass::ALL.iter().fold(FieldMask::none(), |m, &c| {
        let (x, y) = (a.get(c), b.get(c));
        m.with(c, if rank(x) >= rank(y) { x } else { y })
    })
}
