//! `strongroom migrate` end to end: a SQLite deployment moved to PostgreSQL answers the same,
//! its audit log verifies there, and moved back into a fresh data dir it answers the same again.
//! A non-empty target and a data dir with a running server are refused.
//!
//! Needs a real PostgreSQL (`STRONGROOM_TEST_PG_URL`, default the local `test` database as
//! `postgres`): without one the PostgreSQL tests say SKIPPED, unless
//! `STRONGROOM_REQUIRE_POSTGRES=1` makes that a failure.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use crate::kit::*;
use crate::lifecycle_shred::populate;

/// Why these tests are not repeated in the PostgreSQL pass.
const SQLITE_PASS_ONLY: &str = "migrate starts from a SQLite deployment and reaches PostgreSQL itself; it runs in the SQLite pass";

const APP_ROLE: &str = "strongroom_app";

fn admin_url() -> String {
    std::env::var("STRONGROOM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn app_url() -> String {
    let admin = admin_url();
    match admin.split_once('@') {
        Some((_, rest)) => format!("postgres://{APP_ROLE}@{rest}"),
        None => admin,
    }
}

/// A schema of its own, owned by the application role; `None` (after saying so) when
/// PostgreSQL is unreachable and not required.
async fn pg_schema() -> Option<(PgPool, String)> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&admin_url())
        .await;
    let pool = match pool {
        Ok(pool) => pool,
        Err(err) if std::env::var("STRONGROOM_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("PostgreSQL is required (STRONGROOM_REQUIRE_POSTGRES=1) but unreachable: {err}")
        }
        Err(err) => {
            tell(&format!(
                "SKIPPED: migrate test not run: cannot connect to PostgreSQL ({err}); set \
                 STRONGROOM_REQUIRE_POSTGRES=1 to make this a failure"
            ));
            return None;
        }
    };
    pool.execute(
        "DO $$ BEGIN CREATE ROLE strongroom_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB \
         NOCREATEROLE; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .await
    .expect("create the application role");
    let name = format!("sr_migrate_{}", rand_hex(8));
    pool.execute(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {name} AUTHORIZATION {APP_ROLE}"
    )))
    .await
    .expect("create schema");
    Some((pool, name))
}

async fn drop_schema(pool: &PgPool, name: &str) {
    let _ = pool
        .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
        .await;
}

struct Run {
    ok: bool,
    out: String,
}

fn cli<S: AsRef<OsStr>>(args: &[S]) -> Run {
    cli_with_env(args, &[])
}

