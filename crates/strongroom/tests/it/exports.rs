//! Exports (issue 7, items 1 and 2): limited exports are age-encrypted to the recipient, hold exactly
//! what the requester may read, obey quotas and four-eyes approval, expire; the tenant archive carries
//! the tenant's audit entries with inclusion proofs against a signed checkpoint.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use strongroom_ledger::{Hash, NoteVerifier, leaf_hash, verify_inclusion};

use crate::kit::*;

pub(crate) static SERVER: OnceLock<Server> = OnceLock::new();
static LIMITS: OnceLock<Server> = OnceLock::new();

const LIMITS_ENV: &[(&str, &str)] = &[
    ("STRONGROOM_EXPORT_QUOTA_PER_DAY_TENANT_USER", "5"),
    ("STRONGROOM_EXPORT_APPROVAL_THRESHOLD", "2"),
];

pub(crate) fn exports_path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/exports")
}

pub(crate) fn export_path(tenant: &str, id: &str, rest: &str) -> String {
    format!("/v1/tenants/{tenant}/exports/{id}{rest}")
}

/// A fresh age key pair: the identity stays in the test, the recipient goes to the server.
pub(crate) fn key_pair() -> (age::x25519::Identity, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    (identity, recipient)
}

/// An opened export: the manifest line, the content bytes after it, and the content lines.
pub(crate) struct Opened {
    header: Value,
    content: Vec<u8>,
    lines: Vec<Value>,
}

impl Opened {
    pub(crate) fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["kind"] == kind).collect()
    }
}

pub(crate) fn open_export(identity: &age::x25519::Identity, ciphertext: &[u8]) -> Opened {
    assert!(
        ciphertext.starts_with(b"age-encryption.org/v1\n"),
        "not an age file"
    );
    let plain = age::decrypt(identity, ciphertext).expect("the recipient's identity opens it");
    let split = plain
        .iter()
        .position(|b| *b == b'\n')
        .expect("manifest line");
    let header: Value = serde_json::from_slice(&plain[..split]).unwrap();
    let content = plain[split + 1..].to_vec();
    let lines = content
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    Opened {
        header,
        content,
        lines,
    }
}

async fn download(api: &Api, tenant: &str, id: &str) -> Vec<u8> {
    let (status, headers, bytes) = api.get_bytes(&export_path(tenant, id, "/download")).await;
    assert_eq!(
        status.as_u16(),
        200,
        "download: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/octet-stream")
    );
    bytes
}

fn canary(tag: &str) -> String {
    format!("CANARY-{}-{tag}", rand_hex(8))
}

/// A tenant whose assignments suffice (no lockbox), its admin, a contact full of canaries, a case
/// on it assigned to a new engineer with a comment, and a second case nobody is assigned to.
pub(crate) struct World {
    pub(crate) tenant: String,
    pub(crate) admin: Session,
    pub(crate) engineer: Session,
    pub(crate) contact: String,
    pub(crate) case: String,
    other_case: String,
    canaries: Vec<String>,
}

pub(crate) async fn world(server: &Server) -> World {
    world_with(server, false).await
}

