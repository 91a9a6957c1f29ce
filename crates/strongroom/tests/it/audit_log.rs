//! The audit log end to end: `strongroom audit verify` offline (on the data dir and on tampered
//! copies of it), inclusion proofs over HTTP, and fail-closed behaviour when the log cannot be
//! written. The monitor (`--url … --state FILE`) is in `audit_monitor.rs`.
//!
//! On PostgreSQL, `audit verify` reads the server's schema (`Server::store_args`), and tampering
//! happens in that schema, once the server is stopped, each change undone after its check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use strongroom_ledger::{Hash, NoteVerifier, leaf_hash, verify_inclusion};

use crate::kit::*;

/// Longer than the server's checkpoint interval, so the latest entries are signed.
pub(crate) const SIGNING_PAUSE: Duration = Duration::from_millis(1500);

/// The outcome of one `strongroom audit verify` run.
pub(crate) struct Run {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The entry count of a run that passed (`OK: N entries …`).
    pub(crate) fn entries_verified(&self) -> u64 {
        assert!(self.ok, "audit verify failed\n{self}");
        self.stdout
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("OK: ")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no `OK: N entries` in the output:\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok={}\n--- stdout\n{}--- stderr\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

pub(crate) fn audit_verify<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let mut cmd = Command::new(binary());
    cmd.args(["audit", "verify"]).args(args);
    for (key, _) in std::env::vars() {
        let lower = key.to_ascii_lowercase();
        if key.starts_with("STRONGROOM_") || lower.ends_with("_proxy") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run strongroom audit verify");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn verify_dir(dir: &Path) -> Run {
    audit_verify(&[OsStr::new("--data-dir"), dir.as_os_str()])
}

/// `audit verify` on a server's own store (on PostgreSQL, its schema).
pub(crate) fn verify_store(server: &Server) -> Run {
    let mut args = vec![
        OsStr::new("--data-dir").to_owned(),
        server.data_dir.clone().into_os_string(),
    ];
    args.extend(server.store_args().into_iter().map(Into::into));
    audit_verify(&args)
}

pub(crate) async fn activity(server: &Server) {
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(server, &admin, "tenant_admin", &tenant).await;
    for n in 0..4 {
        let c = create_contact(&boss, &tenant, json!({"name": format!("Audit Person {n}")})).await;
        boss.get(&contact_path(&tenant, &id_of(&c))).await.ok(200);
    }
    list_items(&boss, &contacts_path(&tenant)).await;
}

/// A copy of the server's database and log key (as a data dir) to tamper with.
fn copy_data_dir(from: &Path) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("keys")).unwrap();
    for name in ["strongroom.db", "strongroom.db-wal", "strongroom.db-shm"] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), data.join(name)).unwrap();
        }
    }
    std::fs::copy(
        from.join("keys/log-signing.key"),
        data.join("keys/log-signing.key"),
    )
    .unwrap();
    (root, data)
}

async fn entry_bytes(db: &mut Db, idx: i64) -> Vec<u8> {
    db.one(
        "SELECT entry FROM audit_entries WHERE idx = $1",
        &[idx.into()],
    )
    .await
}

async fn set_entry(db: &mut Db, idx: i64, bytes: &[u8]) {
    let done = db
        .execute(
            "UPDATE audit_entries SET entry = $1 WHERE idx = $2",
            &[bytes.into(), idx.into()],
        )
        .await;
    assert_eq!(done, 1);
}

/// The tables a PostgreSQL tampering case may change, saved before it and put back after.
const LOG_TABLES: [&str; 2] = ["audit_entries", "audit_checkpoints"];

/// Runs `tamper` on the stopped `server`'s log, then expects verification to fail at `index`.
/// SQLite: on a fresh copy of the data dir. PostgreSQL: in the server's schema, as the
/// administrator with triggers off, after saving the log's tables, which are put back after
/// the check (and the log must verify again).
async fn expect_failure_at<F>(server: &Server, index: i64, what: &str, tamper: F)
where
    F: AsyncFnOnce(&mut Db),
{
    let run = if server.schema().is_some() {
        let mut db = server.db().await;
        db.execute("SET session_replication_role = replica", &[])
            .await;
        for table in LOG_TABLES {
            let sql = format!("CREATE TEMP TABLE saved_{table} AS SELECT * FROM {table}");
            db.execute(&sql, &[]).await;
        }
        tamper(&mut db).await;
        let run = verify_store(server);
        for table in LOG_TABLES {
            db.execute(&format!("DELETE FROM {table}"), &[]).await;
            let sql =
                format!("INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM saved_{table}");
            db.execute(&sql, &[]).await;
            db.execute(&format!("DROP TABLE saved_{table}"), &[]).await;
        }
        db.close().await;
        let again = verify_store(server);
        assert!(
            again.ok,
            "{what}: the log put back fails verification\n{again}"
        );
        run
    } else {
        let (_root, data) = copy_data_dir(&server.data_dir);
        let mut db = Db::sqlite(&data).await;
        tamper(&mut db).await;
        db.close().await;
        verify_dir(&data)
    };
    assert!(!run.ok, "{what}: verification passed\n{run}");
    let needle = format!("first bad index {index}:");
    assert!(
        run.stderr.contains(&needle),
        "{what}: expected {needle:?}\n{run}"
    );
    assert!(
        run.stdout.contains(&format!("FAILED at index {index}:")),
        "{what}\n{run}"
    );
}

