//! Incidents the breach watch raised, and how far it has read the log.

use super::Conn;
use crate::rows::{IncidentRow, TenantScope};
use crate::{Mutation, StoreError};

pub(super) async fn apply(conn: &mut Conn, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::OpenIncident(i) => {
            sqlx::query(
                "INSERT INTO incidents (id, kind, tenant_id, subject_id, first_index, last_index, \
                 events, opened_at, updated_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 'open')",
            )
            .bind(&i.id)
            .bind(&i.kind)
            .bind(&i.tenant_id)
            .bind(&i.subject_id)
            .bind(i.first_index)
            .bind(i.last_index)
            .bind(i.events)
            .bind(i.opened_at)
            .execute(&mut *conn)
            .await?;
        }
        Mutation::ExtendIncident {
            id,
            last_index,
            events,
            at,
        } => {
            // A closed incident stays as it was closed; the watch opens a new one instead.
            let done = sqlx::query(
                "UPDATE incidents SET last_index = $2, events = events + $3, updated_at = $4 \
                 WHERE id = $1 AND state = 'open'",
            )
            .bind(id)
            .bind(last_index)
            .bind(events)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the incident was closed meanwhile"));
            }
        }
        Mutation::CloseIncident {
            id,
            closed_by,
            resolution,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE incidents SET state = 'closed', closed_by = $2, resolution = $3, \
                 closed_at = $4, updated_at = $4 WHERE id = $1 AND state = 'open' \
                 AND (subject_id IS NULL OR subject_id <> $2)",
            )
            .bind(id)
            .bind(closed_by)
            .bind(resolution)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(
                    "the incident is already closed, or is about its closer",
                ));
            }
        }
        Mutation::AdvanceWatch { name, from, to } => {
            // Compare and set: a pass that read from a place another pass has moved on from
            // changes nothing.
            let done = match from {
                None => {
                    sqlx::query(
                        "INSERT INTO watch_progress (name, next_index) VALUES ($1, $2) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .bind(to)
                    .execute(&mut *conn)
                    .await?
                }
                Some(from) => sqlx::query(
                    "UPDATE watch_progress SET next_index = $3 WHERE name = $1 AND next_index = $2",
                )
                .bind(name)
                .bind(from)
                .bind(to)
                .execute(&mut *conn)
                .await?,
            };
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the watch moved on meanwhile"));
            }
        }
        _ => return Err(StoreError::Unavailable("not an incident mutation".into())),
    }
    Ok(())
}

/// Newest first (ids are time-ordered); `scope` keeps a tenant to its own.
pub(super) async fn incidents(
    conn: &mut Conn,
    scope: Option<&TenantScope>,
    state: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<IncidentRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM incidents WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR state = $2) \
         AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
    )
    .bind(scope.map(TenantScope::id))
    .bind(state)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn incident(conn: &mut Conn, id: &str) -> Result<Option<IncidentRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM incidents WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

pub(super) async fn open_incidents(conn: &mut Conn) -> Result<Vec<IncidentRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM incidents WHERE state = 'open' ORDER BY id")
            .fetch_all(&mut *conn)
            .await?,
    )
}

pub(super) async fn watch_progress(conn: &mut Conn, name: &str) -> Result<Option<i64>, StoreError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT next_index FROM watch_progress WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(n,)| n))
}
