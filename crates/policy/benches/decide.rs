//! `cargo bench -p strongroom-policy`: decision latency percentiles.

use strongroom_policy::{DecisionTimes, PolicyEngine, bench_decisions};

fn main() {
    let engine = match PolicyEngine::load(None) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("loading policies: {e}");
            std::process::exit(1);
        }
    };
    let n = std::env::var("BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let _ = bench_decisions(&engine, n / 10); // warm-up
    let r = bench_decisions(&engine, n);
    println!(
        "policies loaded: {}, samples per kind: {}",
        engine.policy_count(),
        r.samples
    );
    print("uncached", &r.uncached);
    print("cached", &r.cached);
}

fn print(label: &str, t: &DecisionTimes) {
    println!(
        "{label:>9}: record read + field mask p50 {:>9.2?} p99 {:>9.2?} | denied p50 {:>9.2?} p99 {:>9.2?} | admin p50 {:>9.2?} p99 {:>9.2?}",
        t.record.p50, t.record.p99, t.denied.p50, t.denied.p99, t.admin.p50, t.admin.p99
    );
}
