//! PostgreSQL for the bench: a fresh schema per run (created and dropped with `psql` as the admin
//! role, so the bench needs no SQL driver of its own), and the database's share of the cores.

use super::*;

/// A schema created for one bench run, owned by the servers' role; dropped on drop unless kept.
pub(super) struct PgSchema {
    /// The servers' URL (the application role, never a superuser).
    pub(super) url: String,
    pub(super) name: String,
    admin_url: String,
    keep: bool,
}

/// A lowercase SQL identifier, safe to splice into DDL and to pass as `--database-schema`.
fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

impl PgSchema {
    /// Creates the application role if missing and a fresh schema it owns (refuses an existing one).
    pub(super) fn create(
        url: &str,
        schema: Option<&str>,
        admin_url: &str,
        keep: bool,
    ) -> Result<Self> {
        let parsed = reqwest::Url::parse(url).context("--database-url is not a URL")?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            bail!("--database-url must be a postgres:// URL");
        }
        let role = parsed.username();
        if !valid_identifier(role) {
            bail!(
                "--database-url must name a lowercase role (e.g. postgres://strongroom_app@host/db)"
            );
        }
        let name = match schema {
            Some(s) => s.to_owned(),
            None => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                format!("bench_{}_{nanos:x}", std::process::id())
            }
        };
        if !valid_identifier(&name) {
            bail!("--database-schema must be a lowercase SQL identifier");
        }
        psql(
            admin_url,
            &format!(
                "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;\n\
                 CREATE SCHEMA {name} AUTHORIZATION {role};"
            ),
        )
        .with_context(|| format!("creating schema {name} (as --database-admin-url)"))?;
        Ok(Self {
            url: url.to_owned(),
            name,
            admin_url: admin_url.to_owned(),
            keep,
        })
    }

    /// Scans of this schema's `audit_head` row and updates of it so far, from PostgreSQL's
    /// statistics (flushed by each backend at most once a second, so edges are ±1 s). Every batch
    /// commit scans the head once to lock it and, if the head is where it planned, updates it
    /// once (a second scan); a refused claim (head moved by another instance) scans it once.
    pub(super) fn head_stats(&self) -> Option<HeadStats> {
        let out = psql(
            &self.admin_url,
            &format!(
                "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0), n_tup_upd \
                 FROM pg_stat_user_tables WHERE schemaname = '{}' AND relname = 'audit_head'",
                self.name
            ),
        )
        .ok()?;
        let (scans, updates) = out.trim().split_once('|')?;
        Some(HeadStats {
            scans: scans.trim().parse().ok()?,
            updates: updates.trim().parse().ok()?,
        })
    }
}

#[derive(Clone, Copy)]
pub(super) struct HeadStats {
    pub(super) scans: u64,
    pub(super) updates: u64,
}

impl HeadStats {
    /// Claims refused because another instance moved the head, between two samples: scans not
    /// explained by successful commits (also counts the signer's few head reads per second).
    pub(super) fn refused_between(before: Self, after: Self) -> u64 {
        let scans = after.scans.saturating_sub(before.scans);
        let updates = after.updates.saturating_sub(before.updates);
        scans.saturating_sub(2 * updates)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("bench: kept schema {}", self.name);
            return;
        }
        let sql = format!(
            "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {} CASCADE;",
            self.name
        );
        if let Err(e) = psql(&self.admin_url, &sql) {
            eprintln!("bench: could not drop schema {}: {e:#}", self.name);
        }
    }
}

/// Runs `sql` with `psql` (unaligned, tuples only); returns its standard output.
fn psql(url: &str, sql: &str) -> Result<String> {
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
        .stdin(Stdio::null())
        .output()
        .context("running psql (the bench creates and drops its schema with it)")?;
    if !out.status.success() {
        bail!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// CPU ticks used so far by every `postgres` process on this machine (the database is local in
/// the measured setups; other users' queries count too).
pub(super) fn postgres_ticks() -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let is_postgres = text
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .is_some_and(|(comm, _)| comm == "postgres");
        if is_postgres {
            total += proc_ticks(&format!("/proc/{pid}/stat")).unwrap_or(0);
        }
    }
    Some(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(valid_identifier("bench_12_ab"));
        assert!(!valid_identifier("Bench"));
        assert!(!valid_identifier("a;drop"));
        assert!(!valid_identifier(""));
        assert!(!valid_identifier("1a"));
    }
}
