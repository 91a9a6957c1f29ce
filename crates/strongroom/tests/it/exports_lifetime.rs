//! How long an export stays downloadable: its own window and sweep, and never longer than the
//! access it was built under (a role change, a reassignment or a relink of the case).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::exports::{SERVER, World, export_path, exports_path, key_pair, records_scope, world};
use crate::kit::*;

/// The engineer's export of the records of `kinds` they reach, ready at once; its id.
async fn engineers_export(w: &World, kinds: &[&str]) -> String {
    let (_, recipient) = key_pair();
    let body = json!({"scope": records_scope(kinds), "recipient": recipient});
    let export = w
        .engineer
        .post(&exports_path(&w.tenant), body)
        .await
        .ok(201);
    assert_eq!(export["state"], "ready", "{export}");
    id_of(&export)
}

#[tokio::test]
async fn an_export_cannot_be_downloaded_after_its_time_and_its_ciphertext_is_swept() {
    let server = Server::start_with(
        &[
            ("STRONGROOM_EXPORT_DOWNLOAD_TTL_SECS", "2"),
            ("STRONGROOM_EXPORT_SWEEP_INTERVAL_SECS", "1"),
        ],
        &[],
    );
    let platform = server.admin().await;
    let tenant = create_tenant(&platform, None).await;
    let admin = tenant_session(&server, &platform, "tenant_admin", &tenant).await;
    create_contact(&admin, &tenant, json!({"name": "Short lived"})).await;
    let (_, recipient) = key_pair();
    let body = json!({"scope": records_scope(&["contacts"]), "recipient": recipient});

    let first = admin
        .post(&exports_path(&tenant), body.clone())
        .await
        .ok(201);
    let swept = admin.post(&exports_path(&tenant), body).await.ok(201);
    let created = Instant::now();
    // Wait out the TTL (measured from before the exports were created, so it has surely passed).
    tokio::time::sleep_until((created + Duration::from_millis(2_500)).into()).await;
    let first_id = first["id"].as_str().unwrap();
    let late = admin
        .get(&export_path(&tenant, first_id, "/download"))
        .await;
    late.err(404, "not_found");
    assert!(late.text.contains("expired"), "{}", late.text);
    let seen = admin.get(&export_path(&tenant, first_id, "")).await.ok(200);
    assert_eq!(seen["state"], "expired");

    // The other one is never asked for: the sweep drops it.
    let swept_id = swept["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = admin.get(&export_path(&tenant, swept_id, "")).await.ok(200);
        if v["state"] == "expired" {
            break;
        }
        assert!(Instant::now() < deadline, "not swept: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn an_export_ends_with_the_access_it_was_built_from() {
    let server = shared(&SERVER, &[]);
    let w = world(&server).await;
    let platform = server.admin().await;
    let id = engineers_export(&w, &["cases"]).await;

    // Moved to marketing: the content read as an engineer is no longer the user's to take.
    platform
        .patch(
            &format!("/v1/users/{}", w.engineer.id),
            json!({"roles": ["marketing"]}),
        )
        .await
        .ok(200);
    let (again, _) = login(&server, &w.engineer.username, PASSWORD).await;
    let again = again.with_purpose(Some("case-resolution"));
    again
        .get(&export_path(&w.tenant, &id, "/download"))
        .await
        .err(404, "not_found");
    let seen = w.admin.get(&export_path(&w.tenant, &id, "")).await.ok(200);
    assert_eq!(seen["state"], "expired", "{seen}");
}

#[tokio::test]
async fn reassigning_the_case_ends_the_previous_assignees_exports() {
    let server = shared(&SERVER, &[]);
    let w = world(&server).await;
    let platform = server.admin().await;
    let supervisor = staff_session(&server, &platform, "support_supervisor").await;
    let successor = staff_session(&server, &platform, "support_engineer").await;
    let id = engineers_export(&w, &["cases"]).await;
    let download = export_path(&w.tenant, &id, "/download");

    // Assigned again to the same engineer: nothing is lost.
    assign(&supervisor, &w.tenant, &w.case, &w.engineer.id).await;
    let (status, _, _) = w.engineer.get_bytes(&download).await;
    assert_eq!(status.as_u16(), 200, "the assignee keeps the export");

    // Handed to a colleague: what the engineer exported through the case is no longer theirs.
    assign(&supervisor, &w.tenant, &w.case, &successor.id).await;
    let gone = w.engineer.get(&download).await;
    gone.err(404, "not_found");
    let seen = w.admin.get(&export_path(&w.tenant, &id, "")).await.ok(200);
    assert_eq!(seen["state"], "expired", "{seen}");
}

#[tokio::test]
async fn relinking_the_case_ends_the_exports_made_through_it() {
    let server = shared(&SERVER, &[]);
    let w = world(&server).await;
    let id = engineers_export(&w, &["contacts"]).await;
    let download = export_path(&w.tenant, &id, "/download");
    let case = case_path(&w.tenant, &w.case);

    // Linked again to the same contact: nothing is lost.
    w.admin
        .patch(&case, json!({"contact_id": w.contact}))
        .await
        .ok(200);
    let (status, _, _) = w.engineer.get_bytes(&download).await;
    assert_eq!(
        status.as_u16(),
        200,
        "the engineer still reaches the contact"
    );

    // Pointed at another contact: the one exported is no longer the engineer's to take.
    let elsewhere = id_of(&create_contact(&w.admin, &w.tenant, json!({"name": "Elsewhere"})).await);
    w.admin
        .patch(&case, json!({"contact_id": elsewhere}))
        .await
        .ok(200);
    w.engineer.get(&download).await.err(404, "not_found");
    let seen = w.admin.get(&export_path(&w.tenant, &id, "")).await.ok(200);
    assert_eq!(seen["state"], "expired", "{seen}");
}

#[tokio::test]
async fn a_new_confidentiality_agreement_holds_back_staff_exports_until_acknowledged() {
    let server = Server::start_with(&[("STRONGROOM_CONFIDENTIALITY_VERSION", "2026-01")], &[]);
    let w = world(&server).await;
    let id = engineers_export(&w, &["cases"]).await;
    let download = export_path(&w.tenant, &id, "/download");

    let (server, engineer) = server.restart_with_agreement("2026-02", &w.engineer).await;
    engineer
        .get(&download)
        .await
        .err(403, "confidentiality_acknowledgement_required");
    // Held back, not ended: the export is still there once the new agreement is acknowledged.
    engineer
        .post("/v1/me/confidentiality", json!({"version": "2026-02"}))
        .await
        .ok(200);
    let (status, _, bytes) = engineer.get_bytes(&download).await;
    assert_eq!(status.as_u16(), 200);
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    assert!(server.stop().await.success());
}

/// Erasing a record ends the exports still holding it: a contact deleted on a data subject's
/// request leaves no export of it to download. Exports that do not hold it are kept.
#[tokio::test]
async fn erasing_a_contact_ends_the_exports_holding_it() {
    let server = shared(&SERVER, &[]);
    let w = world(&server).await;
    let (_, recipient) = key_pair();
    let holding = w
        .admin
        .post(
            &exports_path(&w.tenant),
            json!({"scope": records_scope(&["contacts"]), "recipient": recipient}),
        )
        .await
        .ok(201);
    let holding = id_of(&holding);
    let not_holding = engineers_export(&w, &["comments"]).await;

    w.admin
        .delete(&contact_path(&w.tenant, &w.contact))
        .await
        .ok(204);
    let ended = w
        .admin
        .get(&export_path(&w.tenant, &holding, ""))
        .await
        .ok(200);
    assert_eq!(ended["state"], "expired", "{ended}");
    w.admin
        .get(&export_path(&w.tenant, &holding, "/download"))
        .await
        .err(404, "not_found");
    let kept = w
        .admin
        .get(&export_path(&w.tenant, &not_holding, ""))
        .await
        .ok(200);
    assert_eq!(kept["state"], "ready", "{kept}");
    let (status, _, _) = w
        .engineer
        .get_bytes(&export_path(&w.tenant, &not_holding, "/download"))
        .await;
    assert_eq!(status.as_u16(), 200);
}
