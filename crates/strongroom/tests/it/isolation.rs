//! Tenant isolation: another tenant's ids are invisible (404 not_found) on
//! every endpoint, and nothing of the other tenant changes.

use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(&SERVER, &[])
}

/// Tenant B's objects, as created by B's admin.
struct TenantB {
    tenant: String,
    admin: Session,
    user: NewUser,
    contact: Value,
    case: Value,
    email: String,
}

async fn tenant_b(server: &Server, admin: &Api) -> TenantB {
    let tenant = create_tenant(admin, None).await;
    let boss = tenant_session(server, admin, "tenant_admin", &tenant).await;
    let user = create_user(&boss, "tenant_user", Some(&tenant)).await;
    let email = format!("{}@example.org", unique("b"));
    let contact = create_contact(
        &boss,
        &tenant,
        json!({"name": "Bea B", "email": email, "phone": "+44 20 7946 0001",
               "address": "1 B Street", "notes": "B private"}),
    )
    .await;
    let case = create_case(
        &boss,
        &tenant,
        json!({"title": "B case", "description": "B only", "contact_id": id_of(&contact)}),
    )
    .await;
    add_comment(&boss, &tenant, &id_of(&case), "B comment").await;
    TenantB {
        tenant,
        admin: boss,
        user,
        contact,
        case,
        email,
    }
}

/// B's state as seen by B's admin, for before/after comparison.
async fn snapshot(b: &TenantB) -> Value {
    let (t, c, k) = (&b.tenant, id_of(&b.contact), id_of(&b.case));
    json!({
        "tenant": b.admin.get(&format!("/v1/tenants/{t}")).await.ok(200),
        "contact": b.admin.get(&contact_path(t, &c)).await.ok(200),
        "case": b.admin.get(&case_path(t, &k)).await.ok(200),
        "contacts": list_items(&b.admin, &contacts_path(t)).await,
        "cases": list_items(&b.admin, &cases_path(t)).await,
        "comments": list_items(&b.admin, &comments_path(t, &k)).await,
    })
}

/// Every request of `api` touching B's ids, under B's tenant path and under
/// the caller's own tenant path: each must be 404 not_found. Returns the
/// deviations (all of them, so one run shows the whole picture).
async fn probe_all(api: &Api, own: &str, b: &TenantB, who: &str) -> Vec<String> {
    let (bt, bc, bk) = (&b.tenant, id_of(&b.contact), id_of(&b.case));
    let mut probes: Vec<(Method, String, Option<Value>)> = Vec::new();
    for t in [bt.as_str(), own] {
        probes.extend([
            (Method::GET, contact_path(t, &bc), None),
            (
                Method::PATCH,
                contact_path(t, &bc),
                Some(json!({"name": "hijacked"})),
            ),
            (Method::DELETE, contact_path(t, &bc), None),
            (Method::GET, case_path(t, &bk), None),
            (
                Method::PATCH,
                case_path(t, &bk),
                Some(json!({"title": "hijacked"})),
            ),
            (Method::GET, comments_path(t, &bk), None),
            (
                Method::POST,
                comments_path(t, &bk),
                Some(json!({"body": "hijacked"})),
            ),
            (
                Method::POST,
                format!("{}/assign", case_path(t, &bk)),
                Some(json!({"user_id": b.user.id})),
            ),
        ]);
    }
    probes.extend([
        (Method::GET, format!("/v1/tenants/{bt}"), None),
        (
            Method::PATCH,
            format!("/v1/tenants/{bt}/instructions"),
            Some(json!({"retention_days": 1})),
        ),
        (Method::GET, contacts_path(bt), None),
        (Method::GET, cases_path(bt), None),
        (
            Method::GET,
            format!("{}?email={}", contacts_path(bt), urlencode(&b.email)),
            None,
        ),
        (
            Method::POST,
            contacts_path(bt),
            Some(json!({"name": "planted"})),
        ),
        (
            Method::POST,
            cases_path(bt),
            Some(json!({"title": "planted"})),
        ),
    ]);
    let mut wrong = Vec::new();
    for (method, path, body) in probes {
        let body = body.map_or(Body::None, Body::Json);
        let r = api.send(method.clone(), &path, body, &[]).await;
        if r.status == 404 && r.code() == Some("not_found") {
            r.err(404, "not_found");
        } else {
            let whose = if path.contains(own) {
                "A's path"
            } else {
                "B's path"
            };
            wrong.push(format!(
                "{who}: {method} {path} ({whose}) -> {} {}",
                r.status, r.text
            ));
        }
    }
    // Searching one's own tenant for B's email finds nothing.
    let found = list_items(
        api,
        &format!("{}?email={}", contacts_path(own), urlencode(&b.email)),
    )
    .await;
    assert!(
        found.is_empty(),
        "{who}: B's email found in own tenant: {found:?}"
    );
    wrong
}

