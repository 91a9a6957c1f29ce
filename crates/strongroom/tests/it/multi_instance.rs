//! Several servers on one PostgreSQL schema (PostgreSQL only; returns early on SQLite): writers
//! on both at once leave one audit log that verifies and covers every write, both servers serve
//! the same signed checkpoint, exactly one of them signs, and when the signer dies the survivor
//! takes over signing within seconds.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strongroom_ledger::{Checkpoint, NoteVerifier};

use crate::audit_log::verify_store;
use crate::kit::*;

/// Concurrent writer tasks per server.
const WRITERS: usize = 8;
/// How long the writers keep writing.
const WRITE_FOR: Duration = Duration::from_secs(4);
/// How long the survivor may take to sign after the signer died.
const TAKEOVER: Duration = Duration::from_secs(10);
const SIGNER_METRIC: &str = "strongroom_audit_signer";

/// True (and says so) on SQLite, where several servers never share one store.
fn skipped_on_sqlite() -> bool {
    let skip = !on_postgres();
    if skip {
        eprintln!("skipped on SQLite: several servers share one store only on PostgreSQL");
    }
    skip
}

/// Two instances over one schema, a tenant, and the tenant's admin signed in on each.
struct Peers {
    first: Server,
    second: Server,
    /// The platform admin, on the first.
    admin: Session,
    tenant: String,
    on_first: Session,
    on_second: Session,
}

impl Peers {
    /// The first instance runs with `env` added; the second shares its configuration.
    async fn start(env: &[(&str, &str)]) -> Self {
        let first = Server::start_with(env, &[]);
        let second = Server::start_peer(&first);
        let admin = first.admin().await;
        let tenant = create_tenant(&admin, None).await;
        let user = create_user(&admin, "tenant_admin", Some(&tenant)).await;
        let on_first = open_session(&first, &user.username, PASSWORD, "tenant_admin").await;
        let on_second = open_session(&second, &user.username, PASSWORD, "tenant_admin").await;
        Self {
            first,
            second,
            admin,
            tenant,
            on_first,
            on_second,
        }
    }
}

/// The checkpoint `server` serves now, checked against `verifier`; None if it has none yet.
async fn checkpoint(server: &Server, verifier: &NoteVerifier) -> Option<(String, Checkpoint)> {
    let r = server.anon().get("/v1/audit/checkpoint").await;
    if r.status.as_u16() != 200 {
        return None;
    }
    let cp = verifier.verify_checkpoint(&r.text).unwrap_or_else(|e| {
        panic!(
            "{}: checkpoint does not verify: {e}\n{}",
            server.api, r.text
        )
    });
    Some((r.text, cp))
}

