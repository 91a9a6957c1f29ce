//! Deletion by crypto-shredding: `DELETE /v1/tenants/{id}` destroys the tenant's keys and rows,
//! returns a deletion certificate that verifies against the log's key, and leaves nothing on disk
//! (WAL included) that could bring the tenant's plaintext back. A contact's DSR deletion removes
//! the row and its blind index entry.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use strongroom_ledger::{NoteVerifier, leaf_hash, verify_inclusion};

use crate::kit::*;

/// The tenant's wrapped key blobs as stored (what, with the root key, would decrypt its data).
pub(crate) async fn wrapped_keys(server: &Server, tenant: &str) -> Vec<Vec<u8>> {
    let mut db = server.db().await;
    let keys = db
        .column::<Vec<u8>>(
            "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1",
            &[tenant.into()],
        )
        .await;
    db.close().await;
    keys
}

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// Files under `dir` that contain any of `needles` (raw bytes), with the needle's label.
pub(crate) fn find_in_dir(dir: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    find_in_files(&files_under(dir), needles)
}

/// Those of `files` that contain any of `needles` (raw bytes), with the needle's label.
pub(crate) fn find_in_files(files: &[PathBuf], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).unwrap_or_default();
        for (label, needle) in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                hits.push(format!("{}: {label}", path.display()));
            }
        }
    }
    hits
}

/// Needles for a wrapped key: its whole blob and its last 32 bytes (ciphertext and tag).
pub(crate) fn key_needles(keys: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        out.push((format!("wrapped key {i}"), k.clone()));
        out.push((format!("wrapped key {i} tail"), k[k.len() - 32..].to_vec()));
    }
    out
}

/// A tenant with an admin, two contacts, a case, a comment and a file, all carrying canaries.
pub(crate) struct Populated {
    pub tenant: String,
    pub boss: Session,
    pub canaries: Vec<String>,
    pub contact: String,
    pub email: String,
}

pub(crate) async fn populate(server: &Server, admin: &Api) -> Populated {
    let tenant = create_tenant(admin, None).await;
    let boss = tenant_session(server, admin, "tenant_admin", &tenant).await;
    let tag = rand_hex(8);
    let email = format!("shred-{tag}@example.com");
    let canaries = vec![
        format!("CANARY-{tag}-name"),
        format!("CANARY-{tag}-notes"),
        format!("CANARY-{tag}-title"),
        format!("CANARY-{tag}-comment"),
        format!("CANARY-{tag}-file-name"),
        format!("CANARY-{tag}-file-content"),
    ];
    let contact = create_contact(
        &boss,
        &tenant,
        json!({"name": canaries[0], "email": email, "notes": canaries[1]}),
    )
    .await;
    create_contact(
        &boss,
        &tenant,
        json!({"name": format!("CANARY-{tag}-other")}),
    )
    .await;
    let contact = id_of(&contact);
    let case = create_case(
        &boss,
        &tenant,
        json!({"title": canaries[2], "severity": "low", "contact_id": contact}),
    )
    .await;
    add_comment(&boss, &tenant, &id_of(&case), &canaries[3]).await;
    add_attachment(
        &boss,
        &tenant,
        &id_of(&case),
        &canaries[4],
        canaries[5].as_bytes(),
    )
    .await;
    boss.post(&format!("/v1/tenants/{tenant}/webhook-secret"), json!({}))
        .await
        .ok(200);
    Populated {
        tenant,
        boss,
        canaries,
        contact,
        email,
    }
}

pub(crate) async fn delete_tenant(api: &Api, tenant: &str, body: Value) -> Resp {
    api.send(
        Method::DELETE,
        &format!("/v1/tenants/{tenant}"),
        Body::Json(body),
        &[],
    )
    .await
}

