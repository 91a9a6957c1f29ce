//! Field-level visibility, purposes, grants and the confidentiality gate.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(&SERVER, &[])
}

const FIELDS: [&str; 5] = ["name", "email", "phone", "address", "notes"];

/// One tenant with a fully filled contact and a case pointing at it.
struct World {
    admin: Session,
    tenant: String,
    boss: Session,
    contact: Value,
    case: Value,
}

async fn world(server: &Server, instructions: Option<Value>) -> World {
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, instructions).await;
    let boss = tenant_session(server, &admin, "tenant_admin", &tenant).await;
    let contact = create_contact(
        &boss,
        &tenant,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com",
               "phone": "+44 20 7946 0123", "address": "12 St James's Square, London",
               "notes": "prefers morning calls"}),
    )
    .await;
    let case = create_case(
        &boss,
        &tenant,
        json!({"title": "Engine stalls", "description": "Analytical engine stalls at step 7",
               "severity": "high", "product": "Engine", "contact_id": id_of(&contact)}),
    )
    .await;
    World {
        admin,
        tenant,
        boss,
        contact,
        case,
    }
}

impl World {
    fn contact_path(&self) -> String {
        contact_path(&self.tenant, &id_of(&self.contact))
    }
    fn case_path(&self) -> String {
        case_path(&self.tenant, &id_of(&self.case))
    }
}

fn access(v: &Value) -> (Vec<String>, Vec<String>) {
    (
        strings(&v["_access"]["masked"]),
        strings(&v["_access"]["withheld"]),
    )
}

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Checks a contact view against the original: revealed fields equal,
/// masked fields present but different (email keeps its first character
/// and domain), withheld fields absent, and `_access` exactly as expected.
#[track_caller]
fn assert_view(got: &Value, original: &Value, masked: &[&str], withheld: &[&str]) {
    assert_eq!(
        access(got),
        (list(masked), list(withheld)),
        "_access of {got}"
    );
    for field in FIELDS {
        let want = &original[field];
        if withheld.contains(&field) {
            assert!(got.get(field).is_none(), "withheld {field} present: {got}");
        } else if masked.contains(&field) {
            let value = got[field]
                .as_str()
                .unwrap_or_else(|| panic!("masked {field} not a string: {got}"));
            let clear = want.as_str().unwrap();
            assert_ne!(value, clear, "masked {field} shown in clear");
            assert!(!value.contains(clear), "masked {field} contains the value");
            if field == "email" {
                assert_masked_email(value, clear);
            }
        } else {
            assert_eq!(&got[field], want, "revealed {field}: {got}");
        }
    }
    assert_eq!(got["id"], original["id"]);
    assert_eq!(got["tenant_id"], original["tenant_id"]);
}

#[track_caller]
fn assert_masked_email(masked: &str, clear: &str) {
    let (local, domain) = clear.split_once('@').unwrap();
    let first = &local[..1];
    assert_eq!(
        masked,
        format!("{first}***@{domain}"),
        "masked email of {clear}"
    );
}

#[test]
fn masked_email_shape_check() {
    assert_masked_email("a***@example.com", "ada.lovelace@example.com");
    let bad =
        std::panic::catch_unwind(|| assert_masked_email("***@example.com", "ada@example.com"));
    assert!(bad.is_err());
}

#[tokio::test]
async fn tenant_admin_sees_everything() {
    let server = server();
    let w = world(&server, None).await;
    let got = w.boss.get(&w.contact_path()).await.ok(200);
    assert_view(&got, &w.contact, &[], &[]);
    let case = w.boss.get(&w.case_path()).await.ok(200);
    assert_eq!(access(&case), (vec![], vec![]));
    assert_eq!(case["title"], w.case["title"]);
    assert_eq!(case["description"], w.case["description"]);
}

#[tokio::test]
async fn tenant_user_sees_notes_masked() {
    let server = server();
    let w = world(&server, None).await;
    let user = tenant_session(&server, &w.boss, "tenant_user", &w.tenant).await;
    let got = user.get(&w.contact_path()).await.ok(200);
    assert_view(&got, &w.contact, &["notes"], &[]);
    // The same in lists and in search results.
    let items = list_items(&user, &contacts_path(&w.tenant)).await;
    assert_eq!(items.len(), 1);
    assert_view(&items[0], &w.contact, &["notes"], &[]);
    let path = format!(
        "{}?email={}",
        contacts_path(&w.tenant),
        urlencode("ada.lovelace@example.com")
    );
    let found = list_items(&user, &path).await;
    assert_eq!(found.len(), 1, "search: {found:?}");
    assert_view(&found[0], &w.contact, &["notes"], &[]);
}

