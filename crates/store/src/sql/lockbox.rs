//! Customer lockbox: access requests and grants, the notification outbox, webhook secrets.

use super::{Conn, Db};

use crate::Mutation;
use crate::StoreError;
use crate::rows::*;

pub(super) async fn access_request(
    conn: &mut Conn,
    scope: &TenantScope,
    id: &str,
) -> Result<Option<AccessRequestRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM access_requests WHERE tenant_id = $1 AND id = $2")
            .bind(scope.id())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub(super) async fn access_requests(
    conn: &mut Conn,
    scope: &TenantScope,
    filter: &AccessRequestFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<AccessRequestRow>, StoreError> {
    // Newest first: ids are time-ordered. Expiry is derived from the times, never stored.
    Ok(sqlx::query_as(
        "SELECT * FROM access_requests WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) \
         AND ($3 IS NULL OR (CASE \
           WHEN state = 'pending' AND request_expires_at <= $5 THEN 'expired' \
           WHEN state = 'approved' AND ends_at <= $5 THEN 'expired' \
           ELSE state END) = $3) \
         AND ($6 IS NULL OR requester_id = $6 OR ($7 AND break_glass)) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(scope.id())
    .bind(after)
    .bind(filter.state.as_deref())
    .bind(i64::from(limit))
    .bind(filter.now)
    .bind(filter.requester_id.as_deref())
    .bind(filter.or_break_glass)
    .fetch_all(&mut *conn)
    .await?)
}

/// Who holds a pending request or a grant active at `now` on the case.
pub(super) async fn case_open_requesters(
    conn: &mut Conn,
    scope: &TenantScope,
    case_id: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT requester_id FROM access_requests WHERE tenant_id = $1 AND case_id = $2 \
         AND ((state = 'pending' AND request_expires_at > $3) \
           OR (state = 'approved' AND ends_at > $3)) ORDER BY requester_id",
    )
    .bind(scope.id())
    .bind(case_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(requester,)| requester).collect())
}

pub(super) async fn open_requests_of_user(
    conn: &mut Conn,
    user_id: &str,
    now: i64,
) -> Result<Vec<AccessRequestRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM access_requests WHERE requester_id = $1 AND \
         ((state = 'pending' AND request_expires_at > $2) OR (state = 'approved' AND ends_at > $2))",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn grants_ending(
    conn: &mut Conn,
    now: i64,
    until: i64,
) -> Result<Vec<AccessRequestRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM access_requests WHERE state = 'approved' AND ends_at > $1 AND ends_at <= $2 \
         AND expiry_notified_at IS NULL LIMIT 500",
    )
    .bind(now)
    .bind(until)
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn notifications(
    conn: &mut Conn,
    scope: &TenantScope,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<NotificationRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM notifications WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(scope.id())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn due_notifications(
    conn: &mut Conn,
    now: i64,
    limit: u32,
) -> Result<Vec<NotificationRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM notifications WHERE delivery = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn webhook_secret(
    conn: &mut Conn,
    scope: &TenantScope,
) -> Result<Option<WebhookSecretRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM webhook_secrets WHERE tenant_id = $1")
            .bind(scope.id())
            .fetch_optional(&mut *conn)
            .await?,
    )
}

fn changed(done: <Db as sqlx::Database>::QueryResult, why: &'static str) -> Result<(), StoreError> {
    if done.rows_affected() == 0 {
        Err(StoreError::Conflict(why))
    } else {
        Ok(())
    }
}

