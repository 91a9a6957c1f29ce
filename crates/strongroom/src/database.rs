//! Which store a deployment uses: SQLite in the data dir (the default), or PostgreSQL when a
//! database URL is configured (several instances may then share it).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use strongroom_store::{PgOptions, PgStore, SqliteStore, Store};

use crate::config::Config;
use crate::datadir::DataDir;

/// Opens (and migrates) the configured store.
pub async fn open_store(dir: &DataDir, config: &Config) -> Result<Arc<dyn Store>> {
    match pg_options(config) {
        Some(options) => {
            let store = PgStore::open(&options)
                .await
                .context("opening the PostgreSQL database")?;
            Ok(Arc::new(store))
        }
        None => {
            // The file `migrate` left behind is not the live store: serving or administering it
            // would take writes that never reach PostgreSQL.
            crate::backup::refuse_moved_store(dir.root(), config)?;
            let store = SqliteStore::open(
                &dir.database(),
                Duration::from_millis(config.store_busy_timeout_ms),
            )
            .await
            .context("opening the database")?;
            Ok(Arc::new(store))
        }
    }
}

/// The PostgreSQL connection settings, when the deployment uses PostgreSQL.
pub fn pg_options(config: &Config) -> Option<PgOptions> {
    let url = config.database_url.as_ref()?;
    Some(PgOptions {
        url: url.expose().to_owned(),
        schema: config.database_schema.clone(),
        max_connections: config.database_max_connections,
        acquire_timeout: Duration::from_millis(config.store_busy_timeout_ms),
        statement_timeout: Duration::from_millis(config.database_statement_timeout_ms),
    })
}
