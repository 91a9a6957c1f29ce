//! The decision point: turns facts into Cedar requests, evaluates them, and
//! reads the answers back as a [`Decision`] with a [`FieldMask`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use cedar_policy::{
    ActionConstraint, AuthorizationError, Authorizer, Context, Decision as CedarDecision, Effect,
    Entities, EntityUid, Policy, PolicyId, PolicySet, Request, Response,
};

use crate::cache::DecisionCache;
use crate::facts::{CEDAR_ACTIONS, FIELD_BASE, Facts, Vocab, read_index, unmask_index};
use crate::loader::{self, PolicyError};
use crate::model::{
    AccessRequest, Action, Decision, Denial, FieldClass, FieldMask, ResourceKind, Visibility,
};

/// Default bound of the decision cache (per generation; see `cache.rs`).
pub const DEFAULT_CACHE_CAPACITY: usize = 16_384;

/// Cedar's answer, reduced to what `decide` reports.
enum Outcome {
    Allow(Vec<String>),
    Deny(Denial, Vec<String>),
}

/// The Cedar policy decision point. Build once (it validates every policy),
/// share behind an `Arc`; `decide` is thread-safe.
pub struct PolicyEngine {
    authorizer: Authorizer,
    /// The action hierarchy only: every other fact travels in the context.
    entities: Entities,
    /// Per Cedar action, the policies whose action scope admits it (any other
    /// can never be satisfied by it), with that scope dropped.
    slices: Vec<PolicySet>,
    reasons: HashMap<PolicyId, Denial>,
    vocab: Vocab,
    /// Per API action, the resource kinds the schema lets it apply to.
    applies_to: Vec<Vec<ResourceKind>>,
    /// Real ids reach Cedar only when some policy may name one.
    identities: bool,
    cache: DecisionCache,
    policy_count: usize,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.policy_count)
            .field("identities", &self.identities)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Built-in schema, guardrails and role policies, plus every `*.cedar` file
    /// in `extra_dir`, validated together in strict mode.
    pub fn load(extra_dir: Option<&Path>) -> Result<Self, PolicyError> {
        let loaded = loader::load(extra_dir)?;
        let vocab = Vocab::new().map_err(PolicyError::Schema)?;
        let entities = loaded
            .schema
            .action_entities()
            .map_err(|e| PolicyError::Schema(e.to_string()))?;

        // Within a slice the action scope always holds, so each policy goes
        // in with its action scope dropped: Cedar would otherwise rebuild and
        // test the scope's action set on every evaluation.
        let mut unscoped = Vec::new();
        for p in loaded.policies.policies() {
            let mut json = p
                .to_json()
                .map_err(|e| PolicyError::Schema(format!("policy {}: {e}", p.id())))?;
            if let Some(scope) = json.get_mut("action") {
                *scope = serde_json::json!({ "op": "All" });
            }
            let q = Policy::from_json(Some(p.id().clone()), json)
                .map_err(|e| PolicyError::Schema(format!("policy {}: {e}", p.id())))?;
            let constraint = p.action_constraint();
            // Field actions are asked only after the record action was allowed
            // with the same principal, resource and context. A forbid that
            // admits every action and never looks at `action` evaluated false
            // (without error) then, so it is false now: leave it out of the
            // field slices.
            let record_only = p.effect() == Effect::Forbid
                && matches!(constraint, ActionConstraint::Any)
                && !mentions_action(&q.to_json().unwrap_or(serde_json::Value::Null));
            unscoped.push((constraint, record_only, q));
        }

        let mut slices = Vec::with_capacity(CEDAR_ACTIONS);
        for (index, action) in vocab.actions.iter().enumerate() {
            let field_action = index >= FIELD_BASE;
            let mut scope: HashSet<&EntityUid> = HashSet::new();
            scope.insert(action);
            let ancestors = entities.ancestors(action).ok_or_else(|| {
                PolicyError::Schema(format!("action {action} is missing from the schema"))
            })?;
            scope.extend(ancestors);
            let mut slice = PolicySet::new();
            for (constraint, record_only, p) in &unscoped {
                if field_action && *record_only {
                    continue;
                }
                let applies = match constraint {
                    ActionConstraint::Any => true,
                    // `==` names one action, as in Cedar: a group there matches no request
                    // (only `in` reaches the group's members).
                    ActionConstraint::Eq(a) => a == action,
                    ActionConstraint::In(list) => list.iter().any(|a| scope.contains(a)),
                };
                if applies {
                    slice
                        .add(p.clone())
                        .map_err(|e| PolicyError::Schema(e.to_string()))?;
                }
            }
            slices.push(slice);
        }

        let mut applies_to = Vec::with_capacity(Action::ALL.len());
        for action in Action::ALL {
            let uid = vocab.actions.get(action.index()).ok_or_else(|| {
                PolicyError::Schema(format!("action {action} has no Cedar action"))
            })?;
            let names: Vec<String> = loaded
                .schema
                .resources_for_action(uid)
                .map(|it| it.map(ToString::to_string).collect())
                .unwrap_or_default();
            applies_to.push(
                ResourceKind::ALL
                    .iter()
                    .copied()
                    .filter(|k| names.iter().any(|n| n == k.as_str()))
                    .collect(),
            );
        }

        Ok(PolicyEngine {
            authorizer: Authorizer::new(),
            entities,
            slices,
            reasons: loaded.reasons,
            vocab,
            applies_to,
            identities: loaded.identities,
            cache: DecisionCache::new(DEFAULT_CACHE_CAPACITY),
            policy_count: loaded.policies.policies().count(),
        })
    }

    /// Resize the decision cache (entries per generation; 0 disables it).
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = DecisionCache::new(capacity);
        self
    }

    /// Decide one request. Never panics: anything unexpected (a malformed
    /// request, a policy evaluation error) denies.
    pub fn decide(&self, req: &AccessRequest<'_>) -> Decision {
        let facts = Facts::new(req, self.identities);
        if let Some(d) = self.cache.get(&facts) {
            return d;
        }
        let decision = self.decide_uncached(&facts);
        self.cache.insert(facts, decision.clone());
        decision
    }

    /// The policies that keep `class` of the record from the caller in clear, for the audit
    /// entry of a refusal made on that field (a write to a field the caller may not read, a
    /// file's content to a caller who sees case content masked): the satisfied forbids of
    /// reading it, else of unmasking it; none where no permit reached it. Worked out afresh, not
    /// kept in the cache: such refusals are rare, and cached decisions stay small.
    pub fn field_refusal_ids(&self, req: &AccessRequest<'_>, class: FieldClass) -> Vec<String> {
        let facts = Facts::new(req, self.identities);
        let (Some(context), Some((principal, resource))) = (
            self.vocab.context(&facts),
            self.vocab.principal_and_resource(&facts),
        ) else {
            return Vec::new();
        };
        for index in [read_index(class), unmask_index(class)] {
            let Some(response) = self.evaluate(index, &principal, &resource, &context) else {
                return Vec::new();
            };
            if let Outcome::Deny(_, ids) = self.outcome(&response) {
                return ids;
            }
        }
        Vec::new()
    }

    /// Number of policies loaded (built-in and extra).
    pub fn policy_count(&self) -> usize {
        self.policy_count
    }

    /// Whether some policy names a specific user, tenant or record, so that
    /// real ids are passed to Cedar (and decisions are cached per id).
    pub fn uses_identities(&self) -> bool {
        self.identities
    }

    /// Decisions currently cached.
    pub fn cached_decisions(&self) -> usize {
        self.cache.len()
    }

    /// Drop every cached decision.
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    fn decide_uncached(&self, facts: &Facts) -> Decision {
        let kind_ok = self
            .applies_to
            .get(facts.action.index())
            .is_some_and(|kinds| kinds.contains(&facts.kind));
        let (true, Some(context), Some((principal, resource))) = (
            kind_ok,
            self.vocab.context(facts),
            self.vocab.principal_and_resource(facts),
        ) else {
            return Decision::deny(Denial::Forbidden, Vec::new());
        };
        let eval = |index: usize| self.evaluate(index, &principal, &resource, &context);
        let allows = |index: usize| eval(index).is_some_and(|r| clean_allow(&r));

        let Some(response) = eval(facts.action.index()) else {
            return Decision::deny(Denial::Forbidden, Vec::new());
        };
        match self.outcome(&response) {
            Outcome::Deny(denial, ids) => Decision::deny(denial, ids),
            Outcome::Allow(policy_ids) => {
                let mut fields = FieldMask::none();
                if facts.action.is_content() {
                    for &class in FieldClass::ALL {
                        let v = if !allows(read_index(class)) {
                            Visibility::Withhold
                        } else if allows(unmask_index(class)) {
                            Visibility::Reveal
                        } else {
                            Visibility::Mask
                        };
                        fields.set(class, v);
                    }
                }
                Decision {
                    allowed: true,
                    denial: None,
                    fields,
                    policy_ids,
                }
            }
        }
    }

    fn evaluate(
        &self,
        index: usize,
        principal: &EntityUid,
        resource: &EntityUid,
        context: &Context,
    ) -> Option<Response> {
        let action = self.vocab.actions.get(index)?;
        let policies = self.slices.get(index)?;
        let request = Request::new(
            principal.clone(),
            action.clone(),
            resource.clone(),
            context.clone(),
            None,
        )
        .ok()?;
        Some(
            self.authorizer
                .is_authorized(&request, policies, &self.entities),
        )
    }

    /// Allow only on a clean Allow. A policy that fails to evaluate is
    /// skipped by Cedar, which for a forbid would let the request through:
    /// here any evaluation error denies.
    fn outcome(&self, response: &Response) -> Outcome {
        let mut ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| AsRef::<str>::as_ref(id).to_owned())
            .collect();
        ids.sort();
        let mut errored: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| match e {
                AuthorizationError::PolicyEvaluationError(e) => {
                    AsRef::<str>::as_ref(e.policy_id()).to_owned()
                }
            })
            .collect();
        errored.sort();
        match response.decision() {
            CedarDecision::Allow if errored.is_empty() => Outcome::Allow(ids),
            CedarDecision::Allow => Outcome::Deny(Denial::Forbidden, errored),
            CedarDecision::Deny => {
                let denial = response
                    .diagnostics()
                    .reason()
                    .filter_map(|id| self.reasons.get(id))
                    .min_by_key(|d| d.priority())
                    .copied()
                    .unwrap_or(Denial::Forbidden);
                ids.extend(errored);
                Outcome::Deny(denial, ids)
            }
        }
    }
}