/// A write to a field the caller sees only masked is refused, and its entry names the policy
/// that masks it, not the permit that let the caller at the record.
#[tokio::test]
async fn a_refused_field_write_names_the_field_policy() {
    // Its own server: the entry is looked for among the log's first 500.
    let server = Server::start();
    let w = world(&server, None).await;
    let user = tenant_session(&server, &w.boss, "tenant_user", &w.tenant).await;
    let refused = user
        .patch(&w.contact_path(), json!({"notes": "overwritten"}))
        .await;
    let request_id = refused.request_id().expect("request id").to_owned();
    refused.err(403, "forbidden");
    let auditor = staff_session(&server, &w.admin, "auditor").await;
    let entries = entries_with_action(&auditor, "contact.update").await;
    let entry = entries
        .iter()
        .find(|e| e["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no entry for the refused update: {entries:?}"));
    assert_eq!(entry["decision"], "deny", "{entry}");
    assert_eq!(
        entry["policy_ids"],
        json!(["guardrail.fields.customer_sensitive_admin_only"]),
        "{entry}"
    );
}

#[tokio::test]
async fn support_engineer_on_assigned_case() {
    let server = server();
    let w = world(&server, None).await;
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    let engineer = staff_session(&server, &w.admin, "support_engineer").await;
    let other = staff_session(&server, &w.admin, "support_engineer").await;

    // Unassigned: no access to the case nor its contact.
    engineer
        .get(&w.case_path())
        .await
        .err(403, "access_grant_required");
    engineer
        .get(&w.contact_path())
        .await
        .err(403, "access_grant_required");

    let assigned = assign(&supervisor, &w.tenant, &id_of(&w.case), &engineer.id).await;
    assert_eq!(assigned["assignee_id"].as_str(), Some(engineer.id.as_str()));

    let case = engineer.get(&w.case_path()).await.ok(200);
    assert_eq!(case["title"], w.case["title"]);
    assert_eq!(case["assignee_id"].as_str(), Some(engineer.id.as_str()));
    let got = engineer.get(&w.contact_path()).await.ok(200);
    assert_view(&got, &w.contact, &["phone", "address"], &["notes"]);
    assert_eq!(
        got["_access"],
        json!({"masked": ["phone", "address"], "withheld": ["notes"]})
    );
    let comment = add_comment(&engineer, &w.tenant, &id_of(&w.case), "looking into it").await;
    assert_eq!(comment["author_id"].as_str(), Some(engineer.id.as_str()));
    let comments = list_items(&engineer, &comments_path(&w.tenant, &id_of(&w.case))).await;
    assert_eq!(comments.len(), 1);

    // Another engineer still has no access.
    other
        .get(&w.case_path())
        .await
        .err(403, "access_grant_required");
    other
        .get(&w.contact_path())
        .await
        .err(403, "access_grant_required");
    other
        .get(&comments_path(&w.tenant, &id_of(&w.case)))
        .await
        .err(403, "access_grant_required");

    // The engineer cannot reach a contact that is not on its case.
    let stranger = create_contact(&w.boss, &w.tenant, json!({"name": "Charles Babbage"})).await;
    engineer
        .get(&contact_path(&w.tenant, &id_of(&stranger)))
        .await
        .err(403, "access_grant_required");
}

#[tokio::test]
async fn staff_page_through_the_contacts_they_reach_only() {
    let server = server();
    let w = world(&server, None).await;
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    let engineer = staff_session(&server, &w.admin, "support_engineer").await;
    // Contacts on both sides of the engineer's one in id order, none of them reachable.
    let mut strangers = Vec::new();
    for name in ["Charles Babbage", "Mary Somerville", "Augustus De Morgan"] {
        strangers.push(id_of(
            &create_contact(&w.boss, &w.tenant, json!({"name": name})).await,
        ));
    }
    assign(&supervisor, &w.tenant, &id_of(&w.case), &engineer.id).await;

    // Page by page, one at a time: neither the items nor the cursors name another contact.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("{}?limit=1&cursor={c}", contacts_path(&w.tenant)),
            None => format!("{}?limit=1", contacts_path(&w.tenant)),
        };
        let page = engineer.get(&path).await.ok(200);
        for item in page["items"].as_array().expect("items") {
            seen.push(id_of(item));
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(
                    !strangers.iter().any(|s| s == next),
                    "cursor {next} names a stranger"
                );
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen, vec![id_of(&w.contact)]);
    // The tenant's admin still pages through all of them.
    let all = list_items(&w.boss, &contacts_path(&w.tenant)).await;
    assert_eq!(all.len(), 4, "{all:?}");
}

