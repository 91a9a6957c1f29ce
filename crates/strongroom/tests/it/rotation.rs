//! Key rotation: a new version for new writes at once, online re-encryption of everything older
//! (concurrent reads never fail nor change), resumption after a SIGKILL, retirement of unused
//! versions, the CLI, and root-key rotation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kit::*;

/// Small, slow batches so that a test can watch (and interrupt) the job half-way.
fn env(batch: &'static str, pause_ms: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("STRONGROOM_REENCRYPT_BATCH_SIZE", batch),
        ("STRONGROOM_REENCRYPT_BATCH_PAUSE_MS", pause_ms),
        ("STRONGROOM_KEY_JOB_INTERVAL_SECS", "1"),
        ("STRONGROOM_KEY_RETIRE_GRACE_SECS", "1"),
    ]
}

fn version_state(status: &Value, version: u64) -> Option<String> {
    status["versions"]
        .as_array()?
        .iter()
        .find(|v| v["version"] == version)
        .and_then(|v| v["state"].as_str().map(str::to_owned))
}

/// Polls the key status until `done` holds (60 s at most).
async fn wait_keys(admin: &Api, tenant: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = admin.get(&keys_path(tenant)).await.ok(200);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never reached; last {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn retired_and_done(status: &Value, old: u64) -> bool {
    status["reencryption_pending"] == 0 && version_state(status, old).as_deref() == Some("retired")
}

/// Key version → number of ciphertexts, read from the headers in the store.
async fn versions_on_disk(server: &Server, tenant: &str) -> BTreeMap<u32, i64> {
    let mut db = server.db().await;
    let mut out = BTreeMap::new();
    for (table, cols) in [
        (
            "contacts",
            &["name", "email", "phone", "address", "notes"][..],
        ),
        ("cases", &["title", "description"][..]),
        ("comments", &["body"][..]),
        ("webhook_secrets", &["secret"][..]),
        (
            "access_requests",
            &["justification", "decision_comment"][..],
        ),
    ] {
        for col in cols {
            let sql = format!(
                "SELECT substr({col}, 2, 4) FROM {table} WHERE tenant_id = $1 AND {col} IS NOT NULL"
            );
            let rows: Vec<Vec<u8>> = db.column(&sql, &[tenant.into()]).await;
            for v in rows {
                let v = u32::from_be_bytes(v.as_slice().try_into().unwrap());
                *out.entry(v).or_insert(0) += 1;
            }
        }
    }
    db.close().await;
    out
}

async fn key_rows(server: &Server, tenant: &str) -> Vec<i64> {
    let mut db = server.db().await;
    let rows = db
        .column(
            "SELECT CAST(version AS BIGINT) FROM tenant_keys WHERE tenant_id = $1 ORDER BY version",
            &[tenant.into()],
        )
        .await;
    db.close().await;
    rows
}

/// `n` contacts with every field set; returns id → the contact as read back.
async fn seed_contacts(api: &Api, tenant: &str, n: usize) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for i in 0..n {
        let c = create_contact(
            api,
            tenant,
            json!({
                "name": format!("Person {i} {}", rand_hex(4)),
                "email": format!("p{i}-{}@example.com", rand_hex(4)),
                "phone": format!("+44 20 7946 {:04}", i),
                "address": format!("{i} Rotation Street"),
                "notes": format!("note {i} {}", rand_hex(8)),
            }),
        )
        .await;
        out.insert(id_of(&c), c);
    }
    out
}

const FIELDS: [&str; 5] = ["name", "email", "phone", "address", "notes"];

fn same_fields(a: &Value, b: &Value) -> bool {
    FIELDS.iter().all(|f| a[f] == b[f])
}

/// Reads every contact until told to stop; each read must succeed with the same plaintext.
fn spawn_readers(
    api: Api,
    tenant: String,
    expected: Arc<BTreeMap<String, Value>>,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            for (id, want) in expected.iter() {
                let got = api.get(&contact_path(&tenant, id)).await.ok(200);
                assert!(
                    same_fields(&got, want),
                    "read during rotation changed: {got} vs {want}"
                );
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

#[tokio::test]
async fn rotation_reencrypts_online_without_losing_a_read() {
    let server = Server::start_with(&env("4", "20"), &[]);
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contacts = Arc::new(seed_contacts(&boss, &tenant, 30).await);
    // Changed by users while the job runs: their writes must win.
    let edited = seed_contacts(&boss, &tenant, 6).await;
    let first = contacts.values().next().unwrap().clone();
    let case = create_case(
        &boss,
        &tenant,
        json!({"title": "Broken engine", "description": "it whirrs", "contact_id": id_of(&first)}),
    )
    .await;
    let case_id = id_of(&case);
    let comment = add_comment(&boss, &tenant, &case_id, "first comment").await;
    // An operator's access request: its justification is tenant ciphertext too.
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    assign(&supervisor, &tenant, &case_id, &engineer.id).await;
    let justification = format!("ticket {}: customer asked us to look", rand_hex(4));
    engineer
        .post(
            &format!("/v1/tenants/{tenant}/access-requests"),
            json!({"case_id": case_id, "purpose": "case-resolution",
                   "justification": justification, "field_classes": ["case_content"],
                   "duration_minutes": 60}),
        )
        .await
        .ok(201);
    let secret = boss
        .post(&format!("/v1/tenants/{tenant}/webhook-secret"), json!({}))
        .await
        .ok(200)["secret"]
        .clone();

    let before = admin.get(&keys_path(&tenant)).await.ok(200);
    assert_eq!(before["current_version"], 1, "{before}");
    assert_eq!(before["reencryption_pending"], 0, "{before}");
    assert_eq!(version_state(&before, 1).as_deref(), Some("current"));
    // Tenants see their data, not their keys; staff other than platform admins neither.
    boss.post(&format!("{}/rotate", keys_path(&tenant)), json!({}))
        .await
        .err(403, "forbidden");
    boss.get(&keys_path(&tenant)).await.err(403, "forbidden");

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            spawn_readers(
                boss.api.clone(),
                tenant.clone(),
                Arc::clone(&contacts),
                Arc::clone(&stop),
                Arc::clone(&reads),
            )
        })
        .collect();

    let rotated = admin
        .post(&format!("{}/rotate", keys_path(&tenant)), json!({}))
        .await
        .ok(201);
    assert_eq!(rotated["current_version"], 2, "{rotated}");
    // New writes use the new version at once.
    let fresh = create_contact(&boss, &tenant, json!({"name": "Written after rotation"})).await;
    let fresh_id = id_of(&fresh);
    let mut db = server.db().await;
    let v: Vec<u8> = db
        .one(
            "SELECT substr(name, 2, 4) FROM contacts WHERE tenant_id = $1 AND id = $2",
            &[(&tenant).into(), (&fresh_id).into()],
        )
        .await;
    db.close().await;
    assert_eq!(
        v,
        2u32.to_be_bytes().to_vec(),
        "a new write under the old key"
    );
    // A lookup by e-mail finds contacts whatever version their index is under.
    let email = first["email"].as_str().unwrap();
    let found = list_items(
        &boss,
        &format!("{}?email={}", contacts_path(&tenant), urlencode(email)),
    )
    .await;
    assert_eq!(found.len(), 1, "search during rotation: {found:?}");
    let mut edits = BTreeMap::new();
    for id in edited.keys() {
        let notes = format!("edited during rotation {}", rand_hex(4));
        boss.patch(&contact_path(&tenant, id), json!({"notes": notes}))
            .await
            .ok(200);
        edits.insert(id.clone(), notes);
    }

    let done = wait_keys(&admin, &tenant, "re-encryption and retirement", |s| {
        retired_and_done(s, 1)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("a read during rotation failed");
    }
    assert!(
        reads.load(Ordering::Relaxed) >= contacts.len(),
        "readers did not run"
    );
    assert_eq!(
        version_state(&done, 2).as_deref(),
        Some("current"),
        "{done}"
    );

    // Everything on disk is under version 2, and version 1's key is gone.
    let on_disk = versions_on_disk(&server, &tenant).await;
    assert_eq!(
        on_disk.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "{on_disk:?}"
    );
    assert_eq!(key_rows(&server, &tenant).await, vec![2]);

    // And it all still reads the same.
    for (id, want) in contacts.iter() {
        let got = boss.get(&contact_path(&tenant, id)).await.ok(200);
        assert!(same_fields(&got, want), "{got} vs {want}");
    }
    for (id, notes) in &edits {
        let got = boss.get(&contact_path(&tenant, id)).await.ok(200);
        assert_eq!(got["notes"], notes.as_str(), "a user write was undone");
        assert_eq!(got["name"], edited[id]["name"]);
    }
    let case_now = boss.get(&case_path(&tenant, &case_id)).await.ok(200);
    assert_eq!(case_now["title"], case["title"]);
    assert_eq!(case_now["description"], case["description"]);
    let comments = list_items(&boss, &comments_path(&tenant, &case_id)).await;
    assert_eq!(comments[0]["body"], comment["body"]);
    let requests = list_items(&boss, &format!("/v1/tenants/{tenant}/access-requests")).await;
    assert_eq!(requests[0]["justification"], justification.as_str());
    let secret_now = boss
        .get(&format!("/v1/tenants/{tenant}/webhook-secret"))
        .await
        .ok(200);
    assert_eq!(secret_now["secret"], secret);
    let found = list_items(
        &boss,
        &format!("{}?email={}", contacts_path(&tenant), urlencode(email)),
    )
    .await;
    assert_eq!(found.len(), 1, "search after re-indexing: {found:?}");

    // A second rotation never reuses the retired number.
    let again = admin
        .post(&format!("{}/rotate", keys_path(&tenant)), json!({}))
        .await
        .ok(201);
    assert_eq!(again["current_version"], 3, "{again}");
}

#[tokio::test]
async fn a_crash_during_reencryption_resumes_after_restart() {
    let server = Server::start_with(&env("2", "40"), &[]);
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contacts = seed_contacts(&boss, &tenant, 80).await;
    let total = versions_on_disk(&server, &tenant).await[&1];

    admin
        .post(&format!("{}/rotate", keys_path(&tenant)), json!({}))
        .await
        .ok(201);
    // Half-way: some moved, some not.
    let mid = wait_keys(&admin, &tenant, "some progress", |s| {
        let pending = s["reencryption_pending"].as_i64().unwrap_or(0);
        pending > 0 && pending < total
    })
    .await;
    let status = Command::new("kill")
        .args(["-KILL", &server.pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.is_running() {
        assert!(Instant::now() < deadline, "server survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = versions_on_disk(&server, &tenant).await;
    assert!(
        left.get(&1).copied().unwrap_or(0) > 0 && left.get(&2).copied().unwrap_or(0) > 0,
        "not killed half-way: {left:?} (status {mid})"
    );

    let server = server.restart().await;
    let admin = server.admin().await;
    wait_keys(&admin, &tenant, "resumed re-encryption", |s| {
        retired_and_done(s, 1)
    })
    .await;
    let on_disk = versions_on_disk(&server, &tenant).await;
    assert_eq!(
        on_disk.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "{on_disk:?}"
    );
    assert_eq!(on_disk[&2], total, "ciphertexts lost or gained");
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    for (id, want) in &contacts {
        let got = boss.get(&contact_path(&tenant, id)).await.ok(200);
        assert!(same_fields(&got, want), "{got} vs {want}");
    }
}

/// Runs `strongroom ARGS…` on `server`'s store; returns (success, stdout, stderr).
fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .envs(server.store_env())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_rotation_and_root_key_rotation() {
    let server = Server::start_with(&env("50", "0"), &[]);
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contacts = seed_contacts(&boss, &tenant, 5).await;
    // A second factor: its seed is sealed under a key derived from the root key.
    let engineer = create_user(&admin, "support_engineer", None).await;
    let (api, _) = login(&server, &engineer.username, PASSWORD).await;
    let (seed, _) = crate::mfa::enrol(&api, &engineer.username).await;
    let dir = server.data_dir.to_str().unwrap().to_owned();

    // Admin CLIs take the data-dir lock: refused while the server runs.
    let (ok, _, stderr) = cli(
        &server,
        &["keys", "rotate", "--tenant", &tenant, "--data-dir", &dir],
    );
    assert!(!ok, "rotated beside a running server");
    assert!(stderr.contains("running server"), "{stderr}");
    assert!(server.stop().await.success());

    let (ok, out, stderr) = cli(
        &server,
        &["keys", "rotate", "--tenant", &tenant, "--data-dir", &dir],
    );
    assert!(ok, "keys rotate: {stderr}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["current_version"], 2, "{status}");
    let (ok, _, _) = cli(
        &server,
        &[
            "keys",
            "rotate",
            "--tenant",
            "no-such-tenant",
            "--data-dir",
            &dir,
        ],
    );
    assert!(!ok, "rotated an unknown tenant");

    // Root key: every tenant key rewrapped, the data untouched.
    let key_path = server.data_dir.join("keys/root.key");
    let old_key = std::fs::read(&key_path).unwrap();
    let data_before = versions_on_disk(&server, &tenant).await;
    let (ok, out, stderr) = cli(&server, &["keys", "rotate-root", "--data-dir", &dir]);
    assert!(ok, "keys rotate-root: {stderr}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["tenant_keys_rewrapped"], 2, "{report}");
    assert_eq!(report["user_secrets_resealed"], 1, "{report}");
    assert_ne!(
        std::fs::read(&key_path).unwrap(),
        old_key,
        "root.key unchanged"
    );
    assert!(!server.data_dir.join("keys/root.key.old").exists());
    assert!(!server.data_dir.join("keys/root.key.new").exists());
    assert_eq!(versions_on_disk(&server, &tenant).await, data_before);

    // Restart: the job re-encrypts to version 2; everything reads the same.
    let server = server.restart().await;
    let admin = server.admin().await;
    wait_keys(&admin, &tenant, "re-encryption after CLI rotation", |s| {
        retired_and_done(s, 1)
    })
    .await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    for (id, want) in &contacts {
        let got = boss.get(&contact_path(&tenant, id)).await.ok(200);
        assert!(same_fields(&got, want), "{got} vs {want}");
    }
    let with_code = server
        .anon()
        .post(
            "/v1/auth/login",
            json!({"username": engineer.username, "password": PASSWORD,
                   "totp": crate::mfa::next_code(&seed)}),
        )
        .await;
    with_code.ok(200);
    assert!(server.stop().await.success());

    // The old root key no longer opens anything: the server refuses to start with it.
    std::fs::write(&key_path, &old_key).unwrap();
    let err = server.refused_restart();
    assert!(err.contains("does not open the keys"), "stderr: {err}");
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
}

/// The data dir's `keys/root.key`, `root.key.new` and `root.key.old`.
fn root_key_files(server: &Server) -> (PathBuf, PathBuf, PathBuf) {
    let keys = server.data_dir.join("keys");
    (
        keys.join("root.key"),
        keys.join("root.key.new"),
        keys.join("root.key.old"),
    )
}

/// Stops `server` as a root rotation stopped before its commit would leave it (a new key file
/// the database knows nothing of), starts it again and checks that the rotation was undone.
async fn restart_after_a_rotation_stopped_before_its_commit(server: Server) -> Server {
    let (current, new, old) = root_key_files(&server);
    let key = std::fs::read(&current).unwrap();
    assert!(server.stop().await.success());
    write_private(&new, b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    write_private(&old, &key);
    let server = server.restart().await;
    assert!(!new.exists() && !old.exists(), "leftovers after undo");
    assert_eq!(
        std::fs::read(&current).unwrap(),
        key,
        "the key the database is under was replaced"
    );
    server
}

#[tokio::test]
async fn an_interrupted_root_rotation_is_undone_or_completed() {
    let server = Server::start_with(&env("50", "0"), &[]);
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contacts = seed_contacts(&boss, &tenant, 2).await;
    let server = restart_after_a_rotation_stopped_before_its_commit(server).await;
    let (current, new, old) = root_key_files(&server);
    let k1 = std::fs::read(&current).unwrap();
    let admin = server.admin().await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    for id in contacts.keys() {
        boss.get(&contact_path(&tenant, id)).await.ok(200);
    }
    assert!(server.stop().await.success());

    // Stopped after the commit, before the swap: the database is under the new key. Completed.
    let dir = server.data_dir.to_str().unwrap().to_owned();
    let given = server.root().join("given.key");
    let given_text = b"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n";
    write_private(&given, given_text);
    let (ok, _, stderr) = cli(
        &server,
        &[
            "keys",
            "rotate-root",
            "--data-dir",
            &dir,
            "--new-key-file",
            given.to_str().unwrap(),
        ],
    );
    assert!(ok, "{stderr}");
    let k2 = std::fs::read(&current).unwrap();
    assert_eq!(k2, given_text.to_vec(), "--new-key-file not used");
    std::fs::rename(&current, &new).unwrap();
    write_private(&current, &k1);
    write_private(&old, &k1);
    let server = server.restart().await;
    assert!(!new.exists() && !old.exists(), "leftovers after completion");
    assert_eq!(std::fs::read(&current).unwrap(), k2);
    let admin = server.admin().await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    for (id, want) in &contacts {
        let got = boss.get(&contact_path(&tenant, id)).await.ok(200);
        assert!(same_fields(&got, want), "{got} vs {want}");
    }

    // Stopped after the swap, before the old key was removed: the old key goes at the next start.
    assert!(server.stop().await.success());
    write_private(&old, &k1);
    let server = server.restart().await;
    assert!(!old.exists(), "the replaced root key outlived its rotation");
    assert_eq!(std::fs::read(&current).unwrap(), k2);
    let admin = server.admin().await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let (id, want) = contacts.iter().next().unwrap();
    let got = boss.get(&contact_path(&tenant, id)).await.ok(200);
    assert!(same_fields(&got, want), "{got} vs {want}");
}

/// With nothing sealed yet, the fingerprint the database records says which key it is under: a
/// rotation stopped before its commit is undone, and the server starts again.
#[tokio::test]
async fn an_interrupted_root_rotation_with_nothing_sealed_is_undone() {
    let server = Server::start();
    let server = restart_after_a_rotation_stopped_before_its_commit(server).await;
    server.admin().await.get("/v1/me").await.ok(200);
}

/// With no tenant, the second-factor seeds alone say which key the database is under: a
/// rotation stopped before its commit is undone, and the seeds still open.
#[tokio::test]
async fn an_interrupted_root_rotation_without_tenants_keeps_the_seeds_key() {
    let server = Server::start();
    let admin = server.admin().await;
    let engineer = create_user(&admin, "support_engineer", None).await;
    let (api, _) = login(&server, &engineer.username, PASSWORD).await;
    let (seed, _) = crate::mfa::enrol(&api, &engineer.username).await;
    drop((api, admin));
    let server = restart_after_a_rotation_stopped_before_its_commit(server).await;
    server
        .anon()
        .post(
            "/v1/auth/login",
            json!({"username": engineer.username, "password": PASSWORD,
                   "totp": crate::mfa::next_code(&seed)}),
        )
        .await
        .ok(200);
}