/// Allowed, and no policy failed to evaluate.
fn clean_allow(response: &Response) -> bool {
    response.decision() == CedarDecision::Allow && response.diagnostics().errors().next().is_none()
}

/// Does a policy (as Cedar JSON) read the `action` variable in its conditions?
/// Errs on the side of yes when the JSON is missing.
fn mentions_action(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => true,
        Value::Object(map) => {
            map.get("Var").and_then(Value::as_str) == Some("action")
                || map.values().any(mentions_action)
        }
        Value::Array(items) => items.iter().any(mentions_action),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::{GrantFacts, PrincipalFacts, Purpose, ResourceFacts, Role, TenantFacts};

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_is_send_and_sync() {
        assert_send_sync::<PolicyEngine>();
    }

    /// The context `decide` builds conforms to the schema, for every action
    /// and every optional part present or absent.
    #[test]
    fn context_matches_schema() {
        let engine = PolicyEngine::load(None).unwrap();
        let schema = loader::load(None).unwrap().schema;
        let principal = PrincipalFacts {
            id: "u1".into(),
            roles: Role::ALL.to_vec(),
            tenant_id: Some("t1".into()),
            active: true,
            confidentiality_acknowledged: false,
        };
        let bare = PrincipalFacts {
            roles: vec![],
            tenant_id: None,
            ..principal.clone()
        };
        let tenant = TenantFacts {
            id: "t1".into(),
            active: true,
            allowed_purposes: Purpose::ALL.to_vec(),
            operator_access_requires_approval: true,
        };
        let mut checked = 0;
        for (i, &action) in Action::ALL.iter().enumerate() {
            for &kind in &engine.applies_to[i] {
                let mut full = ResourceFacts::new(kind, "r1", Some("t1".into()));
                full.grant = Some(GrantFacts {
                    id: "g1".into(),
                    field_classes: FieldClass::ALL.to_vec(),
                });
                full.target_roles = vec![Role::TenantUser];
                let empty = ResourceFacts::new(kind, "r1", None);
                for (p, r, t, purpose) in [
                    (
                        &principal,
                        &full,
                        Some(&tenant),
                        Some(Purpose::CaseResolution),
                    ),
                    (&bare, &empty, None, None),
                ] {
                    let req = AccessRequest {
                        principal: p,
                        action,
                        resource: r,
                        tenant: t,
                        purpose,
                    };
                    for identities in [false, true] {
                        let facts = Facts::new(&req, identities);
                        let ctx = engine.vocab.context(&facts).unwrap();
                        let (pu, ru) = engine.vocab.principal_and_resource(&facts).unwrap();
                        let indices = std::iter::once(i).chain(FIELD_BASE..CEDAR_ACTIONS);
                        for index in indices {
                            if index != i && !action.is_content() {
                                continue;
                            }
                            Request::new(
                                pu.clone(),
                                engine.vocab.actions[index].clone(),
                                ru.clone(),
                                ctx.clone(),
                                Some(&schema),
                            )
                            .unwrap_or_else(|e| panic!("{action} on {kind:?}: {e}"));
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "checked {checked}");
    }

    #[test]
    fn every_api_action_applies_to_some_kind() {
        let engine = PolicyEngine::load(None).unwrap();
        for (i, a) in Action::ALL.iter().enumerate() {
            assert!(!engine.applies_to[i].is_empty(), "{a}");
        }
        assert_eq!(Action::ALL.len(), FIELD_BASE);
    }

    #[test]
    fn builtins_do_not_name_identities() {
        assert!(!PolicyEngine::load(None).unwrap().uses_identities());
    }

    /// Slicing is an optimisation only: every policy lands in some slice, and
    /// a slice holds exactly the policies whose scope admits its action.
    #[test]
    fn slices_cover_every_policy() {
        let engine = PolicyEngine::load(None).unwrap();
        let all = loader::load(None).unwrap().policies;
        for p in all.policies() {
            assert!(
                engine.slices.iter().any(|s| s.policy(p.id()).is_some()),
                "{} is in no slice",
                p.id()
            );
        }
        let read_contact = &engine.slices[Action::ReadContact.index()];
        assert!(
            read_contact
                .policy(&PolicyId::new("guardrail.account_suspended"))
                .is_some()
        );
        assert!(
            read_contact
                .policy(&PolicyId::new("guardrail.lockbox.contact"))
                .is_some()
        );
        assert!(
            read_contact
                .policy(&PolicyId::new(loader::PURPOSE_NOT_FOR_ROLE))
                .is_some()
        );
        assert!(
            read_contact
                .policy(&PolicyId::new("role.platform_admin.administration"))
                .is_none()
        );
        let unmask_sensitive = &engine.slices[unmask_index(FieldClass::Sensitive)];
        let has = |id: &str| unmask_sensitive.policy(&PolicyId::new(id)).is_some();
        assert!(has("guardrail.fields.staff_no_sensitive"));
        assert!(has("role.tenant_admin.fields"));
        // mentions `action`, so it stays
        assert!(has("guardrail.tenant_inactive"));
        // content-only, or decided by the record action already
        assert!(!has("guardrail.purpose_required"));
        assert!(!has("guardrail.account_suspended"));
        assert!(!has("role.tenant_admin.content"));
        // scopes are dropped inside a slice
        for p in read_contact.policies() {
            assert!(
                matches!(p.action_constraint(), ActionConstraint::Any),
                "{}",
                p.id()
            );
        }
    }
}