async fn world_with(server: &Server, lockbox: bool) -> World {
    let platform = server.admin().await;
    let tenant = create_tenant(
        &platform,
        Some(json!({"operator_access_requires_approval": lockbox})),
    )
    .await;
    let admin = tenant_session(server, &platform, "tenant_admin", &tenant).await;
    let name = canary("name");
    let address = canary("address");
    let notes = canary("notes");
    let local = format!("canary-{}", rand_hex(8));
    let contact = id_of(
        &create_contact(
            &admin,
            &tenant,
            json!({"name": name, "email": format!("{local}@example.com"),
                   "phone": "+44 20 7946 0123", "address": address, "notes": notes}),
        )
        .await,
    );
    let title = canary("title");
    let body = canary("comment");
    let case = id_of(
        &create_case(
            &admin,
            &tenant,
            json!({"title": title, "description": "desc", "contact_id": contact, "status": "open"}),
        )
        .await,
    );
    add_comment(&admin, &tenant, &case, &body).await;
    let file_name = canary("file-name");
    let file_content = canary("file-content");
    add_attachment(&admin, &tenant, &case, &file_name, file_content.as_bytes()).await;
    let other_case = id_of(
        &create_case(
            &admin,
            &tenant,
            json!({"title": "Not for the engineer", "status": "closed"}),
        )
        .await,
    );
    let engineer = staff_session(server, &platform, "support_engineer").await;
    let supervisor = staff_session(server, &platform, "support_supervisor").await;
    assign(&supervisor, &tenant, &case, &engineer.id).await;
    World {
        tenant,
        admin,
        engineer,
        contact,
        case,
        other_case,
        canaries: vec![
            name,
            address,
            notes,
            local,
            title,
            body,
            file_name,
            file_content,
        ],
    }
}

pub(crate) fn records_scope(kinds: &[&str]) -> Value {
    json!({"kind": "records", "record_kinds": kinds})
}