#[tokio::test]
async fn verify_passes_on_a_real_log_and_names_each_tampered_index() {
    let server = Server::start();
    activity(&server).await;
    tokio::time::sleep(SIGNING_PAUSE).await;
    let status = server.stop().await;
    assert!(status.success(), "server exited with {status}");

    let run = verify_store(&server);
    assert!(run.ok, "untouched log fails verification\n{run}");
    assert!(run.stdout.contains("OK: "), "{run}");

    let mut db = server.db().await;
    let count = db
        .int("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries", &[])
        .await;
    let signed = db
        .int(
            "SELECT CAST(MAX(size) AS BIGINT) FROM audit_checkpoints",
            &[],
        )
        .await;
    let checkpoint_sizes: Vec<i64> = db
        .column("SELECT CAST(size AS BIGINT) FROM audit_checkpoints", &[])
        .await;
    db.close().await;
    assert!(count >= 12, "only {count} entries");
    assert!(
        signed >= count - 1 && signed <= count,
        "latest checkpoint {signed} of {count}"
    );
    let run = if server.schema().is_none() {
        let (_root, probe) = copy_data_dir(&server.data_dir);
        verify_dir(&probe)
    } else {
        run
    };
    assert!(
        run.stdout.contains(&format!("OK: {count} entries")),
        "{run}"
    );

    // One byte of one entry (a digit of its time: still valid JSON, still the right index).
    let mid = count / 2;
    expect_failure_at(&server, mid, "modified byte", async |c| {
        let mut bytes = entry_bytes(&mut *c, mid).await;
        let at = find(&bytes, b"\"time\":\"") + 8;
        bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
        set_entry(&mut *c, mid, &bytes).await;
    })
    .await;

    // A deleted entry in the middle.
    let gone = count / 3;
    expect_failure_at(&server, gone, "deleted entry", async |c| {
        c.execute("DELETE FROM audit_entries WHERE idx = $1", &[gone.into()])
            .await;
    })
    .await;

    // The last K entries, and with them the tree nodes in their rows: the stored tree is
    // self-consistent, but the latest signed checkpoint is longer than the log.
    let keep = signed - 3;
    expect_failure_at(&server, keep, "truncated tail", async |c| {
        c.execute("DELETE FROM audit_entries WHERE idx >= $1", &[keep.into()])
            .await;
    })
    .await;

    // The tail removed together with the checkpoints that sign it. PostgreSQL's head row still
    // counts the removed entries, so the log ends in a gap where they start. (SQLite keeps no
    // count beside the entries; there a monitor's trusted checkpoint catches the shorter log.)
    if server.schema().is_some() {
        let keep = count - 3;
        expect_failure_at(
            &server,
            keep,
            "tail and its checkpoints removed",
            async |c| {
                c.execute("DELETE FROM audit_entries WHERE idx >= $1", &[keep.into()])
                    .await;
                c.execute(
                    "DELETE FROM audit_checkpoints WHERE size > $1",
                    &[keep.into()],
                )
                .await;
            },
        )
        .await;
    }

    // A row inserted far past the end: PostgreSQL's head does not count it, so only a look
    // past the end finds it (the tenant's access log would serve it).
    if server.schema().is_some() {
        let far = count + 1000;
        expect_failure_at(&server, far, "an entry past the end", async |c| {
            c.execute(
                "INSERT INTO audit_entries (idx, tenant_id, entry, leaf_hash) \
                 SELECT $1, tenant_id, entry, leaf_hash FROM audit_entries WHERE idx = 1",
                &[far.into()],
            )
            .await;
        })
        .await;
    }

    // Every checkpoint removed, or every one above the empty tree's: the server signs as soon
    // as it opens a log and within a second of an append, so entries that no checkpoint vouches
    // for are a failure from the first. (The data dir's own anchor, the checkpoint it last
    // published, would vouch for them: the SQLite copy has none; on PostgreSQL it is moved aside.)
    let anchor = server.data_dir.join("keys/published-checkpoint.note");
    let aside = server.data_dir.join("keys/published-checkpoint.aside");
    if server.schema().is_some() {
        std::fs::rename(&anchor, &aside).unwrap();
    }
    expect_failure_at(&server, 0, "checkpoints removed", async |c| {
        c.execute("DELETE FROM audit_checkpoints", &[]).await;
    })
    .await;
    expect_failure_at(&server, 0, "checkpoints above size 0 removed", async |c| {
        c.execute("DELETE FROM audit_checkpoints WHERE size > 0", &[])
            .await;
    })
    .await;
    if server.schema().is_some() {
        std::fs::rename(&aside, &anchor).unwrap();
    } else {
        // The anchor catches a tail removed with the checkpoints that signed it, which SQLite,
        // keeping no count beside the entries, cannot tell from a shorter log.
        let (_root, data) = copy_data_dir(&server.data_dir);
        std::fs::copy(&anchor, data.join("keys/published-checkpoint.note")).unwrap();
        let keep = count - 3;
        let mut db = Db::sqlite(&data).await;
        db.execute("DELETE FROM audit_entries WHERE idx >= $1", &[keep.into()])
            .await;
        db.execute(
            "DELETE FROM audit_checkpoints WHERE size > $1",
            &[keep.into()],
        )
        .await;
        db.close().await;
        let run = verify_dir(&data);
        assert!(!run.ok, "a tail removed with its checkpoints passed\n{run}");
        assert!(
            run.stderr.contains(&format!("first bad index {keep}:")),
            "{run}"
        );
        // An entry edited by hand in the sqlite3 shell is stored as text: named all the same.
        let mid = count / 2;
        expect_failure_at(&server, mid, "entry edited as text", async |c| {
            c.execute(
                "UPDATE audit_entries SET entry = \
                 CAST(replace(CAST(entry AS TEXT), '\"v\":1', '\"v\": 1') AS TEXT) WHERE idx = $1",
                &[mid.into()],
            )
            .await;
        })
        .await;
    }

    // Two entries' bytes swapped: the first of them is named.
    let (a, b) = (count / 4, count / 4 + 3);
    expect_failure_at(&server, a, "swapped entries", async |c| {
        let (x, y) = (entry_bytes(&mut *c, a).await, entry_bytes(&mut *c, b).await);
        set_entry(&mut *c, a, &y).await;
        set_entry(&mut *c, b, &x).await;
    })
    .await;

    // The tree hashes kept beside the entries, a column at a time: one row's replaced by
    // another's, one row's removed. Every row holds a leaf hash; rows 4k + 1 hold one subtree
    // root (level 1), as do rows 4k + 5. A replaced leaf hash names its row; a replaced subtree
    // root names the first entry it covers (4k, one before its row), since either could be
    // the one changed, unless a signed checkpoint of 4k + 1 entries vouches for entry 4k
    // (the signer sometimes signs right after a single entry): then its row.
    let odd = |n: i64| n & !3 | 1;
    for (column, replaced, from, removed) in [
        ("leaf_hash", count / 5, count / 5 + 1, count / 5 + 2),
        (
            "subtree_roots",
            odd(count / 6),
            odd(count / 6) + 4,
            odd(count / 7),
        ),
    ] {
        let vouched = checkpoint_sizes.contains(&replaced);
        let named = if column == "leaf_hash" || vouched {
            replaced
        } else {
            replaced - 1
        };
        expect_failure_at(&server, named, &format!("replaced {column}"), async |c| {
            let sql = format!(
                "UPDATE audit_entries SET {column} = \
                 (SELECT {column} FROM audit_entries WHERE idx = $1) WHERE idx = $2"
            );
            c.execute(&sql, &[from.into(), replaced.into()]).await;
        })
        .await;
        expect_failure_at(&server, removed, &format!("removed {column}"), async |c| {
            let sql = format!("UPDATE audit_entries SET {column} = NULL WHERE idx = $1");
            c.execute(&sql, &[removed.into()]).await;
        })
        .await;
    }
}

