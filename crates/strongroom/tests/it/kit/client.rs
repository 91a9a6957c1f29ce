//! A typed client for the API: responses as (status, headers, JSON), plus
//! helpers for the objects most tests need.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{PASSWORD, Server, default_purpose, is_staff, unique};

/// A request body.
pub enum Body {
    None,
    Json(Value),
    /// Sent as-is with `Content-Type: application/json` (for malformed input).
    Raw(String),
    /// Sent as-is with `Content-Type: text/plain` (a body of the wrong type).
    Text(String),
}

/// A response: status, headers and the body parsed as JSON (Null when the
/// body is empty, a JSON string when it is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub what: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
    pub elapsed: Duration,
}

impl Resp {
    /// The `Request-Id` response header.
    pub fn request_id(&self) -> Option<&str> {
        self.headers.get("request-id").and_then(|v| v.to_str().ok())
    }

    /// `error.code` of an error body.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// `Retry-After` in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse().ok())
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn ok(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: expected {status}, got {} {}",
            self.what,
            self.status,
            self.text
        );
        assert!(
            self.request_id().is_some(),
            "{}: no Request-Id header",
            self.what
        );
        self.body
    }

    /// Asserts an error answer: status, `error.code`, a message, and
    /// `error.request_id` equal to the `Request-Id` header.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, Some(code)),
            "{}: expected {status} {code}, got {} {}",
            self.what,
            self.status,
            self.text
        );
        let header = self.request_id();
        assert!(header.is_some(), "{}: no Request-Id header", self.what);
        assert_eq!(
            self.body["error"]["request_id"].as_str(),
            header,
            "{}: body request_id differs from the Request-Id header",
            self.what
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "{}: error without a message: {}",
            self.what,
            self.text
        );
        self
    }

    /// `details.fields` of a validation error, as strings.
    pub fn fields(&self) -> Vec<String> {
        strings(&self.body["error"]["details"]["fields"])
    }

    /// `details.reasons` of a weak_password error, as strings.
    pub fn reasons(&self) -> Vec<String> {
        strings(&self.body["error"]["details"]["reasons"])
    }
}

/// A JSON array of strings as a Vec (empty for anything else).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An API client, optionally authenticated and with a default purpose.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    purpose: Option<String>,
}

