//! One command, both backends: when `cargo test` runs this binary on the default backend
//! (SQLite), this test runs the same binary again with `STRONGROOM_TEST_DATABASE=postgres`, so
//! every end-to-end test also runs against PostgreSQL. If PostgreSQL cannot be reached the pass
//! is skipped, loudly, unless `STRONGROOM_REQUIRE_POSTGRES=1` (CI), which makes it a failure.

use std::process::Command;
use std::time::Instant;

use crate::kit::*;

const ME: &str = "postgres_backend::whole_suite_on_postgres";

/// Test threads of the PostgreSQL pass: each test starts at least one server.
const THREADS: &str = "2";

#[test]
fn whole_suite_on_postgres() {
    if let Ok(chosen) = std::env::var("STRONGROOM_TEST_DATABASE") {
        eprintln!("STRONGROOM_TEST_DATABASE={chosen}: this run is already backend-specific");
        return;
    }
    let required = std::env::var("STRONGROOM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    if let Err(why) = pg_reachable() {
        assert!(
            !required,
            "STRONGROOM_REQUIRE_POSTGRES=1 but the PostgreSQL end-to-end pass cannot run: {why}"
        );
        tell(&format!(
            "SKIPPED: PostgreSQL end-to-end pass not run: {why} \
             (set STRONGROOM_REQUIRE_POSTGRES=1 to make this a failure)"
        ));
        return;
    }

    let exe = std::env::current_exe().expect("path of the test binary");
    let started = Instant::now();
    tell(&format!(
        "running the suite again on PostgreSQL ({}, {THREADS} test threads) …",
        pg_admin_url()
    ));
    let out = Command::new(&exe)
        .env("STRONGROOM_TEST_DATABASE", "postgres")
        .args(["--skip", ME, "--test-threads", THREADS])
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let secs = started.elapsed().as_secs();

    // What was skipped on PostgreSQL (kit::skip_on_postgres writes past the capture).
    let skipped: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("skipped on PostgreSQL:"))
        .collect();
    let result = stdout
        .lines()
        .rfind(|l| l.starts_with("test result:"))
        .unwrap_or("no `test result:` line");
    let mut summary = format!(
        "PostgreSQL pass ({secs} s): {result}\n{} test(s) or part(s) skipped on PostgreSQL:\n",
        skipped.len()
    );
    for line in &skipped {
        summary.push_str(&format!("  {line}\n"));
    }
    if out.status.success() {
        tell(&summary);
        return;
    }
    // libtest's failures: each failing test's output (the first 400 lines of them), then the
    // list of names.
    let failures = match (stdout.find("\nfailures:\n"), stdout.rfind("\nfailures:\n")) {
        (Some(first), Some(last)) if first < last => format!(
            "{}\n[…]\n{}",
            first_lines(&stdout[first..last], 400),
            &stdout[last..]
        ),
        _ => last_lines(&stdout, 200),
    };
    panic!(
        "the suite failed on PostgreSQL ({}):\n{summary}\n{failures}\n---- stderr (last 60 lines) ----\n{}",
        out.status,
        last_lines(&stderr, 60)
    );
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The kit's PostgreSQL plumbing on its own: the application role is a plain one, a schema is
/// created owned by it, dumped, and dropped with its holder.
#[test]
fn kit_creates_a_plain_role_and_drops_its_schemas() {
    if let Err(why) = pg_reachable() {
        let required = std::env::var("STRONGROOM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        assert!(!required, "STRONGROOM_REQUIRE_POSTGRES=1: {why}");
        tell(&format!(
            "SKIPPED: the kit's PostgreSQL plumbing not checked: {why}"
        ));
        return;
    }
    let schema = PgSchema::create();
    let name = schema.name.clone();
    let probe = name.clone();
    let (owner, plain): (String, bool) = block_on(move || async move {
        let mut conn = pg_admin_connect().await.unwrap();
        sqlx::query_as(
            "SELECT n.nspowner::regrole::text, NOT (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole \
             OR r.rolcreatedb) AND r.rolcanlogin \
             FROM pg_namespace n JOIN pg_roles r ON r.rolname = $2 WHERE n.nspname = $1",
        )
        .bind(probe)
        .bind(PG_APP_ROLE)
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    assert_eq!(owner, PG_APP_ROLE);
    assert!(plain, "{PG_APP_ROLE} must be a plain login role");
    drop(schema);
    let probe = name.clone();
    let left: i64 = block_on(move || async move {
        let mut conn = pg_admin_connect().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1")
            .bind(probe)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n
    });
    assert_eq!(left, 0, "schema {name} survived its drop");
}
