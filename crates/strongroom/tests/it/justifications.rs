//! What an audit entry may hold of what the caller says: `Access-Justification` is recorded only
//! as a reference (a case or ticket number), never as text that could carry personal data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::kit::*;
use crate::lockbox::access_log;
/// `Access-Justification` reaches the log only as a reference: a case number is recorded as sent
/// (for the auditor and in the tenant's access log); prose, which could name a person, and other
/// shapes are refused with 400 before anything is read or written, and appear nowhere in the log.
#[tokio::test]
async fn justifications_are_recorded_as_references_and_prose_is_refused() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    let contact = id_of(&create_contact(&boss, &tenant, json!({"name": "Justified Reader"})).await);
    let path = contact_path(&tenant, &contact);

    let reference = format!("CASE-12{}/a.b_c:{}", rand_hex(4), rand_hex(2));
    let read = boss
        .send(
            reqwest::Method::GET,
            &path,
            Body::None,
            &[("Access-Justification", &format!("  {reference} "))],
        )
        .await;
    let read_id = read.request_id().unwrap().to_owned();
    assert_eq!(read.ok(200)["id"], contact.as_str());

    let canary = format!("CANARY-{}", rand_hex(8));
    let refused = [
        format!("Jane Doe ({canary}) called about her order"),
        format!("{canary}@example.com"),
        format!("+44 {canary}"),
        format!("-{canary}"),
        "ab".to_owned(),
        // Reference-shaped but no number: a name.
        "jane.doe".to_owned(),
        // Reference-shaped, but a card's or a phone's number.
        "4111-1111-1111-1111".to_owned(),
        "07700-900123".to_owned(),
        format!("{canary}{}", "x".repeat(64)),
    ];
    let contacts_before = list_items(&boss, &contacts_path(&tenant)).await.len();
    let mut refused_ids = Vec::new();
    for justification in &refused {
        let headers = [("Access-Justification", justification.as_str())];
        let read = boss
            .send(reqwest::Method::GET, &path, Body::None, &headers)
            .await;
        read.err(400, "invalid_request");
        assert!(!read.text.contains(&canary), "{}", read.text);
        refused_ids.push(read.request_id().unwrap().to_owned());
        let create = boss
            .send(
                reqwest::Method::POST,
                &contacts_path(&tenant),
                Body::Json(json!({"name": "Never Written"})),
                &headers,
            )
            .await;
        create.err(400, "invalid_request");
        refused_ids.push(create.request_id().unwrap().to_owned());
    }
    assert_eq!(
        list_items(&boss, &contacts_path(&tenant)).await.len(),
        contacts_before,
        "a refused justification must not let the write through"
    );

    let page = auditor
        .get("/v1/audit/entries?start=0&limit=500")
        .await
        .ok(200);
    let items = page["items"].as_array().unwrap();
    let mut recorded = 0;
    for item in items {
        let leaf = STANDARD.decode(item["leaf"].as_str().unwrap()).unwrap();
        let text = String::from_utf8(leaf).unwrap();
        assert!(
            !text.contains(&canary),
            "a refused justification was logged: {text}"
        );
        let entry = &item["entry"];
        let request_id = entry["request_id"].as_str().unwrap();
        assert!(
            !refused_ids.iter().any(|id| id == request_id),
            "a refused request was acted on: {entry}"
        );
        if request_id == read_id {
            assert_eq!(entry["action"], "contact.read", "{entry}");
            assert_eq!(entry["justification"], reference.as_str(), "{entry}");
            recorded += 1;
        } else {
            assert!(
                entry["justification"].is_null(),
                "only the justified read carries a justification: {entry}"
            );
        }
    }
    assert_eq!(recorded, 1, "the justified read's entry");

    let shown = access_log(&boss, &tenant)
        .await
        .iter()
        .filter(|i| i["entry"]["request_id"] == read_id.as_str())
        .map(|i| i["entry"]["justification"].clone())
        .collect::<Vec<_>>();
    assert_eq!(
        shown,
        vec![json!(reference)],
        "the tenant sees the reference"
    );
}