impl Api {
    pub fn new(client: reqwest::Client, base: String) -> Api {
        Api {
            client,
            base,
            token: None,
            purpose: None,
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The same client with another bearer token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The same client with another default `Access-Purpose` (or none).
    pub fn with_purpose(&self, purpose: Option<&str>) -> Api {
        Api {
            purpose: purpose.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Sends a request; `headers` are added after the defaults (a
    /// `("Authorization", ..)` entry replaces the bearer token).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Resp {
        let what = format!("{method} {path}");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        let overrides_auth = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        if let (Some(token), false) = (&self.token, overrides_auth) {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(purpose) = &self.purpose {
            req = req.header("Access-Purpose", purpose.as_str());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(s) => req.header("Content-Type", "application/json").body(s),
            Body::Text(s) => req.header("Content-Type", "text/plain").body(s),
        };
        let started = Instant::now();
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading body failed: {e:?}"));
        let elapsed = started.elapsed();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
        };
        Resp {
            what,
            status,
            headers,
            body,
            text,
            elapsed,
        }
    }

    /// GET a binary body: status, headers and the exact bytes (for downloads).
    pub async fn get_bytes(&self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(purpose) = &self.purpose {
            req = req.header("Access-Purpose", purpose.as_str());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: request failed: {e:?}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: reading body failed: {e:?}"));
        (status, headers, bytes.to_vec())
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Body::None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Body::Json(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Body::Json(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Body::None, &[]).await
    }
}

/// A logged-in user: its record and an authenticated client.
#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub username: String,
    pub role: String,
    pub api: Api,
    /// The `user` object of the login answer.
    pub user: Value,
}

impl std::ops::Deref for Session {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A user created by [`create_user`] (password [`PASSWORD`]).
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: String,
    pub username: String,
    pub role: String,
    pub record: Value,
}

/// POST /v1/auth/login, raw, on a fresh connection.
pub async fn try_login(server: &Server, username: &str, password: &str) -> Resp {
    login_attempt(&server.anon(), username, password).await
}

/// POST /v1/auth/login, raw, through `api` (reuses its connection: use it
/// where timing matters).
pub async fn login_attempt(api: &Api, username: &str, password: &str) -> Resp {
    api.post(
        "/v1/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

/// Logs in (asserting 200) and returns a client carrying the token.
pub async fn login(server: &Server, username: &str, password: &str) -> (Api, Value) {
    let body = try_login(server, username, password).await.ok(200);
    let token = body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login answer without token: {body}"));
    assert!(
        body["expires_at"].is_string(),
        "login answer without expires_at: {body}"
    );
    (server.anon().with_token(Some(token)), body["user"].clone())
}

/// THE place where a user becomes a working session: login, then (for
/// staff) the confidentiality acknowledgement, and the default purpose.
/// Later auth requirements (MFA) are to be added here only.
pub async fn open_session(server: &Server, username: &str, password: &str, role: &str) -> Session {
    let (api, user) = login(server, username, password).await;
    let id = user["id"]
        .as_str()
        .unwrap_or_else(|| panic!("login user without id: {user}"))
        .to_owned();
    let api = if username == "admin" {
        api
    } else {
        if is_staff(role) {
            ack_confidentiality(&api).await;
        }
        api.with_purpose(Some(default_purpose(role)))
    };
    Session {
        id,
        username: username.to_owned(),
        role: role.to_owned(),
        api,
        user,
    }
}

/// A new staff user with one role, logged in and acknowledged.
pub async fn staff_session(server: &Server, admin: &Api, role: &str) -> Session {
    let u = create_user(admin, role, None).await;
    open_session(server, &u.username, PASSWORD, role).await
}

/// A new customer user (tenant_admin / tenant_user) of `tenant`, logged in.
pub async fn tenant_session(server: &Server, by: &Api, role: &str, tenant: &str) -> Session {
    let u = create_user(by, role, Some(tenant)).await;
    open_session(server, &u.username, PASSWORD, role).await
}

/// Acknowledges the current confidentiality agreement.
pub async fn ack_confidentiality(api: &Api) {
    let agreement = api.get("/v1/confidentiality").await.ok(200);
    let version = agreement["version"]
        .as_str()
        .unwrap_or_else(|| panic!("confidentiality without version: {agreement}"))
        .to_owned();
    let ack = api
        .post("/v1/me/confidentiality", json!({"version": version}))
        .await
        .ok(200);
    assert_eq!(
        ack["version"].as_str(),
        Some(version.as_str()),
        "ack answer: {ack}"
    );
}

/// Creates a tenant (default instructions unless given); returns its id.
pub async fn create_tenant(admin: &Api, instructions: Option<Value>) -> String {
    let mut body = json!({"name": unique("tenant")});
    if let Some(i) = instructions {
        body["instructions"] = i;
    }
    let t = admin.post("/v1/tenants", body).await.ok(201);
    t["id"]
        .as_str()
        .unwrap_or_else(|| panic!("tenant without id: {t}"))
        .to_owned()
}

/// Creates a user with a unique username, password [`PASSWORD`] and one role.
pub async fn create_user(by: &Api, role: &str, tenant: Option<&str>) -> NewUser {
    let username = unique(&role.replace('_', "-"));
    let mut body = json!({
        "username": username,
        "display_name": format!("Test {role}"),
        "password": PASSWORD,
        "roles": [role],
    });
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    let record = by.post("/v1/users", body).await.ok(201);
    NewUser {
        id: record["id"]
            .as_str()
            .unwrap_or_else(|| panic!("user without id: {record}"))
            .to_owned(),
        username,
        role: role.to_owned(),
        record,
    }
}

pub fn contacts_path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/contacts")
}

pub fn contact_path(tenant: &str, contact: &str) -> String {
    format!("/v1/tenants/{tenant}/contacts/{contact}")
}

pub fn cases_path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/cases")
}

pub fn keys_path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/keys")
}

pub fn case_path(tenant: &str, case: &str) -> String {
    format!("/v1/tenants/{tenant}/cases/{case}")
}

pub fn comments_path(tenant: &str, case: &str) -> String {
    format!("/v1/tenants/{tenant}/cases/{case}/comments")
}

/// `id` of a JSON object.
#[track_caller]
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("object without id: {v}"))
        .to_owned()
}

/// Creates a contact (asserting 201) and returns it.
pub async fn create_contact(api: &Api, tenant: &str, fields: Value) -> Value {
    api.post(&contacts_path(tenant), fields).await.ok(201)
}

/// Creates a case (asserting 201) and returns it.
pub async fn create_case(api: &Api, tenant: &str, fields: Value) -> Value {
    api.post(&cases_path(tenant), fields).await.ok(201)
}

/// Assigns a case (support_supervisor; asserting 200) and returns it.
pub async fn assign(supervisor: &Api, tenant: &str, case: &str, user_id: &str) -> Value {
    supervisor
        .post(
            &format!("{}/assign", case_path(tenant, case)),
            json!({"user_id": user_id}),
        )
        .await
        .ok(200)
}

/// Adds a comment (asserting 201) and returns it.
pub async fn add_comment(api: &Api, tenant: &str, case: &str, body: &str) -> Value {
    api.post(&comments_path(tenant, case), json!({"body": body}))
        .await
        .ok(201)
}

/// `items` of a list answer (asserting 200).
pub fn attachments_path(tenant: &str, case: &str) -> String {
    format!("/v1/tenants/{tenant}/cases/{case}/attachments")
}

/// Uploads `content` as a file of the case; panics unless it is stored.
pub async fn add_attachment(
    api: &Api,
    tenant: &str,
    case: &str,
    name: &str,
    content: &[u8],
) -> Value {
    use base64::Engine as _;
    api.post(
        &attachments_path(tenant, case),
        json!({"name": name, "content": base64::engine::general_purpose::STANDARD.encode(content)}),
    )
    .await
    .ok(201)
}

pub async fn list_items(api: &Api, path: &str) -> Vec<Value> {
    let body = api.get(path).await.ok(200);
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: no items array: {body}"))
        .clone()
}

/// Audit entries (as an auditor sees them) whose action is `action`.
pub async fn entries_with_action(auditor: &Api, action: &str) -> Vec<Value> {
    let page = auditor
        .get("/v1/audit/entries?start=0&limit=500")
        .await
        .ok(200);
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["entry"].clone())
        .filter(|e| e["action"] == action)
        .collect()
}
