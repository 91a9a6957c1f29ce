//! Platform-wide reads for access governance: accounts, assignments, warnings and reviews.

use super::Conn;

use crate::StoreError;
use crate::rows::*;

pub(super) async fn users(
    conn: &mut Conn,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<UserRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?,
    )
}

pub(super) async fn active_staff(
    conn: &mut Conn,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<StaffRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, username, display_name, roles, status FROM users \
         WHERE tenant_id IS NULL AND status = 'active' AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn assignments_of(
    conn: &mut Conn,
    user_id: &str,
) -> Result<Vec<AssignmentRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id AS case_id FROM cases WHERE assignee_id = $1 ORDER BY tenant_id, id",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn assignment_counts(conn: &mut Conn) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT assignee_id, COUNT(*) FROM cases WHERE assignee_id IS NOT NULL GROUP BY assignee_id",
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn open_case_counts(
    conn: &mut Conn,
    user_ids: &[String],
) -> Result<Vec<(String, i64)>, StoreError> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=user_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT assignee_id, COUNT(*) FROM cases WHERE assignee_id IN ({}) \
         AND status IN ('open', 'pending') GROUP BY assignee_id",
        placeholders.join(", ")
    );
    // Only numbered placeholders are spliced in; the ids are bound.
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for id in user_ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

pub(super) async fn inactivity_warnings(
    conn: &mut Conn,
) -> Result<Vec<InactivityWarningRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM inactivity_warnings")
        .fetch_all(&mut *conn)
        .await?)
}

pub(super) async fn active_grant_counts(
    conn: &mut Conn,
    now: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT requester_id, COUNT(*) FROM access_requests \
         WHERE state = 'approved' AND starts_at <= $1 AND ends_at > $1 GROUP BY requester_id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn api_key_activity(
    conn: &mut Conn,
    now: i64,
) -> Result<Vec<ApiKeyActivityRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT user_id, \
         CAST(SUM(CASE WHEN revoked_at IS NULL AND expires_at > $1 THEN 1 ELSE 0 END) AS BIGINT) AS live_keys, \
         MAX(last_used_at) AS last_used_at FROM api_keys GROUP BY user_id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn mfa_enrolled_users(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT user_id FROM user_totp WHERE confirmed_at IS NOT NULL")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub(super) async fn access_reviews(
    conn: &mut Conn,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<AccessReviewRow>, StoreError> {
    // Newest first: ids are time-ordered.
    Ok(sqlx::query_as(
        "SELECT * FROM access_reviews WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn access_review(
    conn: &mut Conn,
    id: &str,
) -> Result<Option<AccessReviewRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM access_reviews WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

pub(super) async fn access_review_lines(
    conn: &mut Conn,
    review_id: &str,
) -> Result<Vec<AccessReviewLineRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM access_review_lines WHERE review_id = $1 ORDER BY username")
            .bind(review_id)
            .fetch_all(&mut *conn)
            .await?,
    )
}
