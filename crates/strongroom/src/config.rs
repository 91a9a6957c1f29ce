//! One typed configuration, layered: defaults ← TOML file ← `STRONGROOM_*` environment ← flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use strongroom_core::Settings;
use strongroom_server::ProxyRange;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_body_bytes: usize,
    /// Extra Cedar policies, validated against the built-in schema.
    pub policy_dir: Option<PathBuf>,
    /// Take the root key from this environment variable (base64) instead of the data dir's key file.
    pub root_key_env: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub store_busy_timeout_ms: u64,
    /// `postgres://…`: keep the data in PostgreSQL instead of the data dir's SQLite file.
    pub database_url: Option<DatabaseUrl>,
    /// PostgreSQL schema holding Strongroom's tables (the role's `search_path` when absent).
    pub database_schema: Option<String>,
    pub database_max_connections: u32,
    pub database_statement_timeout_ms: u64,
    pub shutdown_grace_secs: u64,
    /// A connection on which nothing moves, either way, for this long is closed: silent between
    /// requests, or not reading an answer (no request may take longer to start answering).
    pub connection_idle_secs: u64,
    /// Most connections open at once on each listener; more are closed as they arrive.
    pub max_connections: usize,
    /// Most of them from one client (an IPv4 address, an IPv6 /64; a trusted proxy excepted),
    /// so that one client cannot take every place; 0 leaves the total alone.
    pub max_connections_per_client: usize,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client, for
    /// the login throttle's count by address. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ProxyRange>,
    /// Service settings (`[service]` in the file; `STRONGROOM_<KEY>` in the environment).
    pub service: Settings,
}

/// A database URL, which may carry a password: never shown by `Debug`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: String) -> Self {
        Self(url)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

impl Drop for DatabaseUrl {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: 1024 * 1024,
            policy_dir: None,
            root_key_env: None,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            store_busy_timeout_ms: 5_000,
            database_url: None,
            database_schema: None,
            database_max_connections: 16,
            database_statement_timeout_ms: 30_000,
            shutdown_grace_secs: 30,
            connection_idle_secs: 120,
            max_connections: 1024,
            max_connections_per_client: 256,
            trusted_proxies: Vec::new(),
            service: Settings::default(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (or `DATA_DIR/strongroom.toml` when present), then the environment.
    pub fn load(file: Option<&Path>, data_dir: &Path) -> Result<Self> {
        let mut table =
            toml::Table::try_from(Config::default()).context("default configuration")?;
        let implicit = data_dir.join("strongroom.toml");
        let path = file
            .map(Path::to_path_buf)
            .or_else(|| implicit.exists().then_some(implicit));
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading configuration {}", path.display()))?;
            merge_file(&mut table, parse_file(&path, &text)?);
        }
        overlay_env(&mut table)?;
        if let Some(toml::Value::Table(service)) = table.get_mut("service") {
            overlay_env(service)?;
        }
        // Options absent from the defaults (None) can still come from the environment.
        for key in OPTIONAL_KEYS {
            if let Ok(raw) = std::env::var(format!("STRONGROOM_{}", key.to_uppercase())) {
                table.insert(key.into(), toml::Value::String(raw));
            }
        }
        // Unknown keys, in the file or at any level, are refused here (`deny_unknown_fields`).
        let config: Self = table.try_into().context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    /// Refuses what parses but cannot be meant: zeros where zero would switch a protection off
    /// or make every request fail. (A certificate without its key is `serve`'s to refuse, once
    /// its flags are laid over.)
    fn check(&self) -> Result<()> {
        let service = &self.service;
        let positive = [
            (
                "max_body_bytes",
                u64::try_from(self.max_body_bytes).unwrap_or(u64::MAX),
            ),
            ("store_busy_timeout_ms", self.store_busy_timeout_ms),
            (
                "database_max_connections",
                u64::from(self.database_max_connections),
            ),
            (
                "database_statement_timeout_ms",
                self.database_statement_timeout_ms,
            ),
            ("connection_idle_secs", self.connection_idle_secs),
            (
                "max_connections",
                u64::try_from(self.max_connections).unwrap_or(u64::MAX),
            ),
        ];
        for (key, value) in positive.into_iter().chain(service.must_be_positive()) {
            if value == 0 {
                bail!("{key} must be greater than 0");
            }
        }
        let most = strongroom_server::MAX_CONNECTION_IDLE.as_secs();
        if self.connection_idle_secs > most {
            bail!("connection_idle_secs must be at most {most} (a day)");
        }
        service.check().map_err(|why| anyhow::anyhow!(why))
    }
}

/// The keys whose default is "not set", so that the defaults' table does not hold them.
const OPTIONAL_KEYS: [&str; 6] = [
    "tls_cert",
    "tls_key",
    "policy_dir",
    "root_key_env",
    "database_url",
    "database_schema",
];

/// Lays the file's keys over the defaults one by one, at every level (`[service]`, and its
/// `export_quota_per_day` role by role), so that the environment still reaches every key the
/// file leaves out.
fn merge_file(table: &mut toml::Table, file: toml::Table) {
    for (key, value) in file {
        match (table.get_mut(&key), value) {
            (Some(toml::Value::Table(defaults)), toml::Value::Table(given)) => {
                merge_file(defaults, given);
            }
            (_, value) => {
                table.insert(key, value);
            }
        }
    }
}

/// Parses the configuration file. toml's error Display quotes the offending line, which may hold a
/// secret (a database URL's password), so only the position and toml's bare message are reported.
fn parse_file(path: &Path, text: &str) -> Result<toml::Table> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| {
                let line = before.matches('\n').count() + 1;
                let column = before
                    .rsplit('\n')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .count()
                    + 1;
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        anyhow::anyhow!(
            "parsing configuration {}{at}: {}",
            path.display(),
            e.message().trim_end()
        )
    })
}

