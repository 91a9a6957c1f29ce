//! The lockbox notification job: warns tenants of grants about to end and delivers the outbox as
//! Standard Webhooks, retrying with exponential backoff. It runs beside the API and never holds
//! up an access decision; a failed delivery only shows in the notification list.

use std::sync::Arc;
use std::time::Duration;

use strongroom_core::Vault;
use strongroom_core::service_types::WebhookDelivery;

/// Deliveries per tick; the rest wait for the next one.
const BATCH: u32 = 64;

pub fn spawn(vault: &Arc<Vault>) {
    let interval_ms = vault.settings().webhook_poll_interval_ms;
    if interval_ms == 0 {
        return;
    }
    let timeout = Duration::from_millis(vault.settings().webhook_timeout_ms.max(1));
    // No redirects: a webhook goes to the configured URL and nowhere else.
    let http = match reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("strongroom-webhooks")
        .build()
    {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(error = %err, "webhook client unavailable; notifications stay queued");
            return;
        }
    };
    let vault = Arc::clone(vault);
    tokio::spawn(async move {
        let period = Duration::from_millis(interval_ms);
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Held past a usual round of deliveries, so another instance rarely sends the same ones
        // (delivery is at least once; receivers deduplicate by notification id), and taken over
        // within a minute when this instance stops.
        let hold = period.max(Duration::from_secs(60));
        loop {
            ticks.tick().await;
            if !vault.claim_job("webhooks", hold).await {
                continue;
            }
            if let Err(err) = vault.notify_expiring_grants().await {
                tracing::error!(error = %err.message, "grant expiry warnings failed");
            }
            let due = match vault.due_webhooks(BATCH).await {
                Ok(due) => due,
                Err(err) => {
                    tracing::error!(error = %err.message, "loading due webhooks failed");
                    continue;
                }
            };
            for delivery in due {
                let status = send(&http, &delivery).await;
                if let Err(err) = vault.webhook_attempted(&delivery, status).await {
                    tracing::error!(error = %err.message, "recording a webhook attempt failed");
                }
            }
        }
    });
}

/// One attempt; the HTTP status, or None when no answer came. Logs carry the notification id only
/// (never the URL, which the tenant chose).
async fn send(http: &reqwest::Client, d: &WebhookDelivery) -> Option<u16> {
    let result = http
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.notification_id)
        .header("webhook-timestamp", d.timestamp.to_string())
        .header("webhook-signature", &d.signature)
        .body(d.body.clone())
        .send()
        .await;
    match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            tracing::info!(notification = %d.notification_id, status, "webhook attempt");
            Some(status)
        }
        Err(_) => {
            tracing::warn!(notification = %d.notification_id, "webhook attempt got no answer");
            None
        }
    }
}
