//! API keys: service principals with explicit roles, tenant and expiry, usable as Bearer tokens,
//! cut off at once by revocation, expiry, suspension or a role change, and never stored or logged.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::kit::*;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> Shared {
    shared(&SERVER, &[])
}

/// RFC 3339 for `secs` seconds from now (negative: in the past).
fn in_secs(secs: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&Rfc3339)
        .unwrap()
}

async fn create_key(by: &Api, roles: &[&str], tenant: Option<&str>, expires: &str) -> Value {
    let mut body = json!({"name": unique("key"), "roles": roles, "expires_at": expires});
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    let key = by.post("/v1/api-keys", body).await.ok(201);
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with("srk_") && secret.len() == 47, "{key}");
    assert_eq!(key["roles"], json!(roles));
    assert_eq!(key["tenant_id"], json!(tenant));
    key
}

fn bearer(server: &Server, key: &Value, purpose: Option<&str>) -> Api {
    server
        .anon()
        .with_token(Some(key["key"].as_str().unwrap()))
        .with_purpose(purpose)
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {v}"))
}

/// Polls `api` GET `path` until it answers 401, for at most `within`.
async fn until_unauthenticated(api: &Api, path: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = api.get(path).await;
        if r.status.as_u16() == 401 {
            r.err(401, "unauthenticated");
            return start.elapsed();
        }
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        assert!(start.elapsed() < within, "still accepted after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_customer_key_reads_its_tenant_only_and_cannot_log_in() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let other = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    create_contact(&boss, &tenant, json!({"name": "Keyed Reader"})).await;

    let key = create_key(&boss, &["tenant_user"], Some(&tenant), &in_secs(3600)).await;
    let api = bearer(&server, &key, Some("customer-self-service"));
    let me = api.get("/v1/me").await.ok(200);
    assert_eq!(me["id"], key["user_id"]);
    assert_eq!(me["roles"], json!(["tenant_user"]));
    assert_eq!(list_items(&api, &contacts_path(&tenant)).await.len(), 1);
    api.get(&contacts_path(&other)).await.err(404, "not_found");
    // The purpose rule applies as to any user.
    bearer(&server, &key, None)
        .get(&contacts_path(&tenant))
        .await
        .err(400, "purpose_required");

    // No password login for a service principal, whatever is tried.
    let username = str_of(&me, "username");
    try_login(&server, username, str_of(&key, "key"))
        .await
        .err(401, "invalid_credentials");
    try_login(&server, username, PASSWORD)
        .await
        .err(401, "invalid_credentials");

    // A key cannot mint keys, even with an administrator's role.
    let admin_key = create_key(&boss, &["tenant_admin"], Some(&tenant), &in_secs(3600)).await;
    bearer(&server, &admin_key, None)
        .post(
            "/v1/api-keys",
            json!({"name": "child", "roles": ["tenant_user"], "tenant_id": tenant,
                   "expires_at": in_secs(3600)}),
        )
        .await
        .err(403, "forbidden");

    // Another tenant's administrator neither sees nor revokes it.
    let stranger = tenant_session(&server, &admin, "tenant_admin", &other).await;
    let listed = list_items(&stranger, "/v1/api-keys?limit=500").await;
    assert!(listed.iter().all(|k| k["id"] != key["id"]), "{listed:?}");
    // Staff who may read no key get an empty list whose cursor names none either.
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    let page = engineer.get("/v1/api-keys?limit=1").await.ok(200);
    assert_eq!(page["items"], json!([]), "{page}");
    assert_eq!(page["next_cursor"], Value::Null, "{page}");
    // Page by page, the platform admin sees every key one page shows (other tests on this
    // server may add keys meanwhile), each once.
    let whole: Vec<Value> = list_items(&admin, "/v1/api-keys?limit=500").await;
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/api-keys?limit=1&cursor={c}"),
            None => "/v1/api-keys?limit=1".to_owned(),
        };
        let page = admin.get(&path).await.ok(200);
        paged.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(paged.len() <= whole.len() + 100, "paging does not end");
    }
    let paged_ids: Vec<&Value> = paged.iter().map(|k| &k["id"]).collect();
    for k in &whole {
        assert_eq!(
            paged_ids.iter().filter(|id| **id == &k["id"]).count(),
            1,
            "{} paged {paged_ids:?}",
            k["id"]
        );
    }
    stranger
        .delete(&format!("/v1/api-keys/{}", str_of(&key, "id")))
        .await
        .err(404, "not_found");
    // Its own tenant's administrator sees it, without the key.
    let listed = boss.get("/v1/api-keys?limit=500").await;
    assert!(!listed.text.contains(str_of(&key, "key")));
    let listed = listed.ok(200);
    let mine = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key["id"])
        .unwrap_or_else(|| panic!("own key not listed: {listed}"));
    assert_eq!(mine["status"], "active");
    assert!(mine.get("key").is_none() && mine.get("key_hash").is_none());
    api.get("/v1/me").await.ok(200);
}