/// Applies a lockbox mutation (the write path routes them here).
pub(super) async fn apply(conn: &mut Conn, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::RequireNoOpenRequest { scope, case_id, at } => {
            if case_open_requesters(conn, scope, case_id, *at)
                .await?
                .is_empty()
            {
                Ok(())
            } else {
                Err(StoreError::Conflict(
                    "the case's operator access changed meanwhile",
                ))
            }
        }
        Mutation::InsertAccessRequest {
            row: r,
            access_epoch,
        } => {
            super::write::require_access_unchanged(
                conn,
                &r.requester_id,
                *access_epoch,
                "the requester's access changed while the request was made",
            )
            .await?;
            // Only for a case that still exists: a request committed after its case was purged
            // would keep its sealed justification past the tenant's retention.
            let done = sqlx::query(
                "INSERT INTO access_requests (id, tenant_id, case_id, requester_id, requester_roles, \
                 purpose, justification, field_classes, duration_minutes, break_glass, state, \
                 created_at, request_expires_at, decided_by, decided_at, decision_comment, starts_at, \
                 ends_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18 WHERE EXISTS (SELECT 1 FROM cases WHERE tenant_id = $2 AND id = $3)",
            )
            .bind(&r.id)
            .bind(&r.tenant_id)
            .bind(&r.case_id)
            .bind(&r.requester_id)
            .bind(&r.requester_roles)
            .bind(&r.purpose)
            .bind(&r.justification)
            .bind(&r.field_classes)
            .bind(r.duration_minutes)
            .bind(r.break_glass)
            .bind(&r.state)
            .bind(r.created_at)
            .bind(r.request_expires_at)
            .bind(&r.decided_by)
            .bind(r.decided_at)
            .bind(&r.decision_comment)
            .bind(r.starts_at)
            .bind(r.ends_at)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the case is gone"));
            }
            Ok(())
        }
        Mutation::DecideAccessRequest {
            scope,
            id,
            approve,
            by,
            at,
            comment,
            ends_at,
        } => {
            let done = sqlx::query(
                "UPDATE access_requests SET state = $3, decided_by = $4, decided_at = $5, \
                 decision_comment = $6, starts_at = CASE WHEN $3 = 'approved' THEN $5 END, \
                 ends_at = $7, \
                 duration_minutes = CASE WHEN $7 IS NULL THEN duration_minutes \
                     ELSE ($7 - $5) / 60000 END \
                 WHERE tenant_id = $1 AND id = $2 AND state = 'pending' AND request_expires_at > $5 \
                 AND requester_id <> $4",
            )
            .bind(scope.id())
            .bind(id)
            .bind(if *approve { "approved" } else { "denied" })
            .bind(by)
            .bind(at)
            .bind(comment)
            .bind(ends_at)
            .execute(conn)
            .await?;
            changed(done, "the request is no longer pending")
        }
        Mutation::RevokeAccessRequest { scope, id, by, at } => {
            let done = sqlx::query(
                "UPDATE access_requests SET state = 'revoked', revoked_by = $3, revoked_at = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND \
                 ((state = 'pending' AND request_expires_at > $4) OR (state = 'approved' AND ends_at > $4))",
            )
            .bind(scope.id())
            .bind(id)
            .bind(by)
            .bind(at)
            .execute(conn)
            .await?;
            changed(done, "the request is neither pending nor an active grant")
        }
        Mutation::ReviewBreakGlass { scope, id, by, at } => {
            let done = sqlx::query(
                "UPDATE access_requests SET reviewed_by = $3, reviewed_at = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND break_glass AND reviewed_at IS NULL \
                 AND requester_id <> $3",
            )
            .bind(scope.id())
            .bind(id)
            .bind(by)
            .bind(at)
            .execute(conn)
            .await?;
            changed(done, "already reviewed")
        }
        Mutation::RevokeUserGrants { user_id, at } => {
            sqlx::query(
                "UPDATE access_requests SET state = 'revoked', revoked_at = $2 \
                 WHERE requester_id = $1 AND \
                 ((state = 'pending' AND request_expires_at > $2) OR (state = 'approved' AND ends_at > $2))",
            )
            .bind(user_id)
            .bind(at)
            .execute(conn)
            .await?;
            Ok(())
        }
        Mutation::MarkExpiryNotified { id, at } => {
            let done = sqlx::query(
                "UPDATE access_requests SET expiry_notified_at = $2 \
                 WHERE id = $1 AND expiry_notified_at IS NULL",
            )
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?;
            changed(done, "already notified")
        }
        Mutation::InsertNotification(n) => {
            sqlx::query(
                "INSERT INTO notifications (id, tenant_id, kind, access_request_id, body, created_at, \
                 delivery, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&n.id)
            .bind(&n.tenant_id)
            .bind(&n.kind)
            .bind(&n.access_request_id)
            .bind(&n.body)
            .bind(n.created_at)
            .bind(&n.delivery)
            .bind(n.attempts)
            .bind(n.next_attempt_at)
            .execute(conn)
            .await?;
            Ok(())
        }
        Mutation::RecordDeliveryAttempt {
            id,
            delivered,
            status,
            at,
            next_attempt_at,
        } => {
            let delivery = match (delivered, next_attempt_at) {
                (true, _) => "delivered",
                (false, Some(_)) => "pending",
                (false, None) => "failed",
            };
            sqlx::query(
                "UPDATE notifications SET delivery = $2, attempts = attempts + 1, last_attempt_at = $3, \
                 last_status = $4, next_attempt_at = $5, \
                 delivered_at = CASE WHEN $2 = 'delivered' THEN $3 END WHERE id = $1",
            )
            .bind(id)
            .bind(delivery)
            .bind(at)
            .bind(status)
            .bind(next_attempt_at)
            .execute(conn)
            .await?;
            Ok(())
        }
        Mutation::PostponeDelivery { id, until } => {
            sqlx::query(
                "UPDATE notifications SET next_attempt_at = $2 \
                 WHERE id = $1 AND delivery = 'pending'",
            )
            .bind(id)
            .bind(until)
            .execute(conn)
            .await?;
            Ok(())
        }
        Mutation::SetWebhookSecret { row: w, replaces } => {
            let done = match replaces {
                None => {
                    sqlx::query(
                        "INSERT INTO webhook_secrets (tenant_id, secret, created_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO NOTHING",
                    )
                    .bind(&w.tenant_id)
                    .bind(&w.secret)
                    .bind(w.created_at)
                    .execute(conn)
                    .await?
                }
                Some(read) => {
                    sqlx::query(
                        "UPDATE webhook_secrets SET secret = $2, created_at = $3 \
                         WHERE tenant_id = $1 AND secret = $4",
                    )
                    .bind(&w.tenant_id)
                    .bind(&w.secret)
                    .bind(w.created_at)
                    .bind(read)
                    .execute(conn)
                    .await?
                }
            };
            changed(done, "the webhook secret changed meanwhile")
        }
        _ => Err(StoreError::Corrupt("not a lockbox mutation".into())),
    }
}
