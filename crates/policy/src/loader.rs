//! Building the policy set: built-in schema and policies, plus an operator's
//! extra directory, all validated together in strict mode.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

use crate::model::Denial;

/// The Cedar schema every policy is validated against.
pub const SCHEMA: &str = include_str!("../schema.cedarschema");

/// Built-in policy files: `(file name, source)`.
pub const BUILTIN_POLICIES: &[(&str, &str)] = &[
    (
        "guardrails.cedar",
        include_str!("../policies/guardrails.cedar"),
    ),
    (
        "guardrails_fields.cedar",
        include_str!("../policies/guardrails_fields.cedar"),
    ),
    (
        "roles_customer.cedar",
        include_str!("../policies/roles_customer.cedar"),
    ),
    (
        "roles_staff.cedar",
        include_str!("../policies/roles_staff.cedar"),
    ),
    (
        "administration.cedar",
        include_str!("../policies/administration.cedar"),
    ),
];

/// Id prefix reserved for the built-in guardrails.
pub const GUARDRAIL_PREFIX: &str = "guardrail.";

/// The built-in guardrail that ties each purpose to the roles that may read for it: a caller can
/// ask which purposes a role may use by whether it fires.
pub const PURPOSE_NOT_FOR_ROLE: &str = "guardrail.purpose_not_for_role";

/// Why the policy set could not be loaded. Each variant names the file and,
/// where there is one, the policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("policy schema: {0}")]
    Schema(String),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: syntax error: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: policy {policy_id}: {message}")]
    Invalid {
        file: String,
        policy_id: String,
        message: String,
    },
    #[error("{file}: policy templates are not supported")]
    Template { file: String },
    #[error("{file}: policy id {policy_id} is already used by {other_file}")]
    DuplicateId {
        file: String,
        policy_id: String,
        other_file: String,
    },
}

/// A validated policy set and what `decide` needs to know about each policy.
pub(crate) struct Loaded {
    pub schema: Schema,
    pub policies: PolicySet,
    /// The denial each forbid stands for (`@reason`, default `forbidden`).
    pub reasons: HashMap<PolicyId, Denial>,
    /// Some policy may name a specific user, tenant or record, so real ids
    /// must reach Cedar (and the cache key).
    pub identities: bool,
}

pub(crate) fn load(extra_dir: Option<&Path>) -> Result<Loaded, PolicyError> {
    let (schema, _warnings) =
        Schema::from_cedarschema_str(SCHEMA).map_err(|e| PolicyError::Schema(e.to_string()))?;

    // (file named in errors, prefix of default policy ids, source, built-in)
    let mut files: Vec<(String, String, String, bool)> = BUILTIN_POLICIES
        .iter()
        .map(|(name, src)| {
            (
                (*name).to_owned(),
                (*name).to_owned(),
                (*src).to_owned(),
                true,
            )
        })
        .collect();
    if let Some(dir) = extra_dir {
        for (path, src) in read_extra_dir(dir)? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((path.display().to_string(), name, src, false));
        }
    }

    let mut policies = PolicySet::new();
    // policy id -> file it came from, for error messages
    let mut origin: HashMap<PolicyId, String> = HashMap::new();
    let mut reasons = HashMap::new();
    for (file, id_prefix, src, builtin) in &files {
        for policy in parse_file(file, id_prefix, src)? {
            let id = policy.id().clone();
            check_policy(file, &policy, *builtin)?;
            if let Some(other) = origin.get(&id) {
                return Err(PolicyError::DuplicateId {
                    file: file.clone(),
                    policy_id: id.to_string(),
                    other_file: other.clone(),
                });
            }
            if policy.effect() == Effect::Forbid {
                let reason = match policy.annotation("reason") {
                    Some(code) => Denial::from_code(code).ok_or_else(|| PolicyError::Invalid {
                        file: file.clone(),
                        policy_id: id.to_string(),
                        message: format!("@reason(\"{code}\") is not a denial code"),
                    })?,
                    None => Denial::Forbidden,
                };
                reasons.insert(id.clone(), reason);
            }
            policies.add(policy).map_err(|e| PolicyError::Invalid {
                file: file.clone(),
                policy_id: id.to_string(),
                message: e.to_string(),
            })?;
            origin.insert(id, file.clone());
        }
    }

    let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
    // Report every error of the first offending policy, naming its file.
    let mut by_policy: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in result.validation_errors() {
        by_policy
            .entry(e.policy_id().to_string())
            .or_default()
            .push(e.to_string());
    }
    if let Some((policy_id, messages)) = by_policy.into_iter().next() {
        let file = origin
            .get(&PolicyId::new(&policy_id))
            .cloned()
            .unwrap_or_default();
        // Cedar repeats an error once per action it applies to: the first
        // says what is wrong.
        let first = messages.first().cloned().unwrap_or_default();
        let more = match messages.len() {
            0 | 1 => String::new(),
            n => format!(" ({n} errors in all)"),
        };
        return Err(PolicyError::Invalid {
            file,
            policy_id,
            message: format!("fails strict validation: {first}{more}"),
        });
    }
    let mut identities = false;
    for p in policies.policies() {
        let json = p.to_json().map_err(|e| PolicyError::Invalid {
            file: origin.get(p.id()).cloned().unwrap_or_default(),
            policy_id: p.id().to_string(),
            message: e.to_string(),
        })?;
        identities |= names_identity(&json);
    }
    Ok(Loaded {
        schema,
        policies,
        reasons,
        identities,
    })
}