#[tokio::test]
async fn tenant_admin_and_user_cannot_see_other_tenant() {
    let server = server();
    let admin = server.admin().await;
    let b = tenant_b(&server, &admin).await;
    let before = snapshot(&b).await;

    let a = create_tenant(&admin, None).await;
    let a_admin = tenant_session(&server, &admin, "tenant_admin", &a).await;
    let a_user = tenant_session(&server, &a_admin, "tenant_user", &a).await;
    // A has data of its own, so "own tenant path" probes hit a real tenant.
    create_contact(&a_admin, &a, json!({"name": "Alice A"})).await;
    // Members see their own tenant.
    for s in [&a_admin, &a_user] {
        let t = s.get(&format!("/v1/tenants/{a}")).await.ok(200);
        assert_eq!(t["id"], json!(a));
    }

    let mut wrong = probe_all(&a_admin, &a, &b, "tenant_admin of A").await;
    wrong.extend(probe_all(&a_user, &a, &b, "tenant_user of A").await);

    let after = snapshot(&b).await;
    assert_eq!(before, after, "tenant B changed");
    assert!(
        wrong.is_empty(),
        "expected 404 not_found for tenant B's ids, got:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn other_tenant_ids_in_bodies_are_rejected() {
    let server = server();
    let admin = server.admin().await;
    let b = tenant_b(&server, &admin).await;
    let before = snapshot(&b).await;
    let a = create_tenant(&admin, None).await;
    let a_admin = tenant_session(&server, &admin, "tenant_admin", &a).await;

    // A case of A cannot point at B's contact.
    let r = a_admin
        .post(
            &cases_path(&a),
            json!({"title": "x", "contact_id": id_of(&b.contact)}),
        )
        .await;
    r.err(422, "validation_failed");
    assert_eq!(r.fields(), vec!["contact_id".to_owned()]);
    assert!(list_items(&a_admin, &cases_path(&a)).await.is_empty());

    // A's admin cannot see B's users or create users in B.
    a_admin
        .get(&format!("/v1/users/{}", b.user.id))
        .await
        .err(404, "not_found");
    a_admin
        .get(&format!("/v1/users/{}", b.admin.id))
        .await
        .err(404, "not_found");
    let r = a_admin
        .post(
            "/v1/users",
            json!({"username": unique("intruder"), "display_name": "X",
                   "password": PASSWORD, "roles": ["tenant_admin"], "tenant_id": b.tenant}),
        )
        .await;
    assert!(
        matches!(r.status.as_u16(), 403 | 404),
        "tenant_admin of A created a user in B: {} {}",
        r.status,
        r.text
    );
    assert_eq!(before, snapshot(&b).await, "tenant B changed");
}

#[tokio::test]
async fn unknown_and_foreign_ids_answer_alike() {
    // The 404 for B's id is byte-for-byte the same shape as for a random id.
    let server = server();
    let admin = server.admin().await;
    let b = tenant_b(&server, &admin).await;
    let a = create_tenant(&admin, None).await;
    let a_admin = tenant_session(&server, &admin, "tenant_admin", &a).await;
    let foreign = a_admin
        .get(&contact_path(&b.tenant, &id_of(&b.contact)))
        .await;
    let random = a_admin.get(&contact_path(&b.tenant, &unique("nope"))).await;
    foreign.err(404, "not_found");
    random.err(404, "not_found");
    assert_eq!(
        foreign.body["error"]["message"], random.body["error"]["message"],
        "messages differ between a foreign and a missing id"
    );
}
