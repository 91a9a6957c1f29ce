//! Bad input is refused with the right error, and nothing is written.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(&SERVER, &[("STRONGROOM_MAX_BODY_BYTES", "4096")])
}

struct Setup {
    tenant: String,
    boss: Session,
    contact: Value,
    case: Value,
}

async fn setup(server: &Server) -> Setup {
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(server, &admin, "tenant_admin", &tenant).await;
    let contact = create_contact(&boss, &tenant, json!({"name": "Base Contact"})).await;
    let case = create_case(
        &boss,
        &tenant,
        json!({"title": "Base case", "contact_id": id_of(&contact)}),
    )
    .await;
    Setup {
        tenant,
        boss,
        contact,
        case,
    }
}

impl Setup {
    /// Everything in the tenant, to prove that refused requests wrote nothing.
    async fn state(&self) -> Value {
        let case = id_of(&self.case);
        json!({
            "contacts": list_items(&self.boss, &contacts_path(&self.tenant)).await,
            "cases": list_items(&self.boss, &cases_path(&self.tenant)).await,
            "comments": list_items(&self.boss, &comments_path(&self.tenant, &case)).await,
        })
    }
}

#[tokio::test]
async fn malformed_unknown_field_and_wrong_type() {
    let server = server();
    let s = setup(&server).await;
    let before = s.state().await;
    let contacts = contacts_path(&s.tenant);
    let contact = contact_path(&s.tenant, &id_of(&s.contact));
    let cases = cases_path(&s.tenant);
    let raw = |b: &str| Body::Raw(b.to_owned());
    let probes: Vec<(Method, String, Body)> = vec![
        (Method::POST, contacts.clone(), raw(r#"{"name": "#)),
        (Method::POST, contacts.clone(), raw("not json at all")),
        (Method::POST, contacts.clone(), raw("")),
        (Method::POST, contacts.clone(), raw(r#"["name"]"#)),
        (
            Method::POST,
            contacts.clone(),
            Body::Json(json!({"name": "x", "nickname": "y"})),
        ),
        (
            Method::POST,
            contacts.clone(),
            Body::Json(json!({"name": 42})),
        ),
        (
            Method::POST,
            contacts.clone(),
            Body::Json(json!({"name": "x", "email": ["a@b.c"]})),
        ),
        (Method::PATCH, contact.clone(), raw(r#"{"name": "x""#)),
        (
            Method::PATCH,
            contact.clone(),
            Body::Json(json!({"name": true})),
        ),
        (
            Method::POST,
            cases.clone(),
            Body::Json(json!({"title": "t", "colour": "red"})),
        ),
        (
            Method::POST,
            cases.clone(),
            Body::Json(json!({"title": ["t"]})),
        ),
        (
            Method::POST,
            comments_path(&s.tenant, &id_of(&s.case)),
            Body::Json(json!({"body": 7})),
        ),
        (
            Method::POST,
            "/v1/auth/login".to_owned(),
            Body::Json(json!({"username": "admin", "password": ADMIN_PASSWORD, "extra": 1})),
        ),
        (Method::POST, "/v1/auth/login".to_owned(), raw("{")),
    ];
    for (method, path, body) in probes {
        s.boss
            .send(method, &path, body, &[])
            .await
            .err(400, "invalid_request");
    }
    assert_eq!(before, s.state().await, "a refused request wrote something");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = server();
    let s = setup(&server).await;
    let before = s.state().await;
    let big = "x".repeat(5000);
    s.boss
        .post(&contacts_path(&s.tenant), json!({"name": big}))
        .await
        .err(413, "payload_too_large");
    s.boss
        .patch(
            &contact_path(&s.tenant, &id_of(&s.contact)),
            json!({"notes": big}),
        )
        .await
        .err(413, "payload_too_large");
    server
        .anon()
        .post(
            "/v1/auth/login",
            json!({"username": "admin", "password": big}),
        )
        .await
        .err(413, "payload_too_large");
    // Too large whatever it claims to be; of the wrong type within the limit, 400.
    let contacts = contacts_path(&s.tenant);
    s.boss
        .send(Method::POST, &contacts, Body::Text(big.clone()), &[])
        .await
        .err(413, "payload_too_large");
    s.boss
        .send(Method::POST, &contacts, Body::Text("name".into()), &[])
        .await
        .err(400, "invalid_request");
    // Just under the limit is fine.
    let fits = "y".repeat(3000);
    let c = create_contact(&s.boss, &s.tenant, json!({"name": "Fits", "notes": fits})).await;
    assert_eq!(c["notes"], json!(fits));
    s.boss
        .delete(&contact_path(&s.tenant, &id_of(&c)))
        .await
        .ok(204);
    assert_eq!(before, s.state().await);
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let server = server();
    let s = setup(&server).await;
    let admin = server.admin().await;
    let before = s.state().await;
    let t = &s.tenant;
    let nope = unique("missing");
    let probes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, contact_path(t, &nope), None),
        (
            Method::PATCH,
            contact_path(t, &nope),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, contact_path(t, &nope), None),
        (Method::GET, case_path(t, &nope), None),
        (
            Method::PATCH,
            case_path(t, &nope),
            Some(json!({"title": "x"})),
        ),
        (Method::GET, comments_path(t, &nope), None),
        (
            Method::POST,
            comments_path(t, &nope),
            Some(json!({"body": "x"})),
        ),
        (Method::GET, contacts_path(&nope), None),
        (
            Method::POST,
            contacts_path(&nope),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, format!("/v1/tenants/{nope}"), None),
        (Method::GET, "/v1/no-such-thing".to_owned(), None),
    ];
    for (method, path, body) in probes {
        s.boss
            .send(method, &path, body.map_or(Body::None, Body::Json), &[])
            .await
            .err(404, "not_found");
    }
    admin
        .get(&format!("/v1/tenants/{nope}"))
        .await
        .err(404, "not_found");
    admin
        .get(&format!("/v1/users/{nope}"))
        .await
        .err(404, "not_found");
    admin
        .patch(&format!("/v1/users/{nope}"), json!({"roles": ["auditor"]}))
        .await
        .err(404, "not_found");
    admin
        .post(
            &format!("/v1/users/{nope}/suspend"),
            json!({"reason": "left"}),
        )
        .await
        .err(404, "not_found");
    // Deleting twice: the second is a 404.
    let c = create_contact(&s.boss, t, json!({"name": "Short lived"})).await;
    s.boss.delete(&contact_path(t, &id_of(&c))).await.ok(204);
    s.boss
        .delete(&contact_path(t, &id_of(&c)))
        .await
        .err(404, "not_found");
    s.boss
        .get(&contact_path(t, &id_of(&c)))
        .await
        .err(404, "not_found");
    assert_eq!(before, s.state().await);
}

#[tokio::test]
async fn invalid_values_are_422_with_fields() {
    let server = server();
    let s = setup(&server).await;
    let before = s.state().await;
    let t = &s.tenant;
    let case = case_path(t, &id_of(&s.case));
    let probes: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            cases_path(t),
            json!({"title": "t", "severity": "urgent"}),
            "severity",
        ),
        (
            Method::POST,
            cases_path(t),
            json!({"title": "t", "status": "done"}),
            "status",
        ),
        (
            Method::POST,
            cases_path(t),
            json!({"title": "t", "contact_id": unique("nope")}),
            "contact_id",
        ),
        (
            Method::PATCH,
            case.clone(),
            json!({"severity": "URGENT"}),
            "severity",
        ),
        (
            Method::PATCH,
            case.clone(),
            json!({"status": "reopened"}),
            "status",
        ),
        (
            Method::POST,
            contacts_path(t),
            json!({"name": "x", "email": "no-at-sign"}),
            "email",
        ),
        (
            Method::PATCH,
            contact_path(t, &id_of(&s.contact)),
            json!({"email": "still.no.at"}),
            "email",
        ),
    ];
    for (method, path, body, field) in probes {
        let r = s.boss.send(method, &path, Body::Json(body), &[]).await;
        r.err(422, "validation_failed");
        assert_eq!(r.fields(), vec![field.to_owned()], "{}: {}", r.what, r.text);
    }
    // A reason outside the list is a well-formed request with an invalid value.
    let admin = server.admin().await;
    let colleague = tenant_session(&server, &admin, "tenant_user", t).await;
    let r = s
        .boss
        .post(
            &format!("/v1/users/{}/suspend", colleague.id),
            json!({"reason": "vacation"}),
        )
        .await;
    r.err(422, "validation_failed");
    assert_eq!(r.fields(), vec!["reason".to_owned()], "{}", r.text);
    colleague.get("/v1/me").await.ok(200);
    assert_eq!(before, s.state().await, "a refused request wrote something");
}

#[tokio::test]
async fn bad_query_parameters() {
    let server = server();
    let s = setup(&server).await;
    for limit in ["0", "501", "-1", "abc", "1.5"] {
        for path in [contacts_path(&s.tenant), cases_path(&s.tenant)] {
            s.boss
                .get(&format!("{path}?limit={limit}"))
                .await
                .err(400, "invalid_request");
        }
    }
    // Lists page by record id: an empty or made-up cursor is refused, not an empty page.
    for cursor in ["", "abc", "Jane%20Doe", "0123456789ABCDEF0123456789ABCDEF"] {
        for path in [
            contacts_path(&s.tenant),
            cases_path(&s.tenant),
            "/v1/api-keys".into(),
        ] {
            s.boss
                .get(&format!("{path}?cursor={cursor}"))
                .await
                .err(400, "invalid_request");
        }
    }
    for limit in ["1", "500"] {
        let items = list_items(&s.boss, &format!("{}?limit={limit}", cases_path(&s.tenant))).await;
        assert_eq!(items.len(), 1);
    }
    // An empty lookup value is a mistake, not a search for nothing.
    for email in ["", "%20"] {
        s.boss
            .get(&format!("{}?email={email}", contacts_path(&s.tenant)))
            .await
            .err(400, "invalid_request");
    }
}

#[tokio::test]
async fn an_empty_purpose_is_no_purpose() {
    let server = server();
    let s = setup(&server).await;
    let unstated = s.boss.with_purpose(None);
    let case = case_path(&s.tenant, &id_of(&s.case));
    for value in ["", "  "] {
        unstated
            .send(Method::GET, &case, Body::None, &[("Access-Purpose", value)])
            .await
            .err(400, "purpose_required");
    }
    unstated
        .send(
            Method::GET,
            &case,
            Body::None,
            &[("Access-Purpose", "sales")],
        )
        .await
        .err(400, "invalid_request");
}

/// The ids of every item of the list at `path` (which has its own query), two a page.
async fn walk_two_at_a_time(api: &Api, path: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut page_path = format!("{path}&limit=2");
        if let Some(c) = &cursor {
            page_path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page = api.get(&page_path).await.ok(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "limit ignored: {page}");
        seen.extend(items.iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
    panic!("more than 10 pages: {seen:?}")
}

#[tokio::test]
async fn pagination_walks_every_item_once() {
    let server = server();
    let s = setup(&server).await;
    let shared = format!("{}@example.com", unique("shared"));
    for n in 0..4 {
        create_contact(
            &s.boss,
            &s.tenant,
            json!({"name": format!("Page {n}"), "email": shared}),
        )
        .await;
    }
    // The whole list (the base contact and these four), then the e-mail lookup (these four).
    let listed = format!("{}?", contacts_path(&s.tenant));
    let found = format!("{}?email={}", contacts_path(&s.tenant), urlencode(&shared));
    for (path, expected) in [(listed, 5), (found, 4)] {
        let seen = walk_two_at_a_time(&s.boss, &path).await;
        let mut unique_ids = seen.clone();
        unique_ids.sort();
        unique_ids.dedup();
        assert_eq!(seen.len(), expected, "{path}: pages {seen:?}");
        assert_eq!(unique_ids.len(), expected, "{path}: duplicates {seen:?}");
    }
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let server = server();
    let s = setup(&server).await;
    let a = s.boss.get(&contacts_path(&s.tenant)).await;
    let b = s.boss.get(&contacts_path(&s.tenant)).await;
    let (a, b) = (
        a.request_id().unwrap().to_owned(),
        b.request_id().unwrap().to_owned(),
    );
    assert!(!a.is_empty());
    assert_ne!(a, b, "request ids repeat");
    let r = server.anon().get("/v1/me").await;
    r.err(401, "unauthenticated");
}

#[tokio::test]
async fn a_path_segment_that_does_not_decode_is_invalid_request_in_the_error_body() {
    let server = server();
    let s = setup(&server).await;
    for path in [
        "/v1/tenants/%FF%FE/contacts".to_owned(),
        format!("{}/%C3%28", contacts_path(&s.tenant)),
    ] {
        let r = s.boss.get(&path).await;
        r.err(400, "invalid_request");
        assert_eq!(
            r.body["error"]["request_id"].as_str(),
            r.request_id(),
            "{}",
            r.text
        );
    }
}

#[tokio::test]
async fn no_answer_may_be_cached() {
    let server = server();
    let s = setup(&server).await;
    let read = s.boss.get(&contacts_path(&s.tenant)).await;
    let refused = server.anon().get("/v1/me").await;
    let missing = s.boss.get("/v1/nothing-here").await;
    for r in [read, refused, missing] {
        assert_eq!(
            r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{}",
            r.what
        );
        // HTTPS only: a browser that reached the console never falls back to plain HTTP.
        assert_eq!(
            r.headers
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{}",
            r.what
        );
    }
}

/// A client that never finishes a request's head, or its JSON body, loses the connection
/// instead of holding it (and a body's buffer) for ever: no credential is needed to try.
#[tokio::test]
async fn a_request_that_never_finishes_loses_its_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = server();
    let mut head = raw_tls(&server).await;
    head.write_all(b"POST /v1/auth/login HTTP/1.1\r\nHost: strongroom\r\n")
        .await
        .unwrap();
    let mut body = raw_tls(&server).await;
    body.write_all(
        b"POST /v1/auth/login HTTP/1.1\r\nHost: strongroom\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut answers = Vec::new();
    for stream in [&mut head, &mut body] {
        let mut answer = Vec::new();
        // Closed (a read of 0 or an error) within the server's 20 s and a margin.
        tokio::time::timeout(Duration::from_secs(40), stream.read_to_end(&mut answer))
            .await
            .expect("the connection is still open after 40 s")
            .ok();
        answers.push(String::from_utf8_lossy(&answer).into_owned());
    }
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "closed too soon to be the timeout: {answers:?}"
    );
    assert!(answers[1].starts_with("HTTP/1.1 400"), "{answers:?}");
    assert!(answers[1].contains("invalid_request"), "{answers:?}");
}

/// NUL in a body's string, a path or a query is refused at the door: PostgreSQL keeps no NUL in
/// text, and one such value in a group commit would fail every change committed with it.
#[tokio::test]
async fn nul_characters_are_refused_and_change_nothing() {
    let server = server();
    let s = setup(&server).await;
    let before = s.state().await;
    let t = &s.tenant;
    for body in [
        json!({"title": "a\u{0}b"}),
        json!({"title": "t", "product": "p\u{0}"}),
    ] {
        s.boss
            .post(&cases_path(t), body)
            .await
            .err(400, "invalid_request");
    }
    for path in [
        format!("{}/%00", cases_path(t)),
        format!("{}?cursor=%00", cases_path(t)),
        // The tenant id is matched by a nested router before the handler sees the path.
        "/v1/tenants/%00/cases".to_owned(),
        format!("/v1/tenants/{t}%00/cases"),
    ] {
        s.boss.get(&path).await.err(400, "invalid_request");
    }
    assert_eq!(before, s.state().await);
    // An escaped backslash before `u0000` is ordinary text.
    let title = "C:\\u0000 is a folder";
    let kept = create_case(&s.boss, t, json!({"title": title})).await;
    assert_eq!(kept["title"], title);
}

/// HEAD is answered like a method the route lacks: as a GET without its body it would decrypt the
/// record and record a disclosure although nothing left.
#[tokio::test]
async fn head_reads_nothing_and_records_no_disclosure() {
    let server = server();
    let s = setup(&server).await;
    let t = &s.tenant;
    let log = format!("/v1/tenants/{t}/access-log?limit=500");
    let reads = |entries: Vec<Value>| {
        entries
            .iter()
            .filter(|e| e["action"] == "contact.read" || e["entry"]["action"] == "contact.read")
            .count()
    };
    let before = reads(list_items(&s.boss, &log).await);
    let path = contact_path(t, &id_of(&s.contact));
    let r = s.boss.send(Method::HEAD, &path, Body::None, &[]).await;
    assert_eq!(r.status.as_u16(), 404, "{r:?}");
    s.boss.get(&path).await.ok(200);
    assert_eq!(reads(list_items(&s.boss, &log).await), before + 1);
}