/// Writes contacts and cases from `WRITERS` tasks until `WRITE_FOR` has passed; returns how
/// many were created.
async fn write_concurrently(label: &'static str, session: &Session, tenant: &str) -> usize {
    let deadline = Instant::now() + WRITE_FOR;
    let mut tasks = Vec::new();
    for task in 0..WRITERS {
        let api = session.api.clone();
        let tenant = tenant.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while Instant::now() < deadline {
                let (path, body) = if done % 2 == 0 {
                    (
                        contacts_path(&tenant),
                        json!({"name": format!("Writer {label}-{task}-{done}")}),
                    )
                } else {
                    (
                        cases_path(&tenant),
                        json!({"title": format!("Case {label}-{task}-{done}")}),
                    )
                };
                let r = api.post(&path, body).await;
                assert_eq!(
                    r.status.as_u16(),
                    201,
                    "server {label}, writer {task}: {} {}",
                    r.status,
                    r.text
                );
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer task");
    }
    total
}

async fn audit_entry_count(server: &Server) -> i64 {
    let mut db = server.db().await;
    let n = db
        .int("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries", &[])
        .await;
    db.close().await;
    n
}

/// Polls both metrics until exactly one server reports itself the signer; returns its index.
async fn the_signer(servers: &[&Server], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let values: Vec<Option<f64>> = servers.iter().map(|s| s.metric(SIGNER_METRIC)).collect();
        let signing: Vec<usize> = (0..servers.len())
            .filter(|&i| values[i] == Some(1.0))
            .collect();
        if signing.len() == 1 && values.iter().all(Option::is_some) {
            return signing[0];
        }
        assert!(
            Instant::now() < deadline,
            "not exactly one signer after {within:?}: {SIGNER_METRIC} = {values:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_log_and_hand_over_signing() {
    if skipped_on_sqlite() {
        return;
    }
    let Peers {
        first,
        second,
        tenant,
        on_first,
        on_second,
        ..
    } = Peers::start(&[]).await;
    assert_ne!(first.data_dir, second.data_dir);
    assert_eq!(first.schema(), second.schema());

    // Each sees what the other wrote.
    let c = create_contact(&on_first, &tenant, json!({"name": "Shared Person"})).await;
    let read = on_second
        .get(&contact_path(&tenant, &id_of(&c)))
        .await
        .ok(200);
    assert_eq!(read["name"], "Shared Person");

    let vkey = first.anon().get("/v1/audit/verifier-key").await.text;
    let vkey_second = second.anon().get("/v1/audit/verifier-key").await.text;
    assert_eq!(vkey.trim(), vkey_second.trim(), "the peers' verifier keys");
    let verifier = NoteVerifier::parse(vkey.trim()).expect("verifier key");

    // Concurrent writers on both servers.
    let before = audit_entry_count(&first).await;
    let (a, b) = tokio::join!(
        write_concurrently("A", &on_first, &tenant),
        write_concurrently("B", &on_second, &tenant),
    );
    let writes = i64::try_from(a + b).unwrap();
    assert!(
        a > 0 && b > 0,
        "writes: {a} on the first, {b} on the second"
    );
    let after = audit_entry_count(&first).await;
    assert!(
        after >= before + writes,
        "{writes} writes, but the log grew from {before} to {after}"
    );
    let listed = list_items(&on_second, &format!("{}?limit=500", contacts_path(&tenant))).await;
    assert!(!listed.is_empty());

    // One log that verifies and covers every write.
    let verified = verify_store(&first).entries_verified();
    eprintln!(
        "{a} writes on the first server, {b} on the second; log {before} -> {after}; \
         audit verify: {verified}"
    );
    assert!(
        i64::try_from(verified).unwrap() >= after,
        "audit verify checked {verified} entries, the log had {after} after the writes"
    );

    // Both serve the same signed checkpoint, eventually, covering the writes.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (x, y) = (
            checkpoint(&first, &verifier).await,
            checkpoint(&second, &verifier).await,
        );
        if let (Some((nx, cx)), Some((ny, cy))) = (&x, &y)
            && nx == ny
            && i64::try_from(cx.size).unwrap() >= after
        {
            assert_eq!(cx.root, cy.root);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no common checkpoint covering {after} entries within 15 s:\nfirst: {:?}\nsecond: {:?}",
            x.map(|(_, c)| c.size),
            y.map(|(_, c)| c.size)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Exactly one signs; kill it; the survivor takes over.
    let servers = [&first, &second];
    let signer = the_signer(&servers, Duration::from_secs(10)).await;
    let survivor = servers[1 - signer];
    let session = if signer == 0 { &on_second } else { &on_first };
    servers[signer].kill();
    let killed_at = Instant::now();
    let mut written = 0;
    for n in 0..5 {
        create_contact(
            session,
            &tenant,
            json!({"name": format!("After the kill {n}")}),
        )
        .await;
        written += 1;
    }
    let target = audit_entry_count(survivor).await;
    loop {
        let signs = survivor.metric(SIGNER_METRIC) == Some(1.0);
        let cp = checkpoint(survivor, &verifier).await;
        if signs
            && cp
                .as_ref()
                .is_some_and(|(_, c)| i64::try_from(c.size).unwrap() >= target)
        {
            eprintln!(
                "server {} signed and was killed; the survivor signed a checkpoint covering \
                 {target} entries {:?} later",
                signer + 1,
                killed_at.elapsed()
            );
            break;
        }
        assert!(
            killed_at.elapsed() < TAKEOVER,
            "{TAKEOVER:?} after the signer was killed: survivor {SIGNER_METRIC} = {:?}, \
             checkpoint size {:?}, log has {target} entries ({written} written after the kill)\n{}",
            survivor.metric(SIGNER_METRIC),
            cp.map(|(_, c)| c.size),
            survivor.stderr_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let verified = verify_store(survivor).entries_verified();
    assert!(
        i64::try_from(verified).unwrap() >= target,
        "audit verify checked {verified} entries after the takeover, the log had {target}"
    );
}

/// Periodic jobs run once per period across the instances, not once per instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_job_runs_once_per_period_across_instances() {
    if skipped_on_sqlite() {
        return;
    }
    const PERIOD_SECS: u64 = 1;
    const WINDOW: Duration = Duration::from_secs(6);
    let first = Server::start_with(&[("STRONGROOM_INACTIVITY_SWEEP_INTERVAL_SECS", "1")], &[]);
    let second = Server::start_peer(&first);
    let sweeps = "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries \
                  WHERE position(convert_to('user.inactivity_sweep', 'UTF8') in entry) > 0";
    let mut db = first.db().await;
    let before = db.int(sweeps, &[]).await;
    tokio::time::sleep(WINDOW).await;
    let ran = db.int(sweeps, &[]).await - before;
    db.close().await;
    drop(second);
    // Each instance ticks every period; without the job lease the window would hold about
    // twice as many runs. With it: at most one per 0.9 period, and at least a few.
    let per_instance = i64::try_from(WINDOW.as_secs() / PERIOD_SECS).unwrap();
    eprintln!(
        "{ran} inactivity sweeps in {WINDOW:?} with two instances ticking every {PERIOD_SECS} s"
    );
    assert!(ran >= 3, "the job did not run: {ran} sweeps in {WINDOW:?}");
    assert!(
        ran <= per_instance + 2,
        "{ran} sweeps in {WINDOW:?}: the instances both ran the job"
    );
}

/// Rotates the tenant's keys through `admin` (on one instance); returns the new version.
async fn rotate(admin: &Api, tenant: &str) -> u64 {
    let rotated = admin
        .post(&format!("{}/rotate", keys_path(tenant)), json!({}))
        .await
        .ok(201);
    rotated["current_version"]
        .as_u64()
        .expect("current_version")
}

/// An instance whose cached keyring predates another instance's rotation reads the keys again
/// when it meets a record sealed under the new version, instead of failing until its cache
/// expires. The caches here outlive the test and the first instance rotates before each check,
/// so that each finds the second's keyring behind: only reading the keys again explains a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_opens_records_sealed_after_another_instance_rotated() {
    if skipped_on_sqlite() {
        return;
    }
    // The servers are bound so that they live to the end of the test.
    let Peers {
        first: _first,
        second: _second,
        admin,
        tenant,
        on_first,
        on_second,
    } = Peers::start(&[("STRONGROOM_SHARED_CACHE_MAX_AGE_MS", "600000")]).await;
    let old = create_contact(&on_first, &tenant, json!({"name": "Sealed Before"})).await;
    // The second server now holds the tenant's keyring at version 1.
    let read = on_second
        .get(&contact_path(&tenant, &id_of(&old)))
        .await
        .ok(200);
    assert_eq!(read["name"], "Sealed Before");

    // One record.
    assert_eq!(rotate(&admin, &tenant).await, 2);
    let contact = create_contact(&on_first, &tenant, json!({"name": "Sealed After"})).await;
    let read = on_second
        .get(&contact_path(&tenant, &id_of(&contact)))
        .await
        .ok(200);
    assert_eq!(read["name"], "Sealed After");

    // A list.
    assert_eq!(rotate(&admin, &tenant).await, 3);
    create_contact(&on_first, &tenant, json!({"name": "Listed After"})).await;
    let names: Vec<Value> = list_items(&on_second, &contacts_path(&tenant))
        .await
        .into_iter()
        .map(|c| c["name"].clone())
        .collect();
    for name in ["Sealed Before", "Sealed After", "Listed After"] {
        assert!(names.contains(&json!(name)), "{name} not in {names:?}");
    }

    // An update, whose answer opens the fields it did not write; the first opens what it wrote.
    assert_eq!(rotate(&admin, &tenant).await, 4);
    let contact = create_contact(&on_first, &tenant, json!({"name": "Updated After"})).await;
    let path = contact_path(&tenant, &id_of(&contact));
    let updated = on_second
        .patch(&path, json!({"notes": "written by the second"}))
        .await
        .ok(200);
    assert_eq!(updated["name"], "Updated After");
    let read = on_first.get(&path).await.ok(200);
    assert_eq!(read["notes"], "written by the second");

    // A case, then its comments.
    assert_eq!(rotate(&admin, &tenant).await, 5);
    let case = create_case(&on_first, &tenant, json!({"title": "Case After"})).await;
    let case_at = case_path(&tenant, &id_of(&case));
    let read = on_second.get(&case_at).await.ok(200);
    assert_eq!(read["title"], "Case After");
    assert_eq!(rotate(&admin, &tenant).await, 6);
    on_first
        .post(
            &format!("{case_at}/comments"),
            json!({"body": "Comment After"}),
        )
        .await
        .ok(201);
    let comments = list_items(&on_second, &format!("{case_at}/comments")).await;
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["body"], "Comment After");

    // A file's content.
    assert_eq!(rotate(&admin, &tenant).await, 7);
    let files = attachments_path(&tenant, &id_of(&case));
    let content = b"sealed after the rotation".to_vec();
    let file = on_first
        .post(&files, crate::attachments::upload("after.txt", &content))
        .await
        .ok(201);
    let (status, _, body) = on_second
        .get_bytes(&format!("{files}/{}/content", id_of(&file)))
        .await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(body, content);

    // A search by e-mail, which no ciphertext can warn: the newest version stored is checked.
    assert_eq!(rotate(&admin, &tenant).await, 8);
    create_contact(
        &on_first,
        &tenant,
        json!({"name": "Searched After", "email": "after@example.test"}),
    )
    .await;
    let found = list_items(
        &on_second,
        &format!(
            "{}?email={}",
            contacts_path(&tenant),
            urlencode("after@example.test")
        ),
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["name"], "Searched After");
}

/// After one instance rotated the root key, a peer still running on the old one seals nothing
/// under it (a new tenant's keys, a tenant key version, a second factor's seed): sealed under the
/// old key, they would never open again. It changes nothing; on the new key, sealing works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_left_on_a_rotated_root_key_seals_nothing() {
    if skipped_on_sqlite() {
        return;
    }
    let Peers {
        first,
        second,
        tenant,
        ..
    } = Peers::start(&[]).await;
    let admin_on_second = second.admin().await;
    let engineer = create_user(&admin_on_second, "support_engineer", None).await;
    let auditor = staff_session(&second, &admin_on_second, "auditor").await;
    assert!(first.stop().await.success());
    let out = std::process::Command::new(binary())
        .args(["keys", "rotate-root", "--data-dir"])
        .arg(&first.data_dir)
        .envs(first.store_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys rotate-root: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut db = second.db().await;
    let count = "SELECT COUNT(*) FROM tenants";
    let tenants = db.int(count, &[]).await;
    admin_on_second
        .post("/v1/tenants", json!({"name": unique("tenant")}))
        .await
        .err(500, "internal");
    assert_eq!(db.int(count, &[]).await, tenants);
    let keys = keys_path(&tenant);
    admin_on_second
        .post(&format!("{keys}/rotate"), json!({}))
        .await
        .err(500, "internal");
    let status = admin_on_second.get(&keys).await.ok(200);
    assert_eq!(status["current_version"], 1, "{status}");
    let (enrolling, _) = login(&second, &engineer.username, PASSWORD).await;
    enrolling
        .post("/v1/me/mfa/totp", json!({}))
        .await
        .err(500, "internal");
    // Each refusal is in the log as not applied, saying why.
    for action in [
        "tenant.create_not_applied",
        "tenant.keys.rotate_not_applied",
        "auth.mfa.totp_start_not_applied",
    ] {
        let entries = entries_with_action(&auditor, action).await;
        assert!(
            entries.iter().any(|e| e["reason"] == "root_key_rotated"),
            "{action}: {entries:?}"
        );
    }
    let seeds = "SELECT COUNT(*) FROM user_totp";
    assert_eq!(db.int(seeds, &[]).await, 0);
    db.close().await;

    let first = first.restart().await;
    let admin = first.admin().await;
    let sealed_after = create_tenant(&admin, None).await;
    assert_eq!(rotate(&admin, &sealed_after).await, 2);
    assert_eq!(rotate(&admin, &tenant).await, 2);
    let (enrolling, _) = login(&first, &engineer.username, PASSWORD).await;
    crate::mfa::enrol(&enrolling, &engineer.username).await;
    assert!(second.stop().await.success());
    let refused = second.refused_restart();
    assert!(refused.contains("does not open the keys"), "{refused}");
}