/// Checks a deletion certificate the way a data-protection officer's tool would: the note's
/// signature under the published verifier key, the checkpoint's signature, and the inclusion
/// of the deletion entry in that checkpoint's tree. Returns the signed statement.
pub(crate) fn verify_certificate(cert: &Value, vkey: &str, tenant: &str) -> Value {
    let verifier = NoteVerifier::parse(vkey.trim()).unwrap();
    let body = verifier
        .verify(cert["certificate"].as_str().unwrap())
        .expect("the certificate's signature verifies");
    let (header, json_line) = body.split_once('\n').unwrap();
    assert_eq!(header, "strongroom deletion certificate v1");
    let statement: Value = serde_json::from_str(json_line.trim_end()).unwrap();
    assert_eq!(
        statement, cert["statement"],
        "the statement is what was signed"
    );
    assert_eq!(statement["tenant_id"], tenant);

    let audit = &statement["audit"];
    let checkpoint = verifier
        .verify_checkpoint(cert["checkpoint"].as_str().unwrap())
        .expect("the checkpoint verifies");
    assert_eq!(audit["checkpoint_size"].as_u64(), Some(checkpoint.size));
    assert_eq!(audit["checkpoint_root"], STANDARD.encode(checkpoint.root));
    assert_eq!(audit["log_origin"], checkpoint.origin);
    let entry = STANDARD.decode(audit["entry"].as_str().unwrap()).unwrap();
    let logged: Value = serde_json::from_slice(&entry).unwrap();
    let index = audit["index"].as_u64().unwrap();
    assert_eq!(logged["index"].as_u64(), Some(index));
    assert_eq!(logged["action"], "tenant.delete");
    assert_eq!(logged["tenant_id"], tenant);
    assert_eq!(logged["decision"], "allow");
    let proof: Vec<[u8; 32]> = audit["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            STANDARD
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    verify_inclusion(
        index,
        checkpoint.size,
        &leaf_hash(&entry),
        &proof,
        &checkpoint.root,
    )
    .expect("the deletion entry is in the signed tree");
    // A proof for another leaf must not verify: the check can fail.
    let mut other = entry.clone();
    other[0] ^= 1;
    assert!(
        verify_inclusion(
            index,
            checkpoint.size,
            &leaf_hash(&other),
            &proof,
            &checkpoint.root
        )
        .is_err()
    );
    statement
}

#[tokio::test]
async fn deleting_a_tenant_shreds_it_and_certifies_the_deletion() {
    let server = Server::start();
    let admin = server.admin().await;
    let t = populate(&server, &admin).await;
    let bystander = populate(&server, &admin).await;
    let keys = wrapped_keys(&server, &t.tenant).await;
    assert_eq!(keys.len(), 1);
    let needles = key_needles(&keys);
    // The data dir, and on PostgreSQL a dump of every row of the server's schema.
    assert!(
        !find_in_files(&server.at_rest_files().await, &needles).is_empty(),
        "the scan must see the wrapped key before the deletion"
    );

    // Who and how: only the platform admin, only with a reference (not free text).
    delete_tenant(&t.boss, &t.tenant, json!({"request_reference": "DPA-1"}))
        .await
        .err(403, "forbidden");
    delete_tenant(
        &admin,
        &t.tenant,
        json!({"request_reference": "Jane Doe, by letter"}),
    )
    .await
    .err(422, "validation_failed");
    delete_tenant(&admin, &t.tenant, json!({}))
        .await
        .err(400, "invalid_request");
    t.boss
        .get(&contact_path(&t.tenant, &t.contact))
        .await
        .ok(200);

    let cert = delete_tenant(
        &admin,
        &t.tenant,
        json!({"request_reference": "DPA-2026-0042"}),
    )
    .await
    .ok(200);
    let vkey = server.anon().get("/v1/audit/verifier-key").await.text;
    let statement = verify_certificate(&cert, &vkey, &t.tenant);
    assert_eq!(statement["request_reference"], "DPA-2026-0042");
    assert_eq!(statement["deleted_by"], admin.id);
    assert_eq!(statement["destroyed"]["key_versions"], json!([1]));
    let rows = &statement["destroyed"]["rows"];
    assert_eq!(rows["contacts"], 2, "{rows}");
    assert_eq!(rows["cases"], 1, "{rows}");
    assert_eq!(rows["comments"], 1, "{rows}");
    assert_eq!(rows["attachments"], 1, "{rows}");
    assert_eq!(rows["tenant_keys"], 1, "{rows}");
    assert_eq!(rows["users"], 1, "{rows}");
    assert_eq!(rows["webhook_secrets"], 1, "{rows}");
    assert!(rows["sessions"].as_u64().unwrap() >= 1, "{rows}");
    assert!(!cert.to_string().contains("CANARY"));

    // Gone for every API: the tenant, its data, its users' sessions; the bystander is intact.
    admin
        .get(&format!("/v1/tenants/{}", t.tenant))
        .await
        .err(404, "not_found");
    t.boss
        .get(&contact_path(&t.tenant, &t.contact))
        .await
        .err(401, "unauthenticated");
    try_login(&server, &t.boss.username, PASSWORD)
        .await
        .err(401, "invalid_credentials");
    delete_tenant(
        &admin,
        &t.tenant,
        json!({"request_reference": "DPA-2026-0042"}),
    )
    .await
    .err(404, "not_found");
    bystander
        .boss
        .get(&contact_path(&bystander.tenant, &bystander.contact))
        .await
        .ok(200);

    // Nothing on disk (database, WAL, anything) still holds the wrapped key, live and stopped.
    let mut needles = needles;
    needles.extend(
        t.canaries
            .iter()
            .map(|c| (c.clone(), c.as_bytes().to_vec())),
    );
    let hits = find_in_files(&server.at_rest_files().await, &needles);
    assert!(
        hits.is_empty(),
        "wrapped key survives the deletion: {hits:?}"
    );
    let mut db = server.db().await;
    for table in [
        "contacts",
        "cases",
        "comments",
        "attachments",
        "users",
        "tenant_keys",
        "tenants",
    ] {
        let column = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table} WHERE {column} = $1");
        let n = db.int(&sql, &[(&t.tenant).into()]).await;
        assert_eq!(n, 0, "{table} still holds rows of the deleted tenant");
    }
    let entries = db
        .int(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries WHERE tenant_id = $1",
            &[(&t.tenant).into()],
        )
        .await;
    assert!(entries > 3, "the tenant's audit entries stay");
    db.close().await;
    let status = server.stop().await;
    assert!(status.success());
    let hits = find_in_files(&server.at_rest_files().await, &needles);
    assert!(hits.is_empty(), "wrapped key on disk after stop: {hits:?}");
    let verify = std::process::Command::new(binary())
        .args(["audit", "verify", "--data-dir"])
        .arg(&server.data_dir)
        .args(server.store_args())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the log still verifies: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test]