#[tokio::test]
async fn revocation_and_expiry_take_effect_on_the_next_request() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;

    let key = create_key(&admin, &["tenant_user"], Some(&tenant), &in_secs(3600)).await;
    let api = bearer(&server, &key, Some("customer-self-service"));
    api.get(&contacts_path(&tenant)).await.ok(200);
    let r = admin
        .delete(&format!("/v1/api-keys/{}", str_of(&key, "id")))
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    api.get("/v1/me").await.err(401, "unauthenticated");
    api.get(&contacts_path(&tenant))
        .await
        .err(401, "unauthenticated");
    // `last_used_at` is written behind the request: poll for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = list_items(&admin, "/v1/api-keys?limit=500").await;
        let gone = listed.iter().find(|k| k["id"] == key["id"]).unwrap();
        assert_eq!(gone["status"], "revoked");
        assert!(gone["revoked_at"].is_string());
        if gone["last_used_at"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at never set: {gone}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Expiry: good now, refused within a few seconds of its time. (4 s: creating the key and the
    // first read must fit well inside it on a busy machine.)
    let short = create_key(&admin, &["tenant_user"], Some(&tenant), &in_secs(4)).await;
    let api = bearer(&server, &short, None);
    api.get("/v1/me").await.ok(200);
    let waited = until_unauthenticated(&api, "/v1/me", Duration::from_secs(15)).await;
    assert!(
        waited >= Duration::from_millis(500),
        "expired early: {waited:?}"
    );
    api.get("/v1/me").await.err(401, "unauthenticated");
}

#[tokio::test]
async fn logging_out_with_a_key_revokes_the_key() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let key = create_key(&admin, &["tenant_user"], Some(&tenant), &in_secs(3600)).await;
    let api = bearer(&server, &key, None);
    api.get("/v1/me").await.ok(200);
    let r = api.post("/v1/auth/logout", json!({})).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    api.get("/v1/me").await.err(401, "unauthenticated");
    let listed = list_items(&admin, "/v1/api-keys?limit=500").await;
    let revoked = listed.iter().find(|k| k["id"] == key["id"]).unwrap();
    assert_eq!(revoked["status"], "revoked", "{revoked}");
}

#[tokio::test]
async fn suspension_and_role_changes_revoke_keys() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;

    // Staff key: the creating administrator acknowledged the agreement on its behalf.
    let staff = create_key(&admin, &["support_engineer"], None, &in_secs(3600)).await;
    let api = bearer(&server, &staff, None);
    let me = api.get("/v1/me").await.ok(200);
    let agreement = admin.get("/v1/confidentiality").await.ok(200);
    assert_eq!(
        me["confidentiality_acknowledged_version"],
        agreement["version"]
    );
    let principal = str_of(&staff, "user_id");
    admin
        .post(
            &format!("/v1/users/{principal}/suspend"),
            json!({"reason": "other"}),
        )
        .await
        .ok(200);
    api.get("/v1/me").await.err(403, "account_suspended");
    // Reactivation does not bring a revoked key back.
    admin
        .post(&format!("/v1/users/{principal}/reactivate"), json!({}))
        .await
        .ok(200);
    api.get("/v1/me").await.err(401, "unauthenticated");

    let customer = create_key(&admin, &["tenant_user"], Some(&tenant), &in_secs(3600)).await;
    let api = bearer(&server, &customer, None);
    api.get("/v1/me").await.ok(200);
    admin
        .patch(
            &format!("/v1/users/{}", str_of(&customer, "user_id")),
            json!({"roles": ["tenant_admin"]}),
        )
        .await
        .ok(200);
    api.get("/v1/me").await.err(401, "unauthenticated");
    let listed = list_items(&admin, "/v1/api-keys?limit=500").await;
    for key in [&staff, &customer] {
        let row = listed.iter().find(|k| k["id"] == key["id"]).unwrap();
        assert_eq!(row["status"], "revoked", "{row}");
    }
}