#[tokio::test]
async fn an_engineers_export_decrypts_and_holds_exactly_what_its_reads_show() {
    let server = shared(&SERVER, &[]);
    let w = world(&server).await;
    let (identity, recipient) = key_pair();

    // A bad recipient key is refused before anything is built.
    w.engineer
        .post(
            &exports_path(&w.tenant),
            json!({"scope": records_scope(&["cases"]), "recipient": "age1notakey"}),
        )
        .await
        .err(422, "validation_failed");
    // A scope names records by id only: it is kept in the manifest, which is not encrypted.
    let scope = json!({"kind": "records", "record_kinds": ["contacts"], "ids": ["Jane Doe"]});
    let refused = w
        .engineer
        .post(
            &exports_path(&w.tenant),
            json!({"scope": scope, "recipient": recipient}),
        )
        .await;
    refused.err(422, "validation_failed");
    assert_eq!(refused.fields(), ["scope.ids"]);
    // No purpose, no export.
    w.engineer
        .with_purpose(None)
        .post(
            &exports_path(&w.tenant),
            json!({"scope": records_scope(&["cases"]), "recipient": recipient}),
        )
        .await
        .err(400, "purpose_required");

    let created = w
        .engineer
        .post(
            &exports_path(&w.tenant),
            json!({"scope": records_scope(&["contacts", "cases", "comments"]), "recipient": recipient}),
        )
        .await
        .ok(201);
    assert_eq!(created["state"], "ready", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let manifest = &created["manifest"];
    assert_eq!(manifest["requested_by"]["user_id"], w.engineer.id.as_str());
    assert_eq!(manifest["purpose"], "case-resolution");
    assert_eq!(manifest["record_count"], 3, "{manifest}");
    // The manifest in clear names no personal data.
    let manifest_text = manifest.to_string();
    for c in &w.canaries {
        assert!(!manifest_text.contains(c.as_str()), "manifest leaks {c}");
    }

    let ciphertext = download(&w.engineer, &w.tenant, &id).await;
    for c in &w.canaries {
        let hay = String::from_utf8_lossy(&ciphertext);
        assert!(!hay.contains(c.as_str()), "ciphertext holds {c} in clear");
    }
    // Another identity cannot open it.
    let (stranger, _) = key_pair();
    assert!(age::decrypt(&stranger, &ciphertext).is_err());

    let opened = open_export(&identity, &ciphertext);
    assert_eq!(opened.header["format"], "strongroom-export");
    assert_eq!(opened.header["version"], 1);
    assert_eq!(
        &opened.header["manifest"], manifest,
        "manifest inside = manifest in the API"
    );
    assert_eq!(
        manifest["content_sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&opened.content)),
        "the manifest hash is the content's"
    );

    // Exactly the engineer's reads: the same objects, field for field.
    let contacts = opened.of_kind("contact");
    assert_eq!(contacts.len(), 1);
    let read = w
        .engineer
        .get(&contact_path(&w.tenant, &w.contact))
        .await
        .ok(200);
    assert_eq!(contacts[0]["record"], read);
    let rec = &contacts[0]["record"];
    assert_eq!(rec["name"], w.canaries[0].as_str(), "identity in clear");
    assert!(rec.get("notes").is_none(), "sensitive withheld: {rec}");
    assert_ne!(
        rec["address"],
        w.canaries[1].as_str(),
        "detail masked: {rec}"
    );
    assert!(
        rec["_access"]["masked"]
            .as_array()
            .unwrap()
            .contains(&json!("address"))
    );
    let cases = opened.of_kind("case");
    assert_eq!(cases.len(), 1, "only the assigned case");
    assert_eq!(cases[0]["record"]["id"], w.case.as_str());
    let read_case = w.engineer.get(&case_path(&w.tenant, &w.case)).await.ok(200);
    assert_eq!(cases[0]["record"], read_case);
    let comments = opened.of_kind("comment");
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["record"]["body"], w.canaries[5].as_str());
    assert!(
        !opened
            .lines
            .iter()
            .any(|l| l["record"]["id"] == w.other_case.as_str())
    );
    assert_eq!(manifest["fields_withheld"], json!(["notes"]));

    // Only the requester downloads; the tenant's admin sees the manifest, not the content.
    let (status, _, _) = w
        .admin
        .get_bytes(&export_path(&w.tenant, &id, "/download"))
        .await;
    assert_eq!(status.as_u16(), 404);
    let seen = w.admin.get(&export_path(&w.tenant, &id, "")).await.ok(200);
    assert_eq!(seen["manifest"], *manifest);

    // Nothing of the export is on disk in clear (on PostgreSQL: in no row of the schema, as
    // text, hex or decoded bytea).
    for path in server.at_rest_files().await {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        for c in &w.canaries {
            assert!(!hay.contains(c.as_str()), "{} holds {c}", path.display());
            let hex_form = hex::encode(c);
            assert!(
                !hay.contains(&hex_form),
                "{} holds {c} as hex",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn exports_obey_the_lockbox_and_the_purpose_guardrails() {
    let server = shared(&SERVER, &[]);
    let w = world_with(&server, true).await;
    let (identity, recipient) = key_pair();
    let body = json!({"scope": records_scope(&["contacts", "cases", "comments", "attachments"]),
                      "recipient": recipient});
    // Marketing never reaches content, exports included; nor does a role without a content permit.
    w.admin
        .with_purpose(Some("marketing"))
        .post(&exports_path(&w.tenant), body.clone())
        .await
        .err(403, "purpose_not_permitted");
    let platform = server.admin().await;
    let auditor = staff_session(&server, &platform, "auditor").await;
    auditor
        .with_purpose(Some("legal-compliance"))
        .post(&exports_path(&w.tenant), body.clone())
        .await
        .err(403, "forbidden");

    // Without a grant, the assignment gives the engineer the case's metadata only, as its reads do.
    let created = w
        .engineer
        .post(&exports_path(&w.tenant), body)
        .await
        .ok(201);
    let id = created["id"].as_str().unwrap();
    // Taken away only for the purpose it was gathered for, stated again, and never marketing.
    let file = export_path(&w.tenant, id, "/download");
    w.engineer
        .with_purpose(Some("marketing"))
        .get(&file)
        .await
        .err(403, "purpose_not_permitted");
    w.engineer
        .with_purpose(None)
        .get(&file)
        .await
        .err(400, "purpose_required");
    let opened = open_export(&identity, &download(&w.engineer, &w.tenant, id).await);
    assert!(
        opened.of_kind("contact").is_empty(),
        "no contact without a grant"
    );
    assert!(
        opened.of_kind("comment").is_empty(),
        "no comments without a grant"
    );
    assert!(
        opened.of_kind("attachment").is_empty(),
        "no files without a grant"
    );
    let cases = opened.of_kind("case");
    assert_eq!(cases.len(), 1);
    let read = w.engineer.get(&case_path(&w.tenant, &w.case)).await.ok(200);
    assert_eq!(cases[0]["record"], read);
    assert!(
        cases[0]["record"].get("title").is_none(),
        "{}",
        cases[0]["record"]
    );
    let text = String::from_utf8_lossy(&opened.content).into_owned();
    for c in &w.canaries {
        assert!(!text.contains(c.as_str()), "export holds {c}");
    }

    // A purpose the caller may state, but not the one the export was made for.
    let body = json!({"scope": records_scope(&["cases"]), "recipient": recipient});
    let made = w
        .admin
        .with_purpose(Some("account-management"))
        .post(&exports_path(&w.tenant), body)
        .await
        .ok(201);
    assert_eq!(made["state"], "ready", "{made}");
    let file = export_path(&w.tenant, made["id"].as_str().unwrap(), "/download");
    w.admin
        .with_purpose(Some("legal-compliance"))
        .get(&file)
        .await
        .err(403, "purpose_not_permitted");
    let (status, _, _) = w
        .admin
        .with_purpose(Some("account-management"))
        .get_bytes(&file)
        .await;
    assert_eq!(status.as_u16(), 200);
}

#[tokio::test]
async fn a_filtered_export_keeps_only_matching_cases_and_the_tenant_can_forbid_exports() {
    let server = shared(&SERVER, &[]);
    let w = world(&server).await;
    let (identity, recipient) = key_pair();
    let admin = &w.admin;
    let created = admin
        .post(
            &exports_path(&w.tenant),
            json!({"scope": {"kind": "records", "record_kinds": ["cases"], "case_status": ["closed"]},
                   "recipient": recipient}),
        )
        .await
        .ok(201);
    let id = created["id"].as_str().unwrap();
    let opened = open_export(&identity, &download(admin, &w.tenant, id).await);
    let cases = opened.of_kind("case");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["record"]["id"], w.other_case.as_str());

    let platform = server.admin().await;
    platform
        .patch(
            &format!("/v1/tenants/{}/instructions", w.tenant),
            json!({"export_allowed": false}),
        )
        .await
        .ok(200);
    let refused = admin
        .post(
            &exports_path(&w.tenant),
            json!({"scope": records_scope(&["cases"]), "recipient": recipient}),
        )
        .await;
    refused.err(403, "forbidden");
    assert!(refused.text.contains("instructions"), "{}", refused.text);
}

#[tokio::test]
async fn quotas_and_four_eyes_approval_are_enforced_and_recorded() {
    let server = shared(&LIMITS, LIMITS_ENV);
    let platform = server.admin().await;
    let tenant = create_tenant(&platform, None).await;
    let admin = tenant_session(&server, &platform, "tenant_admin", &tenant).await;
    let user = tenant_session(&server, &platform, "tenant_user", &tenant).await;
    let colleague = tenant_session(&server, &platform, "tenant_user", &tenant).await;
    for i in 0..3 {
        create_contact(&user, &tenant, json!({"name": format!("Person {i}")})).await;
    }
    let (identity, recipient) = key_pair();
    let body = json!({"scope": records_scope(&["contacts"]), "recipient": recipient});

    // 3 records > threshold 2: pending approval, not downloadable.
    let pending = user
        .post(&exports_path(&tenant), body.clone())
        .await
        .ok(201);
    assert_eq!(pending["state"], "pending_approval", "{pending}");
    assert_eq!(pending["manifest"]["approval_required"], true);
    let id = pending["id"].as_str().unwrap().to_owned();
    let early = user.get(&export_path(&tenant, &id, "/download")).await;
    early.err(403, "forbidden");
    assert!(early.text.contains("approval"), "{}", early.text);

    // Never the requester; a colleague without the role cannot even see it.
    user.post(&export_path(&tenant, &id, "/approve"), json!({}))
        .await
        .err(403, "forbidden");
    colleague
        .post(&export_path(&tenant, &id, "/approve"), json!({}))
        .await
        .err(404, "not_found");
    let approved = admin
        .post(&export_path(&tenant, &id, "/approve"), json!({}))
        .await
        .ok(200);
    assert_eq!(approved["state"], "ready");
    assert_eq!(approved["approved_by"], admin.id.as_str());
    admin
        .post(&export_path(&tenant, &id, "/approve"), json!({}))
        .await
        .err(409, "conflict");
    let opened = open_export(&identity, &download(&user, &tenant, &id).await);
    assert_eq!(opened.of_kind("contact").len(), 3);

    // 3 used of 5 today: another 3 is over quota, refused with a clear message.
    let over = user.post(&exports_path(&tenant), body.clone()).await;
    over.err(403, "forbidden");
    assert!(over.text.contains("quota"), "{}", over.text);
    assert_eq!(
        over.body["error"]["details"],
        json!({"quota": 5, "used": 3, "requested": 3})
    );
    // The colleague has a quota of its own.
    let small = colleague
        .post(
            &exports_path(&tenant),
            json!({"scope": {"kind": "records", "record_kinds": ["contacts"],
                   "ids": [opened.of_kind("contact")[0]["record"]["id"]]}, "recipient": recipient}),
        )
        .await
        .ok(201);
    assert_eq!(small["state"], "ready");
    assert_eq!(small["record_count"], 1);
    // A support supervisor is a second person too (1 + 3 of 5 used).
    let big = colleague
        .post(&exports_path(&tenant), body.clone())
        .await
        .ok(201);
    assert_eq!(big["state"], "pending_approval");
    let supervisor = staff_session(&server, &platform, "support_supervisor").await;
    let ok = supervisor
        .post(
            &export_path(&tenant, big["id"].as_str().unwrap(), "/approve"),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(ok["approved_by"], supervisor.id.as_str());

    // The tenant's admin lists every export of the tenant; a user only its own.
    let all = list_items(&admin, &exports_path(&tenant)).await;
    assert_eq!(all.len(), 3, "{all:?}");
    let own = list_items(&user, &exports_path(&tenant)).await;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["id"], id.as_str());
    // A page at a time, the user's cursor is its own export, never a colleague's.
    let page = user
        .get(&format!("{}?limit=1", exports_path(&tenant)))
        .await
        .ok(200);
    assert_eq!(page["items"][0]["id"], id.as_str(), "{page}");
    assert_eq!(page["next_cursor"], id.as_str(), "{page}");

    // The refusals are in the tenant's access log.
    let log = admin
        .get(&format!("/v1/tenants/{tenant}/access-log?limit=500"))
        .await
        .ok(200);
    let entries: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["entry"])
        .collect();
    let has = |action: &str, decision: &str, reason: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["decision"] == decision
                && e["reason"] == reason
                && e["actor"]["user_id"] == user.id.as_str()
        })
    };
    assert!(
        has("export.create", "deny", "export_quota_exceeded"),
        "{entries:?}"
    );
    // A refusal discloses nothing, though the records were gathered before the quota was known.
    for refused in entries.iter().filter(|e| e["decision"] == "deny") {
        for shown in ["fields_disclosed", "fields_masked"] {
            let fields = refused[shown].as_array();
            assert!(fields.is_none_or(Vec::is_empty), "{refused}");
        }
    }
    assert!(has("export.approve", "deny", "forbidden"));
    assert!(has("export.download", "deny", "approval_required"));
    assert!(has("export.create", "allow", "approval_required"));
}