/// `audit verify` beside a server that keeps appending: each run checks the log as it stood when
/// it began (the halves of a page come over separate connections, possibly separate snapshots) and
/// passes, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_while_the_server_appends() {
    let server = Server::start();
    activity(&server).await;
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contact = create_contact(&boss, &tenant, json!({"name": "Busy Person"})).await;
    let path = contact_path(&tenant, &id_of(&contact));
    tokio::time::sleep(SIGNING_PAUSE).await;

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (boss, path, stop) = (boss.clone(), path.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    boss.get(&path).await.ok(200);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut args = vec![
        OsString::from("--data-dir"),
        server.data_dir.clone().into_os_string(),
    ];
    args.extend(server.store_args().into_iter().map(OsString::from));
    let mut verified = Vec::new();
    for _ in 0..4 {
        let args = args.clone();
        let run = tokio::task::spawn_blocking(move || audit_verify(&args))
            .await
            .unwrap();
        assert!(run.ok, "verification beside live appends failed\n{run}");
        let entries: u64 = run
            .stdout
            .split("OK: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no entry count in\n{run}"));
        verified.push(entries);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.unwrap();
    }
    assert!(reads >= 4, "only {reads} reads beside the verifications");
    // The log grew while it was being verified: each run saw a longer prefix of it.
    assert!(
        verified.windows(2).all(|w| w[0] <= w[1]) && verified.first() < verified.last(),
        "entries verified per run: {verified:?}"
    );
    let status = server.stop().await;
    assert!(status.success(), "server exited with {status}");
    assert!(verify_store(&server).ok);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in entry", String::from_utf8_lossy(needle)))
}