/// Replaces each key of `table` whose `STRONGROOM_<KEY>` variable is set, typed like the default; the
/// keys of a nested table (a map such as `export_quota_per_day`) are `STRONGROOM_<KEY>_<SUBKEY>`.
fn overlay_env(table: &mut toml::Table) -> Result<()> {
    overlay_env_prefixed(table, "STRONGROOM_")
}

fn overlay_env_prefixed(table: &mut toml::Table, prefix: &str) -> Result<()> {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let var = format!("{prefix}{}", key.to_uppercase());
        if let Some(toml::Value::Table(inner)) = table.get_mut(&key) {
            if prefix != "STRONGROOM_" || key != "service" {
                overlay_env_prefixed(inner, &format!("{var}_"))?;
            }
            if std::env::var(&var).is_ok() {
                bail!("{var}: set the individual keys instead");
            }
            continue;
        }
        let Ok(raw) = std::env::var(&var) else {
            continue;
        };
        let value = match table.get(&key) {
            Some(toml::Value::Integer(_)) => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .with_context(|| format!("{var} must be an integer"))?,
            ),
            Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
                raw.trim()
                    .parse()
                    .with_context(|| format!("{var} must be true or false"))?,
            ),
            // A list: comma-separated (`STRONGROOM_TRUSTED_PROXIES=10.0.0.5,10.1.0.0/16`).
            Some(toml::Value::Array(_)) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_owned()))
                    .collect(),
            ),
            _ => toml::Value::String(raw),
        };
        table.insert(key, value);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-7f3";

    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("strongroom.toml");
        std::fs::write(&file, text).unwrap();
        let e = Config::load(Some(&file), dir.path()).unwrap_err();
        format!("{e:#}")
    }

    fn load_file(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("strongroom.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(Some(&file), dir.path()).unwrap()
    }

    #[test]
    fn the_file_sets_a_map_one_key_at_a_time() {
        let config =
            load_file("[service.export_quota_per_day]\nsupport_engineer = 50\nauditor = 10\n");
        let quotas = &config.service.export_quota_per_day;
        assert_eq!(quotas.get("support_engineer"), Some(&50));
        assert_eq!(quotas.get("auditor"), Some(&10));
        assert_eq!(quotas.get("tenant_admin"), Some(&100_000), "{quotas:?}");
    }

    #[test]
    fn zeros_that_would_harm_are_refused() {
        for key in [
            "inactivity_suspend_days",
            "login_lockout_secs",
            "attachment_scan_timeout_ms",
        ] {
            let e = load_error(&format!("[service]\n{key} = 0\n"));
            assert!(e.contains(&format!("{key} must be greater than 0")), "{e}");
        }
        // Intervals take 0 for "off".
        let config = load_file("[service]\ninactivity_sweep_interval_secs = 0\n");
        assert_eq!(config.service.inactivity_sweep_interval_secs, 0);
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks_and_refuse_the_rest() {
        let config = load_file("trusted_proxies = [\"10.0.0.5\", \"10.1.2.3/16\", \"::1\"]\n");
        let shown: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]);
        assert!(load_file("").trusted_proxies.is_empty());
        let e = load_error("trusted_proxies = [\"proxy.internal\"]\n");
        assert!(e.contains("neither an IP address nor a network"), "{e}");
        let e = load_error("max_connections = 0\n");
        assert!(e.contains("max_connections must be greater than 0"), "{e}");
    }

    #[test]
    fn parse_errors_give_the_position_but_never_the_source() {
        let same_line = load_error(
            "log_level = \"info\"\ndatabase_url = \"postgres://u:CANARY-7f3@h/db\" oops\n",
        );
        assert!(!same_line.contains(CANARY), "{same_line}");
        assert!(same_line.contains("strongroom.toml:2:"), "{same_line}");

        let next_line =
            load_error("database_url = \"postgres://u:CANARY-7f3@h/db\"\nlog_level = = \"info\"\n");
        assert!(!next_line.contains(CANARY), "{next_line}");
        assert!(next_line.contains("strongroom.toml:2:"), "{next_line}");

        let unterminated = load_error("database_url = \"postgres://u:CANARY-7f3@h/db\n");
        assert!(!unterminated.contains(CANARY), "{unterminated}");
        assert!(
            unterminated.contains("strongroom.toml:1:"),
            "{unterminated}"
        );
    }
}