/// A key made with someone's authority goes when they leave or their roles change; the keys
/// others made stay.
#[tokio::test]
async fn keys_go_with_the_person_who_made_them() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let boss = create_user(&admin, "tenant_admin", Some(&tenant)).await;
        let session = open_session(&server, &boss.username, PASSWORD, "tenant_admin").await;
        let key = create_key(&session, &["tenant_user"], Some(&tenant), &in_secs(3600)).await;
        let api = bearer(&server, &key, Some("case-resolution"));
        api.get("/v1/me").await.ok(200);
        made.push((boss, key, api));
    }
    let [
        (left, left_key, left_api),
        (moved, moved_key, moved_api),
        (_, _, stays),
    ] = &made[..]
    else {
        unreachable!()
    };
    admin
        .post(
            &format!("/v1/users/{}/suspend", left.id),
            json!({"reason": "left"}),
        )
        .await
        .ok(200);
    left_api.get("/v1/me").await.err(401, "unauthenticated");
    stays.get("/v1/me").await.ok(200);
    moved_api.get("/v1/me").await.ok(200);
    admin
        .patch(
            &format!("/v1/users/{}", moved.id),
            json!({"roles": ["tenant_user"]}),
        )
        .await
        .ok(200);
    moved_api.get("/v1/me").await.err(401, "unauthenticated");
    stays.get("/v1/me").await.ok(200);
    let listed = list_items(&admin, "/v1/api-keys?limit=500").await;
    for (boss, key) in [(left, left_key), (moved, moved_key)] {
        let row = listed.iter().find(|k| k["id"] == key["id"]).unwrap();
        assert_eq!(row["status"], "revoked", "{row}");
        assert_eq!(row["created_by"], json!(boss.id), "{row}");
    }
}

#[tokio::test]
async fn who_may_create_keys() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let user = tenant_session(&server, &admin, "tenant_user", &tenant).await;
    let body = |roles: Value, tenant: Option<&str>| {
        let mut b = json!({"name": "k", "roles": roles, "expires_at": in_secs(600)});
        if let Some(t) = tenant {
            b["tenant_id"] = json!(t);
        }
        b
    };
    // A tenant administrator: its own tenant's customer keys only.
    boss.post("/v1/api-keys", body(json!(["auditor"]), None))
        .await
        .err(403, "forbidden");
    user.post("/v1/api-keys", body(json!(["tenant_user"]), Some(&tenant)))
        .await
        .err(403, "forbidden");
    let other = create_tenant(&admin, None).await;
    boss.post("/v1/api-keys", body(json!(["tenant_user"]), Some(&other)))
        .await
        .err(404, "not_found");
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    engineer
        .post("/v1/api-keys", body(json!(["support_engineer"]), None))
        .await
        .err(403, "forbidden");
    // A key makes no keys, no users and no roles: a password account would outlive it.
    let key = create_key(&boss, &["tenant_admin"], Some(&tenant), &in_secs(600)).await;
    let by_key = bearer(&server, &key, None);
    by_key
        .post("/v1/api-keys", body(json!(["tenant_user"]), Some(&tenant)))
        .await
        .err(403, "forbidden");
    let username = unique("minted");
    by_key
        .post(
            "/v1/users",
            json!({"username": username, "display_name": "Minted", "password": PASSWORD,
                   "roles": ["tenant_admin"], "tenant_id": tenant}),
        )
        .await
        .err(403, "forbidden");
    let member = create_user(&admin, "tenant_user", Some(&tenant)).await;
    let member_path = format!("/v1/users/{}", member.id);
    by_key
        .patch(&member_path, json!({"roles": ["tenant_admin"]}))
        .await
        .err(403, "forbidden");
    // Taking access away stays open to it; giving it back does not.
    by_key
        .post(
            &format!("{member_path}/suspend"),
            json!({"reason": "other"}),
        )
        .await
        .ok(200);
    by_key
        .post(&format!("{member_path}/reactivate"), json!({}))
        .await
        .err(403, "forbidden");
    let member = admin.get(&member_path).await.ok(200);
    assert_eq!(member["roles"], json!(["tenant_user"]), "{member}");
    assert_eq!(member["status"], "suspended", "{member}");
}