/// Entity types whose ids are identities (as opposed to the enumerations).
const IDENTITY_TYPES: &[&str] = &[
    "User",
    "Tenant",
    "Contact",
    "Case",
    "Comment",
    "AuditLog",
    "AccessRequest",
];

/// Does this policy (as Cedar JSON) name a specific user, tenant or record,
/// or look at the principal or resource beyond the scope's `is`?
/// Errs on the side of yes.
fn names_identity(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let entity_ref = map.get("id").is_some()
                && map
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| IDENTITY_TYPES.contains(&t.rsplit("::").next().unwrap_or(t)));
            let var = map
                .get("Var")
                .and_then(Value::as_str)
                .is_some_and(|v| v == "principal" || v == "resource");
            let scoped = ["principal", "resource"].iter().any(|k| {
                map.get(*k)
                    .and_then(|c| c.get("op"))
                    .and_then(Value::as_str)
                    .is_some_and(|op| op != "All" && op != "is")
            });
            entity_ref || var || scoped || map.values().any(names_identity)
        }
        Value::Array(items) => items.iter().any(names_identity),
        _ => false,
    }
}

/// Every `*.cedar` file directly in `dir`, in name order (deterministic ids).
fn read_extra_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>, PolicyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PolicyError::Io { path, source }
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "cedar") && path.is_file() {
            let src = std::fs::read_to_string(&path).map_err(io(&path))?;
            out.push((path, src));
        }
    }
    out.sort();
    Ok(out)
}

/// Parse one file; each policy is named by its `@id`, or `<file name>#<n>` without one.
fn parse_file(file: &str, id_prefix: &str, src: &str) -> Result<Vec<Policy>, PolicyError> {
    let set: PolicySet = src.parse().map_err(|e: cedar_policy::ParseErrors| {
        let message = e
            .iter()
            .map(|err| match err.labels().and_then(|mut l| l.next()) {
                Some(label) => {
                    let (line, col) = line_col(src, label.offset());
                    format!("line {line}, column {col}: {err}")
                }
                None => err.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        PolicyError::Parse {
            file: file.to_owned(),
            message,
        }
    })?;
    if set.templates().next().is_some() {
        return Err(PolicyError::Template {
            file: file.to_owned(),
        });
    }
    // `PolicySet::from_str` numbers policies "policy0", "policy1", ... in
    // source order; keep that order.
    let mut policies: Vec<(usize, Policy)> = set
        .policies()
        .map(|p| {
            let n = p
                .id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (n, p.clone())
        })
        .collect();
    policies.sort_by_key(|(n, _)| *n);
    Ok(policies
        .into_iter()
        .enumerate()
        .map(|(i, (_, p))| {
            let id = match p.annotation("id") {
                Some(id) => id.to_owned(),
                None => format!("{id_prefix}#{i}"),
            };
            p.new_id(PolicyId::new(id))
        })
        .collect())
}

/// Rules on ids and annotations that keep audit records trustworthy.
fn check_policy(file: &str, policy: &Policy, builtin: bool) -> Result<(), PolicyError> {
    let id = policy.id().to_string();
    let invalid = |message: &str| PolicyError::Invalid {
        file: file.to_owned(),
        policy_id: id.clone(),
        message: message.to_owned(),
    };
    let is_guardrail_id = id.starts_with(GUARDRAIL_PREFIX);
    if builtin {
        if policy.annotation("id").is_none() {
            return Err(invalid("built-in policies need an @id"));
        }
        if is_guardrail_id
            && (policy.effect() != Effect::Forbid || policy.annotation("reason").is_none())
        {
            return Err(invalid("a guardrail is a forbid with a @reason"));
        }
    } else if is_guardrail_id {
        return Err(invalid(
            "the guardrail. id prefix is reserved for built-in policies",
        ));
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