fn b64_hash(v: &Value) -> Hash {
    STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn inclusion_proofs_over_http_verify_against_the_signed_checkpoint() {
    let server = Server::start();
    activity(&server).await;
    let admin = server.admin().await;
    let auditor = staff_session(&server, &admin, "auditor").await;
    tokio::time::sleep(SIGNING_PAUSE).await;

    let anon = server.anon();
    let vkey = anon.get("/v1/audit/verifier-key").await.text;
    let verifier = NoteVerifier::parse(vkey.trim()).unwrap();
    let note = anon.get("/v1/audit/checkpoint").await.text;
    let cp = verifier.verify_checkpoint(&note).unwrap();
    assert_eq!(cp.origin, verifier.name());
    assert!(cp.size > 5, "{cp:?}");

    let page = auditor
        .get("/v1/audit/entries?start=0&limit=100")
        .await
        .ok(200);
    let items = page["items"].as_array().unwrap();
    let mut checked = 0;
    for item in items {
        let index = item["index"].as_u64().unwrap();
        if index >= cp.size {
            continue;
        }
        let leaf = STANDARD.decode(item["leaf"].as_str().unwrap()).unwrap();
        let parsed: Value = serde_json::from_slice(&leaf).unwrap();
        assert_eq!(parsed, item["entry"], "leaf bytes and entry differ");
        assert_eq!(parsed["index"].as_u64(), Some(index));
        let path = format!(
            "/v1/audit/proofs/inclusion?index={index}&tree_size={}",
            cp.size
        );
        let proof = anon.get(&path).await.ok(200);
        assert_eq!(proof["index"].as_u64(), Some(index));
        assert_eq!(proof["tree_size"].as_u64(), Some(cp.size));
        let hashes: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(b64_hash)
            .collect();
        let leaf_hash_served = b64_hash(&proof["leaf_hash"]);
        assert_eq!(
            leaf_hash_served,
            leaf_hash(&leaf),
            "served leaf hash of {index}"
        );
        verify_inclusion(index, cp.size, &leaf_hash(&leaf), &hashes, &cp.root)
            .unwrap_or_else(|e| panic!("inclusion of {index} in {}: {e}", cp.size));
        // The same proof does not place another entry there, nor this entry elsewhere.
        let other = leaf_hash(b"not the entry");
        assert!(verify_inclusion(index, cp.size, &other, &hashes, &cp.root).is_err());
        if index + 1 < cp.size {
            assert!(
                verify_inclusion(index + 1, cp.size, &leaf_hash(&leaf), &hashes, &cp.root).is_err()
            );
        }
        checked += 1;
    }
    assert_eq!(
        u64::try_from(checked).unwrap(),
        cp.size.min(100),
        "entries checked"
    );

    // Entries are not public.
    anon.get("/v1/audit/entries")
        .await
        .err(401, "unauthenticated");

    // A page's next_cursor is taken back as `cursor` (the list convention) and means `start`.
    let first = auditor.get("/v1/audit/entries?limit=3").await.ok(200);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = auditor
        .get(&format!("/v1/audit/entries?cursor={cursor}&limit=3"))
        .await
        .ok(200);
    let indexes: Vec<u64> = next["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![3, 4, 5]);
    auditor
        .get(&format!("/v1/audit/entries?start=0&cursor={cursor}"))
        .await
        .err(400, "invalid_request");

    // A consistency proof starts from a non-empty tree (RFC 9162), as Go's tlog requires too.
    let from_empty = anon
        .get(&format!(
            "/v1/audit/proofs/consistency?from=0&to={}",
            cp.size
        ))
        .await;
    from_empty.err(422, "validation_failed");
    assert_eq!(from_empty.fields(), vec!["from".to_owned()]);
}

/// The answer to a request made while the log is locked: it must come (a refusal) well before
/// the lock is released.
async fn answer_within(what: &str, request: impl std::future::Future<Output = Resp>) -> Resp {
    tokio::time::timeout(Duration::from_secs(20), request)
        .await
        .unwrap_or_else(|_| {
            panic!("{what}: no answer within 20 s while the log is locked (busy timeout 300 ms, statement timeout 1 s)")
        })
}

#[tokio::test]
async fn requests_fail_closed_while_the_log_cannot_be_written() {
    // SQLite waits for its lock up to the busy timeout; PostgreSQL up to the statement timeout.
    let server = Server::start_with(
        &[
            ("STRONGROOM_STORE_BUSY_TIMEOUT_MS", "300"),
            ("STRONGROOM_DATABASE_STATEMENT_TIMEOUT_MS", "1000"),
        ],
        &[],
    );
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let secret = format!("Lockheld Person {}", rand_hex(4));
    let contact = create_contact(
        &boss,
        &tenant,
        json!({"name": secret, "email": "held@example.com"}),
    )
    .await;
    let path = contact_path(&tenant, &id_of(&contact));
    boss.get(&path).await.ok(200);

    // Another process holds the database's write lock (PostgreSQL: a lock on the log's table
    // that blocks every append): no audit entry can be committed.
    let mut lock = server.db().await;
    if on_postgres() {
        lock.execute("BEGIN", &[]).await;
        lock.execute("LOCK TABLE audit_entries IN EXCLUSIVE MODE", &[])
            .await;
    } else {
        lock.execute("BEGIN EXCLUSIVE", &[]).await;
    }
    let read = answer_within("read", boss.get(&path)).await;
    read.err(503, "audit_unavailable");
    let create = answer_within(
        "create",
        boss.post(&contacts_path(&tenant), json!({"name": "Never Stored"})),
    )
    .await;
    create.err(503, "audit_unavailable");
    for resp in [&read, &create] {
        assert!(
            !resp.text.contains(&secret),
            "record data in a refusal: {}",
            resp.text
        );
        assert!(
            !resp.text.contains("held@example.com"),
            "record data in a refusal: {}",
            resp.text
        );
    }
    lock.execute("ROLLBACK", &[]).await;
    lock.close().await;

    // Released: requests work again, and the refused create left nothing behind.
    let body = boss.get(&path).await.ok(200);
    assert_eq!(body["name"].as_str(), Some(secret.as_str()));
    let names: Vec<String> = list_items(&boss, &contacts_path(&tenant))
        .await
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    assert!(!names.iter().any(|n| n == "Never Stored"), "{names:?}");
    drop((boss, admin));
    tokio::time::sleep(SIGNING_PAUSE).await;
    let status = server.stop().await;
    assert!(status.success(), "server exited with {status}");
    let run = verify_store(&server);
    assert!(run.ok, "log after the outage\n{run}");
}

/// A deployment whose configuration file sets `audit_origin` is verified with that file: without
/// it the verifier derives another origin and every checkpoint fails, a false tamper alarm.
#[tokio::test]
async fn offline_verification_reads_the_deployments_configuration_file() {
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("strongroom.toml");
    std::fs::write(
        &conf,
        "[service]\naudit_origin = \"vault.example.org/audit\"\n",
    )
    .unwrap();
    let conf_arg = conf.to_str().unwrap().to_owned();
    let server = Server::start_with(&[], &["--config", &conf_arg]);
    activity(&server).await;
    tokio::time::sleep(SIGNING_PAUSE).await;
    let note = server.anon().get("/v1/audit/checkpoint").await.text;
    assert!(note.starts_with("vault.example.org/audit\n"), "{note}");
    assert!(server.stop().await.success());

    let mut args = vec![
        OsStr::new("--data-dir").to_owned(),
        server.data_dir.clone().into_os_string(),
    ];
    args.extend(server.store_args().into_iter().map(Into::into));
    let without = audit_verify(&args);
    assert!(
        !without.ok,
        "verified under an origin the log does not use:\n{without}"
    );
    args.extend([OsStr::new("--config").to_owned(), conf.into_os_string()]);
    let with = audit_verify(&args);
    assert!(with.ok, "{with}");
    assert!(with.entries_verified() > 5, "{with}");
}
