//! The breach watch: patterns in the audit log become incidents that security officers see and
//! close, and that the tenant concerned sees and is notified of (DESIGN.md "breach handling").

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kit::*;
use crate::lockbox::world;

/// A quick watch with low thresholds; the rules not under test stay out of reach.
fn watch_env<'a>(rule: &'a str, threshold: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("STRONGROOM_WATCH_INTERVAL_MS", "200"),
        ("STRONGROOM_WATCH_MASS_READ_RECORDS", "100000"),
        ("STRONGROOM_WATCH_DENIALS_OUTSIDE_GRANT", "100000"),
        ("STRONGROOM_WATCH_LOGIN_FAILURES_PER_ACCOUNT", "100000"),
        ("STRONGROOM_WATCH_LOGIN_FAILURES_PLATFORM", "100000"),
    ];
    env.retain(|(k, _)| *k != rule);
    env.push((rule, threshold));
    env
}

/// Waits (up to 15 s) for an incident at `path` that `matches`.
async fn incident_where(api: &Api, path: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let items = list_items(api, path).await;
        if let Some(found) = items.iter().find(|i| matches(i)) {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no such incident at {path}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The entry at `index`, as an auditor reads it.
async fn entry_at(auditor: &Api, index: &Value) -> Value {
    let index = index.as_i64().expect("an index");
    let page = auditor
        .get(&format!("/v1/audit/entries?start={index}&limit=1"))
        .await
        .ok(200);
    page["items"][0]["entry"].clone()
}

#[tokio::test]
async fn staff_reaching_outside_their_grants_raise_one_incident_the_tenant_is_told_of() {
    let server = Server::start_with(
        &watch_env("STRONGROOM_WATCH_DENIALS_OUTSIDE_GRANT", "3"),
        &[],
    );
    let w = world(&server, json!({})).await;
    let t = w.tenant.clone();
    let platform = server.admin().await;
    let officer = staff_session(&server, &platform, "security_officer").await;
    let auditor = staff_session(&server, &platform, "auditor").await;
    let other = world(&server, json!({})).await;

    // Assigned, but the tenant requires approval: the comments are refused, three times.
    let comments = comments_path(&t, &w.case_a);
    for _ in 0..3 {
        w.engineer
            .get(&comments)
            .await
            .err(403, "access_grant_required");
    }
    let ours = |i: &Value| {
        i["kind"] == "access_outside_grant"
            && i["subject_id"] == w.engineer.id.as_str()
            && i["tenant_id"] == t.as_str()
    };
    let incident = incident_where(&officer, "/v1/incidents?state=open", ours).await;
    let id = id_of(&incident);
    assert_eq!(incident["state"], "open", "{incident}");
    assert_eq!(incident["events"], 3, "{incident}");
    // The evidence is in the log: the last entry is one of the refusals.
    let last = entry_at(&auditor, &incident["last_index"]).await;
    assert_eq!(last["reason"], "access_grant_required", "{last}");
    assert_eq!(last["actor"]["user_id"], w.engineer.id.as_str(), "{last}");
    assert!(incident["first_index"].as_i64() <= incident["last_index"].as_i64());

    // The tenant sees it and was notified; nobody else's admin does.
    let theirs = list_items(&w.admin, &format!("/v1/tenants/{t}/incidents")).await;
    assert!(theirs.iter().any(|i| i["id"] == id.as_str()), "{theirs:?}");
    let notices = list_items(&w.admin, &format!("/v1/tenants/{t}/notifications")).await;
    assert!(
        notices.iter().any(|n| n["type"] == "incident.opened"
            && n["payload"]["data"]["incident_id"] == id.as_str()),
        "{notices:?}"
    );
    other
        .admin
        .get(&format!("/v1/tenants/{t}/incidents"))
        .await
        .err(404, "not_found");
    let own = list_items(
        &other.admin,
        &format!("/v1/tenants/{}/incidents", other.tenant),
    )
    .await;
    assert!(own.is_empty(), "{own:?}");
    // Staff other than security officers and auditors see none; customers see only theirs.
    w.engineer.get("/v1/incidents").await.err(403, "forbidden");
    auditor.get("/v1/incidents").await.ok(200);
    w.admin.get("/v1/incidents").await.err(404, "not_found");

    // More of the same adds to the open incident rather than opening another.
    for _ in 0..3 {
        w.engineer
            .get(&comments)
            .await
            .err(403, "access_grant_required");
    }
    let grown = incident_where(&officer, "/v1/incidents?state=open", |i| {
        i["id"] == id.as_str() && i["events"].as_i64() >= Some(6)
    })
    .await;
    assert_eq!(grown["first_index"], incident["first_index"]);
    let open = list_items(&officer, "/v1/incidents?state=open").await;
    assert_eq!(open.iter().filter(|i| ours(i)).count(), 1, "{open:?}");

    // Closing: security officers only, with a known resolution, once.
    let close = format!("/v1/incidents/{id}/close");
    auditor
        .post(&close, json!({"resolution": "contained"}))
        .await
        .err(403, "forbidden");
    w.admin
        .post(&close, json!({"resolution": "false_positive"}))
        .await
        .err(403, "forbidden");
    let bad = officer
        .post(&close, json!({"resolution": "whatever"}))
        .await;
    bad.err(422, "validation_failed");
    assert_eq!(bad.fields(), vec!["resolution".to_owned()]);
    officer
        .get("/v1/incidents?state=sideways")
        .await
        .err(400, "invalid_request");
    let closed = officer
        .post(&close, json!({"resolution": "contained"}))
        .await
        .ok(200);
    assert_eq!(closed["state"], "closed", "{closed}");
    assert_eq!(closed["resolution"], "contained");
    assert_eq!(closed["closed_by"], officer.id.as_str());
    officer
        .post(&close, json!({"resolution": "contained"}))
        .await
        .err(409, "conflict");
    officer
        .post(
            "/v1/incidents/00000000000000000000000000000000/close",
            json!({"resolution": "contained"}),
        )
        .await
        .err(404, "not_found");
    let seen = list_items(&w.admin, &format!("/v1/tenants/{t}/incidents?state=closed")).await;
    assert!(
        seen.iter()
            .any(|i| i["id"] == id.as_str() && i["resolution"] == "contained"),
        "{seen:?}"
    );
    let notices = list_items(&w.admin, &format!("/v1/tenants/{t}/notifications")).await;
    assert!(
        notices
            .iter()
            .any(|n| n["type"] == "incident.closed"
                && n["payload"]["data"]["resolution"] == "contained"),
        "{notices:?}"
    );

    // Both ends are in the log, by id and code.
    let opened = entries_with_action(&auditor, "incident.open").await;
    assert!(
        opened.iter().any(|e| e["resource"]["id"] == id.as_str()
            && e["reason"] == "access_outside_grant"
            && e["tenant_id"] == t.as_str()),
        "{opened:?}"
    );
    let closings = entries_with_action(&auditor, "incident.close").await;
    assert!(
        closings
            .iter()
            .any(|e| e["resource"]["id"] == id.as_str() && e["decision"] == "allow"),
        "{closings:?}"
    );
}

#[tokio::test]
async fn failed_logins_to_a_customer_account_are_an_incident_of_its_tenant() {
    let server = Server::start_with(
        &watch_env("STRONGROOM_WATCH_LOGIN_FAILURES_PER_ACCOUNT", "3"),
        &[],
    );
    let platform = server.admin().await;
    let tenant = create_tenant(&platform, None).await;
    let admin = tenant_session(&server, &platform, "tenant_admin", &tenant).await;
    let user = create_user(&admin, "tenant_user", Some(&tenant)).await;
    for _ in 0..3 {
        try_login(&server, &user.username, "not the password at all")
            .await
            .err(401, "invalid_credentials");
    }
    let officer = staff_session(&server, &platform, "security_officer").await;
    let incident = incident_where(&officer, "/v1/incidents", |i| {
        i["kind"] == "login_failures" && i["subject_id"] == user.id.as_str()
    })
    .await;
    assert_eq!(incident["tenant_id"], tenant.as_str(), "{incident}");
    let theirs = list_items(&admin, &format!("/v1/tenants/{tenant}/incidents")).await;
    assert!(
        theirs.iter().any(|i| i["id"] == incident["id"]),
        "{theirs:?}"
    );
    // The platform-wide rule is far from its threshold.
    let all = list_items(&officer, "/v1/incidents").await;
    assert!(
        all.iter().all(|i| i["kind"] != "platform_login_failures"),
        "{all:?}"
    );
}

#[tokio::test]
async fn one_account_reading_many_records_is_a_mass_read() {
    let mut env = watch_env("STRONGROOM_WATCH_MASS_READ_RECORDS", "5");
    env.push(("STRONGROOM_WATCH_MASS_READ_CUSTOMER_FACTOR", "2"));
    let server = Server::start_with(&env, &[]);
    let w = world(&server, json!({})).await;
    let t = &w.tenant;
    let platform = server.admin().await;
    let officer = staff_session(&server, &platform, "security_officer").await;
    // The tenant's own admin paging through its cases is held to the customers' threshold.
    let customer_reads = 6;
    for _ in 0..customer_reads {
        w.admin.get(&case_path(t, &w.case_a)).await.ok(200);
    }
    for _ in 0..5 {
        w.engineer.get(&case_path(t, &w.case_a)).await.ok(200);
    }
    let incident = incident_where(&officer, "/v1/incidents", |i| {
        i["kind"] == "mass_read" && i["subject_id"] == w.engineer.id.as_str()
    })
    .await;
    assert_eq!(incident["tenant_id"], t.as_str(), "{incident}");
    assert_eq!(incident["events"], 5, "{incident}");
    // The customer's own setup (a contact, two cases, a comment) and the admin's reads above
    // (past staff's threshold, short of customers'), all judged before the engineer's: no
    // other mass read.
    let all = list_items(&officer, "/v1/incidents").await;
    assert!(
        all.iter()
            .all(|i| i["kind"] != "mass_read" || i["subject_id"] == w.engineer.id.as_str()),
        "{all:?}"
    );
    // Reaching customers' threshold opens one for the admin too.
    for _ in customer_reads..10 {
        w.admin.get(&case_path(t, &w.case_a)).await.ok(200);
    }
    let theirs = incident_where(&officer, "/v1/incidents", |i| {
        i["kind"] == "mass_read" && i["subject_id"] == w.admin.id.as_str()
    })
    .await;
    assert_eq!(theirs["events"], 10, "{theirs}");
}

/// The last indexes of the perfect subtrees a tree of `size` leaves is made of: the rows that
/// hold the nodes a server needs at start-up to check its last checkpoint.
fn frontier_rows(size: i64) -> Vec<i64> {
    let size = u64::try_from(size).expect("a size");
    strongroom_ledger::Frontier::node_ids_for_size(size)
        .into_iter()
        .map(|node| i64::try_from(((node.index + 1) << node.level) - 1).expect("an index"))
        .collect()
}

/// A server whose watch has started, then has been off while the engineer read the case
/// `engineer_reads` times and the customer three times, and is now stopped, its store open.
struct Unwatched {
    server: Server,
    world: crate::lockbox::World,
    officer: Option<String>,
    db: Db,
    /// Where the watch stopped, the tenant's entries since, the log's size and its last
    /// checkpoint's.
    watched_to: i64,
    reads: Vec<i64>,
    size: i64,
    signed: i64,
}

async fn unwatched(extra_env: &[(&str, &str)], engineer_reads: usize) -> Unwatched {
    let mut env = extra_env.to_vec();
    env.push(("STRONGROOM_WATCH_INTERVAL_MS", "200"));
    let server = Server::start_with(&env, &[]);
    let w = world(&server, json!({})).await;
    let platform = server.admin().await;
    let officer = staff_session(&server, &platform, "security_officer").await;
    let mut db = server.db().await;
    let progress = "SELECT CAST(COUNT(*) AS BIGINT) FROM watch_progress";
    let deadline = Instant::now() + Duration::from_secs(15);
    while db.int(progress, &[]).await == 0 {
        assert!(Instant::now() < deadline, "the watch never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(db);
    let server = server
        .restart_with_env(&[("STRONGROOM_WATCH_INTERVAL_MS", "0")])
        .await;
    let as_engineer = server
        .anon()
        .with_token(w.engineer.api.token())
        .with_purpose(Some(default_purpose("support_engineer")));
    let as_customer = server
        .anon()
        .with_token(w.admin.api.token())
        .with_purpose(Some("customer-self-service"));
    let case = case_path(&w.tenant, &w.case_a);
    for _ in 0..engineer_reads {
        as_engineer.get(&case).await.ok(200);
    }
    for _ in 0..3 {
        as_customer.get(&case).await.ok(200);
    }
    // A checkpoint covering them all (the signer's lease may first have to lapse).
    let mut db = server.db().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let size = db.int("SELECT MAX(idx) + 1 FROM audit_entries", &[]).await;
        let signed = db.int("SELECT MAX(size) FROM audit_checkpoints", &[]).await;
        if signed >= size {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint of {size} entries");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.close().await;
    assert!(server.stop().await.success());
    let mut db = server.db().await;
    let watched_to = db.int("SELECT next_index FROM watch_progress", &[]).await;
    let reads: Vec<i64> = db
        .column(
            "SELECT idx FROM audit_entries WHERE idx >= $1 AND tenant_id = $2 ORDER BY idx",
            &[Arg::Int(watched_to), Arg::from(&w.tenant)],
        )
        .await;
    assert!(reads.len() >= engineer_reads + 3, "{} reads", reads.len());
    let size = db.int("SELECT MAX(idx) + 1 FROM audit_entries", &[]).await;
    let signed = db.int("SELECT MAX(size) FROM audit_checkpoints", &[]).await;
    Unwatched {
        server,
        world: w,
        officer: officer.api.token().map(str::to_owned),
        db,
        watched_to,
        reads,
        size,
        signed,
    }
}

/// `entry` with one letter's case flipped.
fn altered(entry: &[u8]) -> Vec<u8> {
    let mut altered = entry.to_vec();
    let at = altered
        .iter()
        .position(|b| *b == b'"')
        .expect("a JSON entry");
    altered[at + 1] ^= 0x20;
    altered
}

#[tokio::test]
async fn entries_changed_or_removed_in_the_store_are_integrity_incidents_the_tenant_is_told_of() {
    const GAP: usize = 520;
    // One of the engineer's entries is changed, another loses its leaf hash, and 520 more are
    // deleted (more than the watch reads at once; none that start-up needs to check the last
    // checkpoint).
    let Unwatched {
        server,
        world: w,
        officer,
        mut db,
        reads,
        size,
        signed,
        ..
    } = unwatched(
        &[
            ("STRONGROOM_WATCH_MASS_READ_RECORDS", "3"),
            ("STRONGROOM_WATCH_MASS_READ_CUSTOMER_FACTOR", "1"),
        ],
        1100,
    )
    .await;
    let t = w.tenant.clone();
    let keep: Vec<i64> = [frontier_rows(size), frontier_rows(signed)].concat();
    let (changed, unhashed) = (reads[0], reads[1]);
    let gap_start = reads[5..]
        .windows(GAP)
        .find(|w| w[GAP - 1] - w[0] == GAP as i64 - 1 && w.iter().all(|r| !keep.contains(r)))
        .map(|w| w[0])
        .expect("consecutive reads no frontier needs");
    let entry: Vec<u8> = db
        .one(
            "SELECT entry FROM audit_entries WHERE idx = $1",
            &[Arg::Int(changed)],
        )
        .await;
    db.execute(
        "UPDATE audit_entries SET entry = $1 WHERE idx = $2",
        &[Arg::from(&altered(&entry)), Arg::Int(changed)],
    )
    .await;
    db.execute(
        "UPDATE audit_entries SET leaf_hash = NULL WHERE idx = $1",
        &[Arg::Int(unhashed)],
    )
    .await;
    let deleted = db
        .execute(
            "DELETE FROM audit_entries WHERE idx >= $1 AND idx < $2",
            &[Arg::Int(gap_start), Arg::Int(gap_start + GAP as i64)],
        )
        .await;
    assert_eq!(deleted, GAP as u64);
    db.close().await;

    let server = server
        .restart_with_env(&[("STRONGROOM_WATCH_INTERVAL_MS", "200")])
        .await;
    let officer = server.anon().with_token(officer.as_deref());
    let in_tenant = incident_where(&officer, "/v1/incidents", |i| {
        i["kind"] == "audit_log_integrity" && i["tenant_id"] == t.as_str()
    })
    .await;
    assert_eq!(in_tenant["first_index"], changed, "{in_tenant}");
    assert_eq!(in_tenant["last_index"], unhashed, "{in_tenant}");
    assert_eq!(in_tenant["events"], 2, "{in_tenant}");
    let missing = incident_where(&officer, "/v1/incidents", |i| {
        i["kind"] == "audit_log_integrity" && i["tenant_id"].is_null()
    })
    .await;
    assert_eq!(missing["first_index"], gap_start, "{missing}");
    assert_eq!(
        missing["last_index"],
        gap_start + GAP as i64 - 1,
        "{missing}"
    );
    assert_eq!(missing["events"], GAP, "{missing}");
    // The entries after the gap were judged too: the customer's three reads are a mass read.
    incident_where(&officer, "/v1/incidents", |i| {
        i["kind"] == "mass_read" && i["subject_id"] == w.admin.id.as_str()
    })
    .await;
    let as_customer = server
        .anon()
        .with_token(w.admin.api.token())
        .with_purpose(Some("customer-self-service"));
    let notices = list_items(&as_customer, &format!("/v1/tenants/{t}/notifications")).await;
    assert!(
        notices.iter().any(|n| n["type"] == "incident.opened"
            && n["payload"]["data"]["kind"] == "audit_log_integrity"),
        "{notices:?}"
    );
    assert!(
        server.stderr().contains("incident opened"),
        "{}",
        server.stderr_tail(20)
    );
}

#[tokio::test]
async fn an_entry_rewritten_with_its_leaf_hash_no_longer_makes_the_signed_tree() {
    // Bytes and leaf hash changed together: the row agrees with itself, the tree of the entries
    // as stored no longer has the root of the checkpoint signed over them.
    let Unwatched {
        server,
        officer,
        mut db,
        watched_to,
        reads,
        size,
        signed,
        ..
    } = unwatched(&[], 30).await;
    let keep: Vec<i64> = [frontier_rows(size), frontier_rows(signed)].concat();
    let rewritten = *reads[3..]
        .iter()
        .find(|r| !keep.contains(r))
        .expect("a read no frontier needs");
    let entry: Vec<u8> = db
        .one(
            "SELECT entry FROM audit_entries WHERE idx = $1",
            &[Arg::Int(rewritten)],
        )
        .await;
    let entry = altered(&entry);
    let leaf = strongroom_ledger::leaf_hash(&entry);
    db.execute(
        "UPDATE audit_entries SET entry = $1, leaf_hash = $2 WHERE idx = $3",
        &[Arg::from(&entry), Arg::from(&leaf[..]), Arg::Int(rewritten)],
    )
    .await;
    db.close().await;
    let server = server
        .restart_with_env(&[("STRONGROOM_WATCH_INTERVAL_MS", "200")])
        .await;
    let officer = server.anon().with_token(officer.as_deref());
    let incident = incident_where(&officer, "/v1/incidents", |i| {
        i["kind"] == "audit_log_integrity"
    })
    .await;
    // From where the watch's tree started to the checkpoint it failed to make.
    assert_eq!(incident["first_index"], watched_to, "{incident}");
    assert!(
        incident["last_index"].as_i64() >= Some(rewritten),
        "{incident} {rewritten}"
    );
    assert!(incident["tenant_id"].is_null(), "{incident}");
    // Named once: later passes, with new entries and checkpoints, start again from the stored
    // nodes (which the signer signed) and find nothing more.
    for _ in 0..20 {
        officer.get("/v1/incidents").await.ok(200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let later: Vec<Value> = list_items(&officer, "/v1/incidents")
        .await
        .into_iter()
        .filter(|i| i["kind"] == "audit_log_integrity")
        .collect();
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(later[0]["events"], incident["events"], "{later:?}");
    assert!(
        server.stderr().contains("fault=\"checkpoint\"")
            || server.stderr().contains("\"fault\":\"checkpoint\""),
        "{}",
        server.stderr_tail(20)
    );
}

/// Two instances on one PostgreSQL store: one watch judges each entry once, so refusals made
/// through either server add up in one incident and none is counted twice.
#[tokio::test]
async fn two_instances_judge_each_entry_once() {
    if !on_postgres() {
        tell(
            "skipped on SQLite: incidents::two_instances_judge_each_entry_once: several servers share one store only on PostgreSQL",
        );
        return;
    }
    let first = Server::start_with(
        &watch_env("STRONGROOM_WATCH_DENIALS_OUTSIDE_GRANT", "4"),
        &[],
    );
    let second = Server::start_peer(&first);
    let w = world(&first, json!({})).await;
    let t = &w.tenant;
    let platform = first.admin().await;
    let officer = staff_session(&first, &platform, "security_officer").await;
    let via_second = second
        .anon()
        .with_token(w.engineer.api.token())
        .with_purpose(Some(default_purpose("support_engineer")));
    let comments = comments_path(t, &w.case_a);
    let refuse_four = || async {
        for api in [&w.engineer.api, &via_second, &w.engineer.api, &via_second] {
            api.get(&comments).await.err(403, "access_grant_required");
        }
    };
    refuse_four().await;
    let ours = |i: &Value| i["kind"] == "access_outside_grant" && i["tenant_id"] == t.as_str();
    let incident = incident_where(&officer, "/v1/incidents", ours).await;
    assert_eq!(incident["events"], 4, "{incident}");
    refuse_four().await;
    incident_where(&officer, "/v1/incidents", |i| {
        i["id"] == incident["id"] && i["events"] == 8
    })
    .await;
    // A few passes of both watches later, still one incident of eight events.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = list_items(&officer, "/v1/incidents").await;
    let mine: Vec<&Value> = all.iter().filter(|i| ours(i)).collect();
    assert_eq!(mine.len(), 1, "{all:?}");
    assert_eq!(mine[0]["events"], 8, "{all:?}");
}

/// Four eyes: an officer whose own access raised an incident cannot close it; another can.
#[tokio::test]
async fn an_officer_does_not_close_an_incident_about_their_own_access() {
    let server = Server::start_with(
        &watch_env("STRONGROOM_WATCH_DENIALS_OUTSIDE_GRANT", "3"),
        &[],
    );
    let w = world(&server, json!({})).await;
    let platform = server.admin().await;
    let probing = staff_session(&server, &platform, "security_officer").await;
    let other = staff_session(&server, &platform, "security_officer").await;
    let comments = comments_path(&w.tenant, &w.case_a);
    let probing_api = probing.with_purpose(Some("security-investigation"));
    for _ in 0..3 {
        probing_api
            .get(&comments)
            .await
            .err(403, "access_grant_required");
    }
    let incident = incident_where(&other, "/v1/incidents?state=open", |i| {
        i["kind"] == "access_outside_grant" && i["subject_id"] == probing.id.as_str()
    })
    .await;
    let close = format!("/v1/incidents/{}/close", str_id(&incident));
    probing
        .post(&close, json!({"resolution": "false_positive"}))
        .await
        .err(403, "forbidden");
    let open = list_items(&other, "/v1/incidents?state=open").await;
    assert!(open.iter().any(|i| i["id"] == incident["id"]), "{open:?}");
    let closed = other
        .post(&close, json!({"resolution": "false_positive"}))
        .await
        .ok(200);
    assert_eq!(closed["closed_by"], other.id.as_str());
}

fn str_id(v: &Value) -> &str {
    v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}"))
}