fn b64_hash(v: &Value) -> Hash {
    STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn the_tenant_archive_holds_everything_and_its_audit_proofs_verify() {
    let server = shared(&SERVER, &[]);
    let w = world(&server).await;
    let (identity, recipient) = key_pair();
    let body = json!({"scope": {"kind": "tenant_archive"}, "recipient": recipient});
    // Only the tenant's own admin.
    w.engineer
        .post(&exports_path(&w.tenant), body.clone())
        .await
        .err(403, "forbidden");
    let platform = server.admin().await;
    let user = tenant_session(&server, &platform, "tenant_user", &w.tenant).await;
    user.post(&exports_path(&w.tenant), body.clone())
        .await
        .err(403, "forbidden");

    // Let a checkpoint cover the tenant's entries so far.
    let anon = server.anon();
    let vkey = anon.get("/v1/audit/verifier-key").await.text;
    let verifier = NoteVerifier::parse(vkey.trim()).unwrap();
    let log = w
        .admin
        .get(&format!("/v1/tenants/{}/access-log?limit=500", w.tenant))
        .await
        .ok(200);
    let last = log["items"].as_array().unwrap().last().unwrap()["index"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while verifier
        .verify_checkpoint(&anon.get("/v1/audit/checkpoint").await.text)
        .unwrap()
        .size
        <= last
    {
        assert!(Instant::now() < deadline, "no checkpoint covers {last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let created = w.admin.post(&exports_path(&w.tenant), body).await.ok(201);
    assert_eq!(created["state"], "ready");
    assert_eq!(created["kind"], "tenant_archive");
    let id = created["id"].as_str().unwrap();
    let opened = open_export(&identity, &download(&w.admin, &w.tenant, id).await);
    assert_eq!(
        created["manifest"]["content_sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&opened.content))
    );
    // Everything, in clear for the tenant's admin.
    assert_eq!(opened.of_kind("contact").len(), 1);
    assert_eq!(opened.of_kind("case").len(), 2);
    assert_eq!(opened.of_kind("comment").len(), 1);
    // Files by their records and the SHA-256 of their content, which stays out of the archive.
    let files = opened.of_kind("attachment");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["record"]["name"], w.canaries[6].as_str());
    assert_eq!(
        files[0]["record"]["content_sha256"],
        hex::encode(Sha256::digest(w.canaries[7].as_bytes())).as_str()
    );
    assert!(!String::from_utf8_lossy(&opened.content).contains(w.canaries[7].as_str()));
    assert_eq!(created["manifest"]["counts"]["attachments"], 1);
    let contact = &opened.of_kind("contact")[0]["record"];
    assert_eq!(contact["notes"], w.canaries[2].as_str());

    // The audit entries verify against the signed checkpoint, checked with the server's key.
    let checkpoints = opened.of_kind("checkpoint");
    assert_eq!(checkpoints.len(), 1);
    let cp = verifier
        .verify_checkpoint(checkpoints[0]["note"].as_str().unwrap())
        .expect("the archive's checkpoint is signed by the log");
    assert!(cp.size > last);
    let entries = opened.of_kind("audit_entry");
    assert!(entries.len() >= 8, "{} entries", entries.len());
    for e in &entries {
        let index = e["index"].as_u64().unwrap();
        let leaf = STANDARD.decode(e["leaf"].as_str().unwrap()).unwrap();
        let parsed: Value = serde_json::from_slice(&leaf).unwrap();
        assert_eq!(parsed, e["entry"]);
        assert_eq!(parsed["tenant_id"], w.tenant.as_str());
        assert_eq!(e["inclusion"]["tree_size"].as_u64(), Some(cp.size));
        let hashes: Vec<Hash> = e["inclusion"]["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(b64_hash)
            .collect();
        verify_inclusion(index, cp.size, &leaf_hash(&leaf), &hashes, &cp.root)
            .unwrap_or_else(|err| panic!("inclusion of {index}: {err}"));
        assert!(
            verify_inclusion(index, cp.size, &leaf_hash(b"forged"), &hashes, &cp.root).is_err()
        );
    }
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["entry"]["action"].as_str())
        .collect();
    for a in [
        "contact.create",
        "case.create",
        "comment.create",
        "case.assign",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}