#[tokio::test]
async fn non_support_staff_are_forbidden_on_content() {
    let server = server();
    let w = world(&server, None).await;
    ack_confidentiality(&w.admin).await;
    let auditor = staff_session(&server, &w.admin, "auditor").await;
    let marketing = staff_session(&server, &w.admin, "marketing").await;
    let admin = w.admin.with_purpose(Some("case-resolution"));
    let mut wrong = Vec::new();
    for (who, api) in [
        ("platform_admin", admin),
        ("auditor", auditor.api.clone()),
        ("marketing", marketing.api.clone()),
    ] {
        let mut answers = Vec::new();
        for path in [
            w.contact_path(),
            w.case_path(),
            contacts_path(&w.tenant),
            cases_path(&w.tenant),
            comments_path(&w.tenant, &id_of(&w.case)),
        ] {
            answers.push(api.get(&path).await);
        }
        answers.push(
            api.post(&contacts_path(&w.tenant), json!({"name": "x"}))
                .await,
        );
        for r in answers {
            assert_eq!(r.status, 403, "{who} {}: {}", r.what, r.text);
            if r.code() != Some("forbidden") {
                wrong.push(format!("{who} {} -> {:?}", r.what, r.code()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "expected 403 forbidden (API contract), got:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        list_items(&w.boss, &contacts_path(&w.tenant)).await.len(),
        1
    );
}

#[tokio::test]
async fn purpose_header_is_required_and_checked() {
    let server = server();
    let w = world(&server, None).await;
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    let engineer = staff_session(&server, &w.admin, "support_engineer").await;
    assign(&supervisor, &w.tenant, &id_of(&w.case), &engineer.id).await;

    for (who, api) in [
        ("tenant_admin", &w.boss.api),
        ("support_engineer", &engineer.api),
    ] {
        let bare = api.with_purpose(None);
        for path in [w.contact_path(), w.case_path()] {
            bare.get(&path).await.err(400, "purpose_required");
        }
        bare.post(&contacts_path(&w.tenant), json!({"name": "x"}))
            .await
            .err(400, "purpose_required");
        for purpose in ["marketing", "advertising"] {
            let r = api.with_purpose(Some(purpose)).get(&w.contact_path()).await;
            assert_eq!(
                r.code(),
                Some("purpose_not_permitted"),
                "{who} {purpose}: {}",
                r.text
            );
            r.err(403, "purpose_not_permitted");
        }
    }
    assert_eq!(
        list_items(&w.boss, &contacts_path(&w.tenant)).await.len(),
        1
    );
}

#[tokio::test]
async fn tenant_instructions_limit_purposes() {
    let server = server();
    let w = world(&server, None).await;
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    let engineer = staff_session(&server, &w.admin, "support_engineer").await;
    assign(&supervisor, &w.tenant, &id_of(&w.case), &engineer.id).await;
    engineer.get(&w.case_path()).await.ok(200);

    // The tenant withdraws case-resolution: the assignment no longer helps.
    let t = w
        .admin
        .patch(
            &format!("/v1/tenants/{}/instructions", w.tenant),
            json!({"allowed_purposes": ["customer-self-service"]}),
        )
        .await
        .ok(200);
    assert_eq!(
        strings(&t["instructions"]["allowed_purposes"]),
        list(&["customer-self-service"])
    );
    engineer
        .get(&w.case_path())
        .await
        .err(403, "purpose_not_permitted");
    engineer
        .get(&w.contact_path())
        .await
        .err(403, "purpose_not_permitted");
    // Customer self-service is unaffected.
    w.boss.get(&w.contact_path()).await.ok(200);

    // Loosening them again is the customer's decision, never the platform's.
    let widen = json!({"allowed_purposes": ["customer-self-service", "case-resolution"]});
    let instructions = format!("/v1/tenants/{}/instructions", w.tenant);
    w.admin
        .patch(&instructions, widen.clone())
        .await
        .err(403, "forbidden");
    engineer
        .get(&w.case_path())
        .await
        .err(403, "purpose_not_permitted");
    let t = w.boss.patch(&instructions, widen).await.ok(200);
    let allowed = strings(&t["instructions"]["allowed_purposes"]);
    assert!(allowed.contains(&"case-resolution".to_owned()), "{t}");
    engineer.get(&w.case_path()).await.ok(200);

    // Marketing can never be enabled.
    w.admin
        .patch(
            &format!("/v1/tenants/{}/instructions", w.tenant),
            json!({"allowed_purposes": ["marketing"]}),
        )
        .await
        .err(422, "validation_failed");
    let r = w
        .admin
        .post(
            "/v1/tenants",
            json!({"name": unique("t"), "instructions": {"allowed_purposes": ["advertising"]}}),
        )
        .await;
    r.err(422, "validation_failed");
}

#[tokio::test]
async fn tenant_defaults() {
    let server = server();
    let admin = server.admin().await;
    let t = admin
        .post("/v1/tenants", json!({"name": unique("defaults")}))
        .await
        .ok(201);
    assert_eq!(t["status"], "active");
    let i = &t["instructions"];
    let mut allowed = strings(&i["allowed_purposes"]);
    allowed.sort();
    assert_eq!(
        allowed,
        list(&[
            "account-management",
            "case-resolution",
            "customer-self-service",
            "data-subject-request",
            "legal-compliance",
            "security-investigation",
        ])
    );
    assert_eq!(i["retention_days"], 365);
    assert_eq!(i["operator_access_requires_approval"], false);
    assert_eq!(i["export_allowed"], true);
    assert_eq!(i["region"], "eu");
}

#[tokio::test]
async fn staff_need_the_confidentiality_acknowledgement() {
    let server = server();
    let w = world(&server, None).await;
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    let user = create_user(&w.admin, "support_engineer", None).await;
    let (api, _) = login(&server, &user.username, PASSWORD).await;
    let api = api.with_purpose(Some("case-resolution"));
    assign(&supervisor, &w.tenant, &id_of(&w.case), &user.id).await;

    api.get(&w.case_path())
        .await
        .err(403, "confidentiality_acknowledgement_required");
    api.get(&w.contact_path())
        .await
        .err(403, "confidentiality_acknowledgement_required");

    let agreement = api.get("/v1/confidentiality").await.ok(200);
    let version = agreement["version"].as_str().unwrap().to_owned();
    assert!(!agreement["text"].as_str().unwrap_or_default().is_empty());
    api.post(
        "/v1/me/confidentiality",
        json!({"version": format!("{version}-old")}),
    )
    .await
    .err(422, "validation_failed");
    api.get(&w.case_path())
        .await
        .err(403, "confidentiality_acknowledgement_required");

    let ack = api
        .post("/v1/me/confidentiality", json!({"version": version}))
        .await
        .ok(200);
    assert_eq!(ack["version"].as_str(), Some(version.as_str()));
    assert!(ack["acknowledged_at"].is_string());
    api.get(&w.case_path()).await.ok(200);

    // Customer users need no acknowledgement (tenant_session does none).
    let customer = tenant_session(&server, &w.boss, "tenant_user", &w.tenant).await;
    customer.get(&w.case_path()).await.ok(200);
}

#[tokio::test]
async fn security_investigation_masks_contact_identity() {
    // A staff user who is both engineer (so it can be assigned) and security
    // officer reads the contact for a security investigation: the officer's
    // ceiling masks identity, so the email shows its shape only.
    let server = server();
    let w = world(&server, None).await;
    let supervisor = staff_session(&server, &w.admin, "support_supervisor").await;
    let username = unique("officer");
    let created = w
        .admin
        .post(
            "/v1/users",
            json!({"username": username, "display_name": "Officer", "password": PASSWORD,
                   "roles": ["support_engineer", "security_officer"]}),
        )
        .await
        .ok(201);
    let officer = open_session(&server, &username, PASSWORD, "security_officer").await;
    assign(&supervisor, &w.tenant, &id_of(&w.case), &id_of(&created)).await;
    let investigating = officer.with_purpose(Some("security-investigation"));
    let got = investigating.get(&w.contact_path()).await.ok(200);
    assert_view(
        &got,
        &w.contact,
        &["name", "email", "phone", "address"],
        &["notes"],
    );
    assert_eq!(got["email"], "a***@example.com");
    // As an engineer (case-resolution) the same user sees identity in clear.
    let got = officer.get(&w.contact_path()).await.ok(200);
    assert_view(&got, &w.contact, &["phone", "address"], &["notes"]);
}
