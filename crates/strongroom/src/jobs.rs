//! The server's background jobs. Each is idempotent and judges from the data, so a missed or
//! repeated run changes nothing; each logs counts only, never personal data.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use strongroom_core::Vault;

/// Starts every periodic job of a serving vault.
pub fn spawn_all(vault: &Arc<Vault>) {
    let settings = vault.settings();
    every(
        vault,
        "inactivity-sweep",
        settings.inactivity_sweep_interval_secs,
        |v| async move {
            match v
                .sweep_inactive_unattended(None, false, "job.inactivity-sweep")
                .await
            {
                Ok(report) => tracing::info!(
                    suspended = report.suspended.len(),
                    warned = report.warned.len(),
                    "inactivity sweep"
                ),
                Err(err) => tracing::error!(error = %err.message, "inactivity sweep failed"),
            }
        },
    );
    every(
        vault,
        "export-sweep",
        settings.export_sweep_interval_secs,
        |v| async move {
            match v.sweep_expired_exports("job.export-sweep").await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "export sweep"),
                Err(err) => tracing::error!(error = %err.message, "export sweep failed"),
            }
        },
    );
    every(
        vault,
        "retention-purge",
        settings.retention_sweep_interval_secs,
        |v| async move {
            match v
                .purge_expired_unattended(None, false, "job.retention-purge")
                .await
            {
                Ok(report) => tracing::info!(purged = report.purged.len(), "retention purge"),
                Err(err) => tracing::error!(error = %err.message, "retention purge failed"),
            }
        },
    );
    spawn_key_job(vault);
    spawn_breach_watch(vault);
    spawn_keyring_eviction(vault);
}

/// On a shared store, drops cached tenant keyrings once they expire, on every instance: a tenant
/// shredded on another instance leaves no unwrapped keys in this one's memory, even if nothing
/// here asks for it again.
fn spawn_keyring_eviction(vault: &Arc<Vault>) {
    let Some(max_age) = vault.keyring_max_age() else {
        return;
    };
    // Twice an age, so that no ring outlives it by more than half of one; at most once a second
    // (a zero age expires every ring at its next use anyway).
    let period = (max_age / 2).max(Duration::from_secs(1));
    let Some(mut ticks) = ticks_after(period, "keyring-eviction") else {
        return;
    };
    let vault = Arc::downgrade(vault);
    tokio::spawn(async move {
        loop {
            ticks.tick().await;
            let Some(vault) = vault.upgrade() else {
                return;
            };
            let evicted = vault.evict_expired_keyrings();
            if evicted > 0 {
                tracing::debug!(evicted, "expired tenant keyrings dropped");
            }
        }
    });
}

/// Ticks every `period`, the first one `period` from now. A period the clock cannot reach (a
/// configuration of centuries) means the job never runs: said once, rather than a panic.
fn ticks_after(period: Duration, job: &'static str) -> Option<tokio::time::Interval> {
    let first = tokio::time::Instant::now().checked_add(period);
    if first.is_none() {
        tracing::warn!(
            job,
            "the job's interval is beyond the clock's range; it will not run"
        );
    }
    first.map(|start| tokio::time::interval_at(start, period))
}

/// Runs `job` every `secs` seconds, the first time one period after start; 0 turns it off. With
/// several instances on one store, one of them runs it per period (the job lease `name`).
fn every<F, Fut>(vault: &Arc<Vault>, name: &'static str, secs: u64, job: F)
where
    F: Fn(Arc<Vault>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if secs == 0 {
        return;
    }
    let vault = Arc::clone(vault);
    tokio::spawn(async move {
        let period = Duration::from_secs(secs);
        let Some(mut ticks) = ticks_after(period, name) else {
            return;
        };
        loop {
            ticks.tick().await;
            // Short of a period, so the holder's own next tick finds it lapsed or renews it.
            if vault.claim_job(name, period.mul_f64(0.9)).await {
                job(Arc::clone(&vault)).await;
            }
        }
    });
}

/// Re-encrypts ciphertext under older key versions: at start (which resumes a run cut short by a
/// crash: progress is in the data), right after each rotation, and every configured interval.
fn spawn_key_job(vault: &Arc<Vault>) {
    let secs = vault.settings().key_job_interval_secs;
    if secs == 0 {
        return;
    }
    let vault = Arc::clone(vault);
    let hold = Duration::from_secs(secs).mul_f64(0.9);
    tokio::spawn(async move {
        loop {
            if !vault.claim_job("reencrypt", hold).await {
                vault
                    .reencryption_requested(Duration::from_secs(secs))
                    .await;
                continue;
            }
            match vault.reencrypt_all("job.reencrypt").await {
                Ok(report)
                    if report.rows_reencrypted > 0 || !report.versions_retired.is_empty() =>
                {
                    tracing::info!(
                        rows = report.rows_reencrypted,
                        retired = report.versions_retired.len(),
                        "re-encryption"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err.message, "re-encryption failed"),
            }
            vault
                .reencryption_requested(Duration::from_secs(secs))
                .await;
        }
    });
}

/// Reads the audit log as it grows for the patterns of a breach (see `strongroom_core::watch`).
/// With several instances one holds the lease and keeps the windows; the others wait.
fn spawn_breach_watch(vault: &Arc<Vault>) {
    let ms = vault.settings().watch_interval_ms;
    if ms == 0 {
        return;
    }
    let vault = Arc::clone(vault);
    let period = Duration::from_millis(ms);
    // Renewed by the holder every pass; another instance takes over this long after it stops.
    let hold = period.saturating_mul(5).max(Duration::from_secs(5));
    tokio::spawn(async move {
        let Some(mut ticks) = ticks_after(period, "breach_watch") else {
            return;
        };
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticks.tick().await;
            if !vault.claim_job("breach-watch", hold).await {
                continue;
            }
            match vault.watch_audit_log("job.breach-watch").await {
                Ok(report) => {
                    failing = false;
                    if !report.opened.is_empty() || report.extended > 0 {
                        tracing::warn!(
                            read = report.read,
                            opened = report.opened.len(),
                            extended = report.extended,
                            "breach watch"
                        );
                    }
                }
                // Once per stretch of failures: a pass retries every period.
                Err(err) if !failing => {
                    failing = true;
                    tracing::error!(error = %err.message, "breach watch failed; retrying");
                }
                Err(_) => {}
            }
        }
    });
}