#[tokio::test]
async fn invalid_requests_name_their_fields() {
    let server = server();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let cases = [
        (
            json!({"name": "k", "roles": ["tenant_user"], "tenant_id": tenant}),
            "expires_at",
        ),
        (
            json!({"name": "k", "roles": ["tenant_user"], "tenant_id": tenant,
                   "expires_at": in_secs(-60)}),
            "expires_at",
        ),
        (
            json!({"name": "k", "roles": ["tenant_user"], "tenant_id": tenant,
                   "expires_at": in_secs(400 * 24 * 3600)}),
            "expires_at",
        ),
        (
            json!({"name": "k", "roles": ["tenant_user"], "tenant_id": tenant,
                   "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (
            json!({"name": "k", "roles": ["overlord"], "tenant_id": tenant,
                   "expires_at": in_secs(600)}),
            "roles",
        ),
        (
            json!({"name": "k", "roles": [], "tenant_id": tenant, "expires_at": in_secs(600)}),
            "roles",
        ),
        (
            json!({"roles": ["tenant_user"], "tenant_id": tenant, "expires_at": in_secs(600)}),
            "name",
        ),
        (
            json!({"name": "k", "roles": ["tenant_user"], "expires_at": in_secs(600)}),
            "tenant_id",
        ),
    ];
    for (body, field) in cases {
        let r = admin.post("/v1/api-keys", body.clone()).await;
        r.err(422, "validation_failed");
        assert!(r.fields().contains(&field.to_owned()), "{body}: {}", r.text);
    }
    admin
        .post("/v1/api-keys", json!({"name": "k", "surprise": true}))
        .await
        .err(400, "invalid_request");
}

#[tokio::test]
async fn keys_never_reach_lists_audit_entries_or_disk() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let key = create_key(&admin, &["tenant_user"], Some(&tenant), &in_secs(3600)).await;
    let secret = str_of(&key, "key").to_owned();
    let api = bearer(&server, &key, Some("customer-self-service"));
    api.get(&contacts_path(&tenant)).await.ok(200);
    let listed = admin.get("/v1/api-keys").await;
    assert!(!listed.text.contains(&secret));
    let r = admin
        .delete(&format!("/v1/api-keys/{}", str_of(&key, "id")))
        .await;
    assert_eq!(r.status.as_u16(), 204);

    let hash = strongroom_crypto::token_hash(&secret);
    let needles = [
        secret.clone(),
        secret.trim_start_matches("srk_").to_owned(),
        hex::encode(hash),
        base64::engine::general_purpose::STANDARD.encode(hash),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash),
    ];

    let auditor = staff_session(&server, &admin, "auditor").await;
    let mut start = 0;
    let mut actions = Vec::new();
    loop {
        let r = auditor
            .get(&format!("/v1/audit/entries?start={start}&limit=500"))
            .await;
        for n in &needles {
            assert!(!r.text.contains(n.as_str()), "audit log holds the key");
        }
        let page = r.ok(200);
        let items = page["items"].as_array().unwrap().clone();
        for item in &items {
            actions.push(item["entry"]["action"].as_str().unwrap_or("").to_owned());
        }
        start += items.len();
        // Each read logs itself, so the log never runs dry: stop at the first short page.
        if items.len() < 500 {
            break;
        }
    }
    for want in [
        "api_key.create",
        "api_key.list",
        "api_key.revoke",
        "user.create",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "no {want} in {actions:?}"
        );
    }

    // The data dir, and on PostgreSQL a dump of the server's schema (bytea decoded too).
    let files = server.at_rest_files().await;
    let mut hash_seen = false;
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_default();
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} holds the key",
            path.display()
        );
        let hex_hash = hex::encode(hash);
        hash_seen |= bytes.windows(hash.len()).any(|w| w == hash)
            || bytes
                .windows(hex_hash.len())
                .any(|w| w == hex_hash.as_bytes());
    }
    // The scan does reach the store: the key's hash (and only that) is there.
    assert!(
        hash_seen,
        "the key's hash is in no file: wrong files scanned"
    );
    let out = server.stderr();
    assert!(!out.contains(&secret), "the key was logged");
}