async fn a_contact_dsr_deletion_removes_the_row_and_its_index_entry() {
    let server = Server::start();
    let admin = server.admin().await;
    let t = populate(&server, &admin).await;
    let search = format!("{}?email={}", contacts_path(&t.tenant), urlencode(&t.email));
    assert_eq!(list_items(&t.boss, &search).await.len(), 1);
    let mut db = server.db().await;
    let index: Vec<u8> = db
        .one(
            "SELECT email_index FROM contacts WHERE tenant_id = $1 AND id = $2",
            &[(&t.tenant).into(), (&t.contact).into()],
        )
        .await;

    t.boss
        .delete(&contact_path(&t.tenant, &t.contact))
        .await
        .ok(204);
    assert!(list_items(&t.boss, &search).await.is_empty());
    t.boss
        .get(&contact_path(&t.tenant, &t.contact))
        .await
        .err(404, "not_found");
    let rows = db
        .int(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM contacts \
             WHERE tenant_id = $1 AND (id = $2 OR email_index = $3)",
            &[(&t.tenant).into(), (&t.contact).into(), (&index).into()],
        )
        .await;
    assert_eq!(rows, 0, "the contact or its blind index entry survives");
}

/// A reader holding a snapshot keeps the journal (with old page images of the destroyed key)
/// from being truncated at the deletion; the server keeps trying until it is, and the key leaves
/// the disk. (The journal may fill again at once with later writes, such as the next signed
/// checkpoint, so its size is no witness: the server's own report of the truncation is.)
#[tokio::test]
async fn the_journal_is_truncated_once_a_reader_that_held_it_up_is_gone() {
    if on_postgres() {
        eprintln!("SQLite only: PostgreSQL's WAL is its own");
        return;
    }
    let server = Server::start_with(&[("STRONGROOM_STORE_BUSY_TIMEOUT_MS", "200")], &[]);
    let admin = server.admin().await;
    let t = populate(&server, &admin).await;
    let needles = key_needles(&wrapped_keys(&server, &t.tenant).await);
    let mut reader = Db::sqlite(&server.data_dir).await;
    reader.execute("BEGIN", &[]).await;
    reader.execute("SELECT COUNT(*) FROM tenants", &[]).await;
    delete_tenant(&admin, &t.tenant, json!({"request_reference": "DPA-9"}))
        .await
        .ok(200);
    let wal = server.data_dir.join("strongroom.db-wal");
    let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        size() > 0,
        "the journal was truncated under a reader's snapshot"
    );
    // The reader's snapshot still needs the pages that held the key: they stay on disk.
    assert!(
        !find_in_dir(&server.data_dir, &needles).is_empty(),
        "the deleted key left the disk under a reader's snapshot"
    );
    reader.execute("COMMIT", &[]).await;
    reader.close().await;
    assert!(
        server
            .stderr()
            .contains("journal not truncated after a tenant deletion"),
        "the server did not see the journal held up"
    );
    // The server retries until the journal is truncated, and the key is gone from the disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let truncated = server
            .stderr()
            .contains("journal truncated after a tenant deletion");
        let hits = find_in_dir(&server.data_dir, &needles);
        if truncated && hits.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "truncated: {truncated}; the deleted key on disk: {hits:?} (journal {} bytes)",
            size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
