//! The lookups on every request's path (`point_reads`), stepped on the request's own thread.
//!
//! sqlx runs each SQLite connection on a thread of its own, so a statement costs two thread
//! switches, more than an indexed lookup of a few pages takes. In WAL mode a reader does not
//! wait for the writer (only while the WAL index is rebuilt or cleaned up, under the busy
//! timeout), so these statements run where the request runs, on read-only connections kept here;
//! everything else still goes through sqlx's pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, named_params};

use crate::StoreError;
use crate::point_reads::{ACTIVE_GRANTS, CONTACT_WITH_REACH, USER_TOTP};
use crate::rows::{ActiveGrantRow, ContactRow, TenantScope, TotpRow};

/// Connections kept between reads: one per thread that reads at once is enough.
const KEEP_IDLE: usize = 8;

/// Same page cache as the pooled readers (KiB when negative).
const CACHE_KIB: i64 = -32768;

pub(super) struct PointReader {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl PointReader {
    pub(super) fn new(path: &Path, busy_timeout: Duration) -> Self {
        Self {
            path: path.to_path_buf(),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn contact_with_reach(
        &self,
        scope: &TenantScope,
        id: &str,
        assignee_id: &str,
    ) -> Result<Option<(ContactRow, bool)>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(CONTACT_WITH_REACH)?
                .query_row(
                    named_params! { "$1": scope.id(), "$2": id, "$3": assignee_id },
                    |row| Ok((contact(row)?, row.get(10)?)),
                )
                .optional()
        })
    }

    pub(super) fn active_grants(
        &self,
        scope: &TenantScope,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<ActiveGrantRow>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(ACTIVE_GRANTS)?
                .query_map(
                    named_params! { "$1": scope.id(), "$2": user_id, "$3": now },
                    |row| {
                        Ok(ActiveGrantRow {
                            id: row.get(0)?,
                            case_id: row.get(1)?,
                            contact_id: row.get(2)?,
                            purpose: row.get(3)?,
                            field_classes: row.get(4)?,
                            ends_at: row.get(5)?,
                        })
                    },
                )?
                .collect()
        })
    }

    pub(super) fn user_totp(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(USER_TOTP)?
                .query_row(named_params! { "$1": user_id }, |row| {
                    Ok(TotpRow {
                        user_id: row.get(0)?,
                        secret: row.get(1)?,
                        confirmed_at: row.get(2)?,
                        last_step: row.get(3)?,
                        created_at: row.get(4)?,
                    })
                })
                .optional()
        })
    }

    /// Runs `read` on a kept connection (or a new one) and keeps the connection afterwards.
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let kept = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match kept {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn).map_err(read_error);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP_IDLE
        {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(super::unavailable)?;
        conn.busy_timeout(self.busy_timeout)
            .map_err(super::unavailable)?;
        conn.pragma_update(None, "cache_size", CACHE_KIB)
            .map_err(super::unavailable)?;
        Ok(conn)
    }
}

/// Columns 0..=9 of `point_reads::CONTACT_WITH_REACH`.
fn contact(row: &Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        phone: row.get(4)?,
        address: row.get(5)?,
        notes: row.get(6)?,
        email_index: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

/// A value of an unexpected type is a corrupt row (named by column, never by value); anything
/// else is the database failing.
fn read_error(err: rusqlite::Error) -> StoreError {
    match err {
        rusqlite::Error::InvalidColumnType(index, ..)
        | rusqlite::Error::FromSqlConversionFailure(index, ..)
        | rusqlite::Error::IntegralValueOutOfRange(index, _) => {
            StoreError::Corrupt(format!("column {index}"))
        }
        other => super::unavailable(other),
    }
}