fn cli_with_env<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary());
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("STRONGROOM_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
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

/// `migrate`, given the database in the environment (as an operator keeps a password out of the
/// process list; `audit_verify` passes the same as flags).
fn migrate(data: &Path, to: &str, schema: &str, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("migrate"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--to"),
        OsStr::new(to),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let url = app_url();
    cli_with_env(
        &args,
        &[
            ("STRONGROOM_DATABASE_URL", &url),
            ("STRONGROOM_DATABASE_SCHEMA", schema),
        ],
    )
}

fn audit_verify(data: &Path, pg_schema: Option<&str>) -> Run {
    let url = app_url();
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("audit"),
        OsStr::new("verify"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
    ];
    if let Some(schema) = pg_schema {
        args.extend([
            OsStr::new("--database-url"),
            OsStr::new(&url),
            OsStr::new("--database-schema"),
            OsStr::new(schema),
        ]);
    }
    cli(&args)
}

fn new_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strongroom-it-")
        .tempdir()
        .unwrap()
}

/// A copy of a stopped server's data dir at `ROOT/data` (the kit owns the original's temp dir).
fn copy_data_dir(from: &Path) -> tempfile::TempDir {
    let root = new_root();
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(root.path().join("data"))
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a failed");
    root
}

/// A fresh data dir holding only the deployment's root key and log signing key.
fn keys_only_data_dir(from: &Path) -> tempfile::TempDir {
    let root = new_root();
    let keys = root.path().join("data/keys");
    std::fs::create_dir_all(&keys).unwrap();
    for d in [root.path().join("data"), keys.clone()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for key in ["root.key", "log-signing.key"] {
        std::fs::copy(from.join("keys").join(key), keys.join(key)).unwrap();
        std::fs::set_permissions(keys.join(key), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    root
}

/// What the tenant's admin reads: every contact, and the case with its comments.
async fn snapshot(api: &Api, tenant: &str) -> Vec<Value> {
    let mut out = list_items(api, &contacts_path(tenant)).await;
    for case in list_items(api, &cases_path(tenant)).await {
        let id = id_of(&case);
        out.push(api.get(&case_path(tenant, &id)).await.ok(200));
        out.extend(list_items(api, &comments_path(tenant, &id)).await);
        // Files by their records and their bytes, downloaded (and so opened and scanned).
        let files = attachments_path(tenant, &id);
        for file in list_items(api, &files).await {
            let (status, _, bytes) = api
                .get_bytes(&format!("{files}/{}/content", id_of(&file)))
                .await;
            assert_eq!(status, 200, "{file}");
            out.push(file);
            out.push(Value::String(hex::encode(bytes)));
        }
    }
    out
}

fn assert_no_canary(run: &Run, canaries: &[String]) {
    for c in canaries {
        assert!(!run.out.contains(c.as_str()), "plaintext in the output");
    }
}

#[tokio::test]
async fn sqlite_to_postgres_and_back_answers_the_same() {
    if skip_on_postgres(SQLITE_PASS_ONLY) {
        return;
    }
    let Some((pg, schema)) = pg_schema().await else {
        return;
    };
    let server = Server::start();
    let admin = server.admin().await;
    let t = populate(&server, &admin).await;
    let other = populate(&server, &admin).await;
    let before = snapshot(&t.boss, &t.tenant).await;
    let other_before = snapshot(&other.boss, &other.tenant).await;
    assert!(before.len() >= 4, "{before:?}");
    // The file's bytes are part of what must come back the same.
    let content = Value::String(hex::encode(t.canaries[5].as_bytes()));
    assert!(before.contains(&content), "{before:?}");
    assert!(
        before
            .iter()
            .any(|v| v.to_string().contains(&t.canaries[0]))
    );
    server.stop().await;
    let root = copy_data_dir(&server.data_dir);
    drop(server);
    let data = root.path().join("data");

    let run = migrate(&data, "postgres", &schema, &[]);
    assert!(run.ok, "migrate --to postgres failed:\n{}", run.out);
    assert!(run.out.contains("OK: row counts"), "{}", run.out);
    assert!(run.out.contains("OK: audit log"), "{}", run.out);
    assert!(
        run.out.contains("decrypt to the same plaintext"),
        "{}",
        run.out
    );
    assert!(run.out.contains("next steps"), "{}", run.out);
    assert_no_canary(&run, &t.canaries);
    let again = migrate(&data, "postgres", &schema, &["--verify-only"]);
    assert!(again.ok, "verify-only failed:\n{}", again.out);
    // The SQLite file left behind is no key source for a restore any more: tenants shredded
    // from now on keep their keys in it.
    let restored = root.path().join("restored");
    let refused = cli(&[
        OsStr::new("backup"),
        OsStr::new("restore"),
        OsStr::new("no-such.bak"),
        OsStr::new("--data-dir"),
        restored.as_os_str(),
        OsStr::new("--keys-from"),
        data.as_os_str(),
    ]);
    assert!(
        !refused.ok,
        "restored with the old SQLite file's keys:\n{}",
        refused.out
    );
    assert!(refused.out.contains("key backup file"), "{}", refused.out);
    // Nor for key or data backups, unless the database they moved to is named.
    let keys_out = root.path().join("keys.json");
    let backup_keys = |env: &[(&str, &str)]| {
        cli_with_env(
            &[
                OsStr::new("backup"),
                OsStr::new("keys"),
                OsStr::new("--data-dir"),
                data.as_os_str(),
                OsStr::new("--out"),
                keys_out.as_os_str(),
            ],
            env,
        )
    };
    let refused = backup_keys(&[]);
    assert!(
        !refused.ok,
        "keys read from the old SQLite file:\n{}",
        refused.out
    );
    assert!(
        refused.out.contains("moved to PostgreSQL"),
        "{}",
        refused.out
    );
    assert!(!keys_out.exists());
    let refused = cli(&[
        OsStr::new("backup"),
        OsStr::new("create"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--out"),
        root.path().join("data.bak").as_os_str(),
    ]);
    assert!(
        !refused.ok,
        "backed up the old SQLite file:\n{}",
        refused.out
    );
    assert!(
        refused.out.contains("moved to PostgreSQL"),
        "{}",
        refused.out
    );
    // Nor served or administered: writes there would never reach PostgreSQL.
    let refused = cli(&[
        OsStr::new("admin"),
        OsStr::new("access-review"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
    ]);
    assert!(
        !refused.ok,
        "administered the old SQLite file:\n{}",
        refused.out
    );
    assert!(
        refused.out.contains("moved to PostgreSQL"),
        "{}",
        refused.out
    );
    let url = app_url();
    let kept = backup_keys(&[
        ("STRONGROOM_DATABASE_URL", &url),
        ("STRONGROOM_DATABASE_SCHEMA", &schema),
    ]);
    assert!(kept.ok, "backup keys from PostgreSQL:\n{}", kept.out);
    assert!(keys_out.exists());

    // The same data dir, now served from PostgreSQL.
    let url = app_url();
    let served = Server::start_in(
        root,
        &[],
        &["--database-url", &url, "--database-schema", &schema],
    );
    let boss = open_session(&served, &t.boss.username, PASSWORD, "tenant_admin").await;
    assert_eq!(snapshot(&boss, &t.tenant).await, before);
    let other_boss = open_session(&served, &other.boss.username, PASSWORD, "tenant_admin").await;
    assert_eq!(snapshot(&other_boss, &other.tenant).await, other_before);
    let run = audit_verify(&served.data_dir, Some(&schema));
    assert!(run.ok, "audit verify on PostgreSQL failed:\n{}", run.out);

    // Back into a fresh data dir holding only the keys; refused while an instance runs.
    let back = keys_only_data_dir(&served.data_dir);
    let back_data = back.path().join("data");
    let run = migrate(&back_data, "sqlite", &schema, &[]);
    assert!(
        !run.ok,
        "migrated away from a running instance:\n{}",
        run.out
    );
    assert!(run.out.contains("still run"), "{}", run.out);
    assert!(!back_data.join("strongroom.db").exists());
    served.stop().await;
    // The audit signer's lease lapses within 5 s of the stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let run = migrate(&back_data, "sqlite", &schema, &[]);
        if run.ok || !run.out.contains("still run") || Instant::now() > deadline {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(run.ok, "migrate --to sqlite failed:\n{}", run.out);
    assert!(
        run.out.contains("decrypt to the same plaintext"),
        "{}",
        run.out
    );
    assert_no_canary(&run, &t.canaries);
    let run = audit_verify(&back_data, None);
    assert!(
        run.ok,
        "audit verify on the SQLite copy failed:\n{}",
        run.out
    );

    let home = Server::start_in(back, &[], &[]);
    let boss = open_session(&home, &t.boss.username, PASSWORD, "tenant_admin").await;
    assert_eq!(snapshot(&boss, &t.tenant).await, before);
    drop(home);
    drop(served);
    drop_schema(&pg, &schema).await;
}

#[tokio::test]
async fn a_target_holding_data_is_refused() {
    if skip_on_postgres(SQLITE_PASS_ONLY) {
        return;
    }
    let Some((pg, schema)) = pg_schema().await else {
        return;
    };
    let server = Server::start();
    let admin = server.admin().await;
    populate(&server, &admin).await;
    server.stop().await;

    let first = migrate(&server.data_dir, "postgres", &schema, &[]);
    assert!(first.ok, "first migrate failed:\n{}", first.out);
    // The schema is filled now: a second copy into it is refused, and changes nothing.
    let second = migrate(&server.data_dir, "postgres", &schema, &[]);
    assert!(
        !second.ok,
        "copied into a non-empty schema:\n{}",
        second.out
    );
    assert!(second.out.contains("not empty"), "{}", second.out);
    let check = migrate(&server.data_dir, "postgres", &schema, &["--verify-only"]);
    assert!(check.ok, "{}", check.out);
    // Nor does PostgreSQL go into a data dir whose database holds data.
    let back = migrate(&server.data_dir, "sqlite", &schema, &[]);
    assert!(
        !back.ok,
        "copied into a non-empty SQLite file:\n{}",
        back.out
    );
    assert!(back.out.contains("not empty"), "{}", back.out);
    drop(server);
    drop_schema(&pg, &schema).await;
}

#[tokio::test]
async fn a_running_servers_data_dir_is_refused() {
    if skip_on_postgres(SQLITE_PASS_ONLY) {
        return;
    }
    let server = Server::start();
    // Refused on the data-dir lock, before any database is reached.
    let run = cli(&[
        OsStr::new("migrate"),
        OsStr::new("--data-dir"),
        server.data_dir.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("postgres"),
        OsStr::new("--database-url"),
        OsStr::new("postgres://strongroom_app@127.0.0.1:1/none"),
    ]);
    assert!(
        !run.ok,
        "migrated a running server's data dir:\n{}",
        run.out
    );
    assert!(run.out.contains("stop the server"), "{}", run.out);
    assert!(server.is_running());
    server.admin().await;
}
