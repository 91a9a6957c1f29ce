//! Strongroom's policy decision point.
//!
//! The rules live in Cedar (`policies/*.cedar`, validated against
//! `schema.cedarschema`); this crate only turns the facts the service layer
//! loaded into a Cedar request and reads the answer back. It knows nothing of
//! HTTP or storage.
//!
//! Field decisions: each field class has two Cedar actions, `read_<class>`
//! (visible, at least masked) and `unmask_<class>` (in clear), in the `field`
//! action group. They are evaluated with the same facts once the record action
//! itself is allowed (so every content guardrail has held); ceiling guardrails
//! on `field` cap what any permit, built-in or extra, may disclose.
//!
//! Speed: the policy set is sliced per Cedar action at load, and decisions are
//! cached under a key holding every fact that reaches Cedar. Ids reach Cedar
//! only when some policy names a specific user, tenant or record; otherwise
//! tenants become placeholders that keep only which ids are equal, so every
//! request with the same facts shares one cached decision.

mod bench;
mod cache;
mod engine;
mod facts;
mod loader;
mod model;

pub use bench::{BenchReport, DecisionTimes, Percentiles, bench_decisions};
pub use engine::{DEFAULT_CACHE_CAPACITY, PolicyEngine};
pub use loader::{BUILTIN_POLICIES, GUARDRAIL_PREFIX, PURPOSE_NOT_FOR_ROLE, PolicyError, SCHEMA};
pub use model::{
    AccessRequest, Action, Decision, Denial, FieldClass, FieldMask, GrantFacts, PrincipalFacts,
    Purpose, ResourceFacts, ResourceKind, Role, TenantFacts, UnknownName, Visibility,
};
