//! A timing helper the `strongroom bench` command can call.

use std::time::{Duration, Instant};

use crate::engine::PolicyEngine;
use crate::model::{
    AccessRequest, Action, FieldClass, GrantFacts, PrincipalFacts, Purpose, ResourceFacts,
    ResourceKind, Role, TenantFacts,
};

/// Median and 99th percentile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

/// Latencies of three kinds of decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecisionTimes {
    /// An allowed read of a whole record: the action plus its field mask
    /// (11 Cedar evaluations when not cached).
    pub record: Percentiles,
    /// A denied content request (one evaluation, no field mask).
    pub denied: Percentiles,
    /// An allowed administration action (one evaluation, no field mask).
    pub admin: Percentiles,
}

/// What [`bench_decisions`] measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BenchReport {
    pub samples: usize,
    /// Cache emptied before every decision: Cedar evaluation every time.
    pub uncached: DecisionTimes,
    /// Distinct principals, records and tenants with the same facts, as a list
    /// page produces: answered from the cache after the first.
    pub cached: DecisionTimes,
}

/// Time `n` decisions of each kind, uncached and cached. Clears the engine's
/// decision cache.
pub fn bench_decisions(engine: &PolicyEngine, n: usize) -> BenchReport {
    let n = n.max(1);
    let mut uncached = Samples::new(n);
    let mut cached = Samples::new(n);
    for i in 0..n {
        engine.clear_cache();
        uncached.run(engine, i);
    }
    engine.clear_cache();
    for i in 0..n {
        cached.run(engine, i);
    }
    engine.clear_cache();
    BenchReport {
        samples: n,
        uncached: uncached.finish(),
        cached: cached.finish(),
    }
}

struct Samples {
    record: Vec<Duration>,
    denied: Vec<Duration>,
    admin: Vec<Duration>,
}

impl Samples {
    fn new(n: usize) -> Self {
        Samples {
            record: Vec::with_capacity(n),
            denied: Vec::with_capacity(n),
            admin: Vec::with_capacity(n),
        }
    }

    /// Three decisions about the `i`-th distinct engineer, contact and tenant.
    fn run(&mut self, engine: &PolicyEngine, i: usize) {
        let tenant = TenantFacts {
            id: format!("tenant-{i}"),
            active: true,
            allowed_purposes: vec![Purpose::CaseResolution, Purpose::CustomerSelfService],
            operator_access_requires_approval: true,
        };
        let engineer = PrincipalFacts {
            id: format!("user-{i}"),
            roles: vec![Role::SupportEngineer],
            tenant_id: None,
            active: true,
            confidentiality_acknowledged: true,
        };
        let mut contact = ResourceFacts::new(
            ResourceKind::Contact,
            format!("contact-{i}"),
            Some(tenant.id.clone()),
        );
        contact.assigned_to_principal = true;
        contact.grant = Some(GrantFacts {
            id: format!("grant-{i}"),
            field_classes: vec![FieldClass::CaseContent, FieldClass::ContactIdentity],
        });
        fn read<'a>(
            p: &'a PrincipalFacts,
            r: &'a ResourceFacts,
            t: &'a TenantFacts,
        ) -> AccessRequest<'a> {
            AccessRequest {
                principal: p,
                action: Action::ReadContact,
                resource: r,
                tenant: Some(t),
                purpose: Some(Purpose::CaseResolution),
            }
        }
        self.record
            .push(time(|| engine.decide(&read(&engineer, &contact, &tenant))));
        contact.grant = None;
        self.denied
            .push(time(|| engine.decide(&read(&engineer, &contact, &tenant))));

        let admin = PrincipalFacts {
            roles: vec![Role::PlatformAdmin],
            ..engineer.clone()
        };
        let target = ResourceFacts::new(
            ResourceKind::Tenant,
            tenant.id.clone(),
            Some(tenant.id.clone()),
        );
        self.admin.push(time(|| {
            engine.decide(&AccessRequest {
                principal: &admin,
                action: Action::ReadTenant,
                resource: &target,
                tenant: Some(&tenant),
                purpose: None,
            })
        }));
    }

    fn finish(mut self) -> DecisionTimes {
        DecisionTimes {
            record: percentiles(&mut self.record),
            denied: percentiles(&mut self.denied),
            admin: percentiles(&mut self.admin),
        }
    }
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    std::hint::black_box(out);
    elapsed
}

fn percentiles(samples: &mut [Duration]) -> Percentiles {
    samples.sort_unstable();
    let at = |q: usize| {
        let i = samples.len().saturating_sub(1) * q / 100;
        samples.get(i).copied().unwrap_or_default()
    };
    Percentiles {
        p50: at(50),
        p99: at(99),
    }
}
