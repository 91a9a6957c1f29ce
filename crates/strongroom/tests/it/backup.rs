//! Backups end to end: an online backup while the server writes, `verify` (which fails on any
//! tampering), a restore drill (same answers, a verifying log), and the shredding guarantee: a
//! backup taken before a tenant's deletion, once restored, has no way back to its plaintext.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::exports::{export_path, exports_path, key_pair, open_export, records_scope};
use crate::kit::*;
use crate::lifecycle_shred::{
    Populated, delete_tenant, find_in_dir, key_needles, populate, verify_certificate, wrapped_keys,
};

pub(crate) struct Run {
    pub(crate) ok: bool,
    pub(crate) out: String,
}

pub(crate) fn cli<S: AsRef<OsStr>>(args: &[S]) -> Run {
    cli_with(args, &[])
}

/// [`cli`] with extra environment (e.g. `Server::store_env`).
fn cli_with<S: AsRef<OsStr>>(args: &[S], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new(binary());
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("STRONGROOM_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().expect("run strongroom");
    Run {
        ok: out.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `strongroom backup create|keys --data-dir DATA --out OUT`.
fn backup_to(what: &str, data: &Path, out: &Path) -> Run {
    cli(&[
        OsStr::new("backup"),
        OsStr::new(what),
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ])
}

pub(crate) fn create(data: &Path, out: &Path) -> Run {
    backup_to("create", data, out)
}

pub(crate) fn key_backup(data: &Path, out: &Path) -> Run {
    backup_to("keys", data, out)
}

pub(crate) fn verify(file: &Path, data: &Path) -> Run {
    cli(&[
        OsStr::new("backup"),
        OsStr::new("verify"),
        file.as_os_str(),
        OsStr::new("--data-dir"),
        data.as_os_str(),
    ])
}

fn restore(file: &Path, into: &Path, live: &Path) -> Run {
    cli(&[
        OsStr::new("backup"),
        OsStr::new("restore"),
        file.as_os_str(),
        OsStr::new("--data-dir"),
        into.as_os_str(),
        OsStr::new("--keys-from"),
        live.as_os_str(),
    ])
}

fn audit_verify(data: &Path) -> Run {
    cli(&[
        OsStr::new("audit"),
        OsStr::new("verify"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
    ])
}

fn new_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strongroom-it-restore-")
        .tempdir()
        .unwrap()
}

#[tokio::test]
async fn backup_verify_restore_and_shredded_tenants_stay_shredded() {
    if skip_on_postgres(
        "`strongroom backup` copies the SQLite file of a data dir; backups of a PostgreSQL deployment are pg_dump's job",
    ) {
        return;
    }
    let server = Server::start();
    let admin = server.admin().await;
    let doomed = populate(&server, &admin).await;
    let kept = populate(&server, &admin).await;
    let doomed_keys = key_needles(&wrapped_keys(&server, &doomed.tenant).await);
    let files = tempfile::tempdir().unwrap();
    let backup = files.path().join("before.bak");
    let (_, recipient) = key_pair();
    let export = kept
        .boss
        .post(
            &exports_path(&kept.tenant),
            json!({"scope": records_scope(&["contacts"]), "recipient": recipient}),
        )
        .await
        .ok(201);
    assert_eq!(export["state"], "ready", "{export}");

    // Online: the server keeps taking writes while the backup runs.
    let writer = {
        let api = kept.boss.api.clone();
        let tenant = kept.tenant.clone();
        tokio::spawn(async move {
            for n in 0..20 {
                create_contact(&api, &tenant, json!({"name": format!("during backup {n}")})).await;
            }
        })
    };
    let (data, out) = (server.data_dir.clone(), backup.clone());
    let made = tokio::task::spawn_blocking(move || create(&data, &out))
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(made.ok, "backup create failed: {}", made.out);
    let checked = verify(&backup, &server.data_dir);
    assert!(checked.ok && checked.out.contains("OK"), "{}", checked.out);

    // That the backup holds no tenant key at all is `verify`'s check on the decrypted copy (above:
    // it fails on any `tenant_keys` row) and the restored database's (below). Here: the file is
    // encrypted, so not one canary or wrapped key shows in its bytes.
    let mut needles = doomed_keys.clone();
    needles.extend(
        doomed
            .canaries
            .iter()
            .map(|c| (c.clone(), c.as_bytes().to_vec())),
    );
    assert!(find_in_dir(files.path(), &needles).is_empty());

    // Any change to the file makes verify fail.
    let bytes = std::fs::read(&backup).unwrap();
    for (name, tampered) in [
        ("flipped", {
            let mut b = bytes.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x01;
            b
        }),
        ("truncated", bytes[..bytes.len() - 100].to_vec()),
        ("header", {
            let mut b = bytes.clone();
            b[25] ^= 0x01;
            b
        }),
    ] {
        let path = files.path().join(format!("{name}.bak"));
        std::fs::write(&path, tampered).unwrap();
        let run = verify(&path, &server.data_dir);
        assert!(!run.ok, "verify accepted a {name} backup: {}", run.out);
    }

    // Restore drill: a server on the restored dir gives the same answers; its log verifies.
    let answer = kept
        .boss
        .get(&contact_path(&kept.tenant, &kept.contact))
        .await
        .ok(200);
    let drill = new_root();
    let run = restore(&backup, &drill.path().join("data"), &server.data_dir);
    assert!(run.ok, "restore failed: {}", run.out);
    let refused = restore(&backup, &drill.path().join("data"), &server.data_dir);
    assert!(
        !refused.ok && refused.out.contains("not empty"),
        "{}",
        refused.out
    );
    let restored = Server::start_in(drill, &[], &[]);
    // Sessions in the backup do not come back (one revoked since, because it leaked, would).
    let old_token = kept.boss.api.token().unwrap();
    restored
        .anon()
        .with_token(Some(old_token))
        .get("/v1/me")
        .await
        .err(401, "unauthenticated");
    let boss = open_session(&restored, &kept.boss.username, PASSWORD, "tenant_admin").await;
    // The backup holds no export ciphertext: the export comes back expired.
    let seen = boss
        .get(&export_path(&kept.tenant, &id_of(&export), ""))
        .await
        .ok(200);
    assert_eq!(seen["state"], "expired", "{seen}");
    let again = boss
        .get(&contact_path(&kept.tenant, &kept.contact))
        .await
        .ok(200);
    assert_eq!(again, answer);
    let doomed_boss =
        open_session(&restored, &doomed.boss.username, PASSWORD, "tenant_admin").await;
    doomed_boss
        .get(&contact_path(&doomed.tenant, &doomed.contact))
        .await
        .ok(200);
    assert!(restored.stop().await.success());
    let log = audit_verify(&restored.data_dir);
    assert!(log.ok, "restored log does not verify: {}", log.out);

    // Shred one tenant on the live deployment; the backup taken before must not bring it back.
    let cert = delete_tenant(
        &admin,
        &doomed.tenant,
        json!({"request_reference": "DPA-7"}),
    )
    .await
    .ok(200);
    let vkey = server.anon().get("/v1/audit/verifier-key").await.text;
    verify_certificate(&cert, &vkey, &doomed.tenant);
    let after = new_root();
    let run = restore(&backup, &after.path().join("data"), &server.data_dir);
    assert!(run.ok, "restore failed: {}", run.out);
    assert!(run.out.contains(&doomed.tenant), "{}", run.out);
    let hits = find_in_dir(&after.path().join("data"), &needles);
    assert!(
        hits.is_empty(),
        "restored dir holds the shredded tenant's keys: {hits:?}"
    );
    let restored = Server::start_in(after, &[], &[]);
    let admin2 = restored.admin().await;
    admin2
        .get(&format!("/v1/tenants/{}", doomed.tenant))
        .await
        .err(404, "not_found");
    // The restored log says why the tenant's records are gone, with the deletion's reference.
    let auditor = staff_session(&restored, &admin2, "auditor").await;
    let removals = entries_with_action(&auditor, "tenant.restore_removed").await;
    assert_eq!(removals.len(), 1, "{removals:?}");
    assert_eq!(removals[0]["tenant_id"], doomed.tenant.as_str());
    assert_eq!(removals[0]["justification"], "request_reference:DPA-7");
    assert_eq!(removals[0]["reason"], "shredded_since_backup");
    try_login(&restored, &doomed.boss.username, PASSWORD)
        .await
        .err(401, "invalid_credentials");
    let boss = open_session(&restored, &kept.boss.username, PASSWORD, "tenant_admin").await;
    assert_eq!(
        boss.get(&contact_path(&kept.tenant, &kept.contact))
            .await
            .ok(200),
        answer
    );
    assert!(restored.stop().await.success());
    let log = audit_verify(&restored.data_dir);
    assert!(log.ok, "restored log does not verify: {}", log.out);

    // Disaster recovery without the live deployment: a key backup taken after the deletion
    // restores the other tenants and not the shredded one.
    let keys = files.path().join("after.keys");
    let run = key_backup(&server.data_dir, &keys);
    assert!(run.ok, "backup keys failed: {}", run.out);
    // Encrypted too: no wrapped key or canary in clear in either file.
    assert!(find_in_dir(files.path(), &needles).is_empty());
    let dr = new_root();
    let root_key = server.data_dir.join("keys/root.key");
    let dr_data = dr.path().join("data");
    let run = cli(&[
        OsStr::new("backup"),
        OsStr::new("restore"),
        backup.as_os_str(),
        OsStr::new("--data-dir"),
        dr_data.as_os_str(),
        OsStr::new("--keys-from"),
        keys.as_os_str(),
        OsStr::new("--root-key-file"),
        root_key.as_os_str(),
    ]);
    assert!(run.ok, "restore from a key backup failed: {}", run.out);
    assert!(run.out.contains(&doomed.tenant), "{}", run.out);
    assert!(find_in_dir(&dr_data, &needles).is_empty());
    let restored = Server::start_in(dr, &[], &[]);
    try_login(&restored, &doomed.boss.username, PASSWORD)
        .await
        .err(401, "invalid_credentials");
    let admin3 = restored.admin().await;
    let auditor = staff_session(&restored, &admin3, "auditor").await;
    let removals = entries_with_action(&auditor, "tenant.restore_removed").await;
    assert_eq!(removals.len(), 1, "{removals:?}");
    assert_eq!(removals[0]["tenant_id"], doomed.tenant.as_str());
    assert_eq!(
        removals[0]["reason"], "no_live_key",
        "a key backup names no deletion"
    );
    let boss = open_session(&restored, &kept.boss.username, PASSWORD, "tenant_admin").await;
    assert_eq!(
        boss.get(&contact_path(&kept.tenant, &kept.contact))
            .await
            .ok(200),
        answer
    );
    assert!(restored.stop().await.success());
}

/// The PostgreSQL counterpart of the test above: a data backup is refused with a pointer to
/// PostgreSQL's own tools, and a key backup reads the tenant keys from the database (encrypted:
/// no wrapped key in clear in the file).
#[tokio::test]
async fn on_postgres_data_backups_are_refused_and_key_backups_work() {
    if !on_postgres() {
        eprintln!("PostgreSQL only: on SQLite the test above covers backups");
        return;
    }
    let server = Server::start();
    let admin = server.admin().await;
    let t = populate(&server, &admin).await;
    let needles = key_needles(&wrapped_keys(&server, &t.tenant).await);
    let files = tempfile::tempdir().unwrap();
    let out = files.path().join("data.bak");
    let args = [
        OsStr::new("backup"),
        OsStr::new("create"),
        OsStr::new("--data-dir"),
        server.data_dir.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ];
    let run = cli_with(&args, &server.store_env());
    assert!(
        !run.ok,
        "a data backup of a PostgreSQL deployment: {}",
        run.out
    );
    assert!(run.out.contains("PostgreSQL"), "{}", run.out);
    assert!(!out.exists(), "refused, yet {} exists", out.display());

    let keys = files.path().join("tenant.keys");
    let args = [
        OsStr::new("backup"),
        OsStr::new("keys"),
        OsStr::new("--data-dir"),
        server.data_dir.as_os_str(),
        OsStr::new("--out"),
        keys.as_os_str(),
    ];
    let run = cli_with(&args, &server.store_env());
    assert!(run.ok, "backup keys on PostgreSQL failed: {}", run.out);
    assert!(
        std::fs::metadata(&keys).unwrap().len() > 0,
        "empty key backup"
    );
    assert!(
        find_in_dir(files.path(), &needles).is_empty(),
        "a wrapped key in clear in the key backup"
    );

    // Its data dir is no key source for a restore: the database there is not the live one.
    let target = files.path().join("restored");
    let args = [
        OsStr::new("backup"),
        OsStr::new("restore"),
        out.as_os_str(),
        OsStr::new("--data-dir"),
        target.as_os_str(),
        OsStr::new("--keys-from"),
        server.data_dir.as_os_str(),
    ];
    let run = cli_with(&args, &server.store_env());
    assert!(
        !run.ok,
        "restored with a PostgreSQL data dir's keys: {}",
        run.out
    );
    assert!(run.out.contains("key backup file"), "{}", run.out);
}

/// A backup taken before a key rotation holds ciphertext under the old version; once re-encryption
/// has retired it, the live deployment cannot open those records. A restore says so and refuses
/// (leaving the new data dir empty); a key backup from before the retirement restores it whole;
/// `--accept-unreadable` restores anyway and the restored log says which version went missing.
#[tokio::test]
async fn a_restore_refuses_records_sealed_under_a_version_retired_since_the_backup() {
    if skip_on_postgres("`strongroom backup` copies the SQLite file of a data dir") {
        return;
    }
    let server = Server::start_with(
        &[
            ("STRONGROOM_KEY_JOB_INTERVAL_SECS", "1"),
            ("STRONGROOM_KEY_RETIRE_GRACE_SECS", "1"),
        ],
        &[],
    );
    let admin = server.admin().await;
    let t = populate(&server, &admin).await;
    let files = tempfile::tempdir().unwrap();
    let backup = files.path().join("before-rotation.bak");
    let made = create(&server.data_dir, &backup);
    assert!(made.ok, "backup create failed: {}", made.out);
    let old_keys = files.path().join("before-rotation.keys");
    let run = key_backup(&server.data_dir, &old_keys);
    assert!(run.ok, "backup keys failed: {}", run.out);

    let keys = format!("/v1/tenants/{}/keys", t.tenant);
    admin
        .post(&format!("{keys}/rotate"), json!({}))
        .await
        .ok(201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = admin.get(&keys).await.ok(200);
        let retired = status["versions"].as_array().is_some_and(|v| {
            v.iter()
                .any(|v| v["version"] == 1 && v["state"] == "retired")
        });
        if retired {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "version 1 never retired: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let restore_with = |into: &Path, extra: &[&OsStr]| {
        let mut args = vec![
            OsStr::new("backup"),
            OsStr::new("restore"),
            backup.as_os_str(),
            OsStr::new("--data-dir"),
            into.as_os_str(),
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let live = [OsStr::new("--keys-from"), server.data_dir.as_os_str()];
    let drill = new_root();
    let into = drill.path().join("data");
    let refused = restore_with(&into, &live);
    assert!(
        !refused.ok,
        "restore accepted unreadable records: {}",
        refused.out
    );
    assert!(
        refused
            .out
            .contains(&format!("tenant {}: key version 1 (", t.tenant))
            && refused.out.contains("retired since the backup")
            && refused.out.contains("--accept-unreadable"),
        "{}",
        refused.out
    );
    assert_eq!(
        std::fs::read_dir(&into).map_or(0, Iterator::count),
        0,
        "a refused restore leaves nothing behind"
    );

    // The remedy it names: keys from before the retirement.
    let whole = new_root();
    let root_key = server.data_dir.join("keys/root.key");
    let run = restore_with(
        &whole.path().join("data"),
        &[
            OsStr::new("--keys-from"),
            old_keys.as_os_str(),
            OsStr::new("--root-key-file"),
            root_key.as_os_str(),
        ],
    );
    assert!(run.ok, "restore with the older keys failed: {}", run.out);
    assert!(!run.out.contains("unreadable"), "{}", run.out);

    let mut accept = live.to_vec();
    accept.push(OsStr::new("--accept-unreadable"));
    let accepted = restore_with(&into, &accept);
    assert!(accepted.ok, "restore failed: {}", accepted.out);
    assert!(
        accepted.out.contains(&format!(
            "unreadable (no key for it in the key source): tenant {}: key version 1",
            t.tenant
        )),
        "{}",
        accepted.out
    );
    let restored = Server::start_in(drill, &[], &[]);
    let admin = restored.admin().await;
    let auditor = staff_session(&restored, &admin, "auditor").await;
    let recorded = entries_with_action(&auditor, "tenant.restore_unreadable").await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["tenant_id"], t.tenant.as_str());
    assert_eq!(recorded[0]["resource"]["id"], "1");
    assert_eq!(recorded[0]["reason"], "key_version_missing");
    the_unreadable_records_are_shown_for_what_they_are(&restored, &t).await;
    assert!(restored.stop().await.success());
}

/// After a restore that accepted unreadable records: every list still answers, each record sealed
/// under the lost version shows its sealed fields as null and names them in `_access.unreadable`,
/// a file's bytes are `410 content_unreadable`, the tenant's archive still builds, and what is
/// written after the restore reads as usual.
async fn the_unreadable_records_are_shown_for_what_they_are(restored: &Server, t: &Populated) {
    let boss = open_session(restored, &t.boss.username, PASSWORD, "tenant_admin").await;
    let unreadable = |record: &Value| strings(&record["_access"]["unreadable"]);
    let contact = boss.get(&contact_path(&t.tenant, &t.contact)).await.ok(200);
    assert_eq!(
        unreadable(&contact),
        ["name", "email", "notes"],
        "{contact}"
    );
    assert!(contact["name"].is_null() && contact["notes"].is_null());
    assert_eq!(list_items(&boss, &contacts_path(&t.tenant)).await.len(), 2);
    let cases = list_items(&boss, &cases_path(&t.tenant)).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(unreadable(&cases[0]), ["title"], "{}", cases[0]);
    let case = id_of(&cases[0]);
    let comments = list_items(&boss, &comments_path(&t.tenant, &case)).await;
    assert_eq!(unreadable(&comments[0]), ["body"]);
    let files = list_items(&boss, &attachments_path(&t.tenant, &case)).await;
    assert_eq!(unreadable(&files[0]), ["name"]);
    let file = format!(
        "{}/{}",
        attachments_path(&t.tenant, &case),
        id_of(&files[0])
    );
    boss.get(&format!("{file}/content"))
        .await
        .err(410, "content_unreadable");
    let admin = restored.admin().await;
    let auditor = staff_session(restored, &admin, "auditor").await;
    let refused = entries_with_action(&auditor, "attachment.download_refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["reason"], "content_unreadable");

    let fresh = create_contact(&boss, &t.tenant, json!({"name": "After the restore"})).await;
    let fresh = boss
        .get(&contact_path(&t.tenant, &id_of(&fresh)))
        .await
        .ok(200);
    assert_eq!(fresh["name"], "After the restore");
    assert!(fresh["_access"].get("unreadable").is_none(), "{fresh}");

    let (identity, recipient) = key_pair();
    let archive = boss
        .post(
            &exports_path(&t.tenant),
            json!({"scope": {"kind": "tenant_archive"}, "recipient": recipient}),
        )
        .await
        .ok(201);
    assert_eq!(
        strings(&archive["manifest"]["fields_unreadable"]),
        ["body", "content", "email", "name", "notes", "title"]
    );
    let id = archive["id"].as_str().unwrap();
    let (status, _, bytes) = boss
        .get_bytes(&export_path(&t.tenant, id, "/download"))
        .await;
    assert_eq!(status, 200);
    let opened = open_export(&identity, &bytes);
    let files = opened.of_kind("attachment");
    assert_eq!(files.len(), 1);
    assert_eq!(unreadable(&files[0]["record"]), ["name", "content"]);
    assert!(files[0]["record"].get("content_sha256").is_none());
    assert_eq!(opened.of_kind("contact").len(), 3);
}

/// The scratch copy a backup starts from holds the wrapped tenant keys: interrupted at any point,
/// the backup must leave no copy in the data dir and no partial file, and exit promptly.
#[tokio::test]
async fn an_interrupted_backup_leaves_no_copy_behind() {
    if skip_on_postgres("`strongroom backup create` is for the SQLite data dir") {
        return;
    }
    let server = Server::start();
    server.stop().await;
    // Large enough that the copy is still being made when the signal lands.
    let mut db = Db::sqlite(&server.data_dir).await;
    db.execute("CREATE TABLE ballast (b BLOB)", &[]).await;
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) \
         INSERT INTO ballast SELECT zeroblob(1048576) FROM n",
        &[],
    )
    .await;
    db.close().await;

    let files = tempfile::tempdir().unwrap();
    let out = files.path().join("data.bak");
    let child = Command::new(binary())
        .args([
            OsStr::new("backup"),
            OsStr::new("create"),
            OsStr::new("--data-dir"),
        ])
        .arg(&server.data_dir)
        .arg("--out")
        .arg(&out)
        .env_remove("STRONGROOM_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run_dir = server.data_dir.join("run");
    let copies = || -> Vec<String> {
        std::fs::read_dir(&run_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.starts_with("backup"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while copies().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no copy was started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let interrupted_at = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        interrupted_at.elapsed() < std::time::Duration::from_secs(10),
        "the backup went on after the signal"
    );
    assert_eq!(copies(), Vec::<String>::new(), "a copy was left behind");
    assert!(!out.exists());
    assert!(!out.with_extension("partial").exists());
}
