//! A fresh PostgreSQL schema for one benchmark run, created and dropped with `psql` as the admin role.
//!
//! `AUDIT_BENCH_DATABASE_URL` is the log's role (default
//! `postgres://strongroom_app@127.0.0.1:5432/test`, NOSUPERUSER NOBYPASSRLS) and
//! `AUDIT_BENCH_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/test`) what `psql` uses to
//! create the schema, owned by that role, and to drop it at the end (unless `AUDIT_BENCH_KEEP=1`).

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use strongroom_store::{PgOptions, PgStore, Store};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Schema {
    admin: String,
    url: String,
    pub name: String,
}

impl Schema {
    /// Creates the role (if missing) and a schema it owns, from the environment described above.
    pub fn from_env() -> Self {
        let url = env_or(
            "AUDIT_BENCH_DATABASE_URL",
            "postgres://strongroom_app@127.0.0.1:5432/test",
        );
        let admin = env_or(
            "AUDIT_BENCH_ADMIN_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        );
        let role = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .and_then(|rest| rest.split_once('@'))
            .map(|(user, _)| user.split(':').next().unwrap_or(user).to_owned())
            .expect("AUDIT_BENCH_DATABASE_URL must be postgres://role@host/db");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("audit_bench_{}_{nanos:x}", std::process::id());
        psql(
            &admin,
            &format!(
                "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;\n\
                 CREATE SCHEMA {name} AUTHORIZATION {role};"
            ),
        );
        Self { admin, url, name }
    }

    /// A store on the schema with the server's pool defaults.
    pub async fn open_store(&self) -> Arc<dyn Store> {
        let store = PgStore::open(&PgOptions {
            url: self.url.clone(),
            schema: Some(self.name.clone()),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        })
        .await
        .unwrap();
        Arc::new(store)
    }

    /// Scans and updates of the schema's `audit_head` row so far (PostgreSQL's statistics,
    /// flushed by each backend at most once a second). A commit scans it twice (lock, update),
    /// a claim refused because the other instance moved the head scans it once.
    pub fn head_stats(&self) -> (u64, u64) {
        let out = psql(
            &self.admin,
            &format!(
                "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0), n_tup_upd \
                 FROM pg_stat_user_tables WHERE schemaname = '{}' AND relname = 'audit_head'",
                self.name
            ),
        );
        let (scans, updates) = out.trim().split_once('|').unwrap();
        (scans.parse().unwrap(), updates.parse().unwrap())
    }

    /// Bytes of the schema's tables with their indexes and TOAST.
    pub fn size_bytes(&self) -> u64 {
        let out = psql(
            &self.admin,
            &format!(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = '{}' AND c.relkind = 'r'",
                self.name
            ),
        );
        out.trim().parse().unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if std::env::var("AUDIT_BENCH_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("kept schema {}", self.name);
        } else {
            let out = Command::new("psql")
                .args(["-X", "-q", "-d", &self.admin, "-c"])
                .arg(format!("DROP SCHEMA {} CASCADE", self.name))
                .output();
            if !out.is_ok_and(|o| o.status.success()) {
                eprintln!("could not drop schema {}", self.name);
            }
        }
    }
}
