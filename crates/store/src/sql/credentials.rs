//! Sessions and API keys: their writes on the write path, and the reads beyond the single-token
//! lookup.

use super::{Backend, Conn};
use crate::rows::{ApiKeyEntry, ApiKeyRow, SessionRow};
use crate::{Mutation, StoreError};

/// Applies a session or API-key mutation (the write path routes them here).
pub(super) async fn apply(conn: &mut Conn, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::InsertSession {
            row: s,
            verified_password_hash,
            verified_roles,
        } => {
            let done = sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, revoked_at, \
                 enrolment_only) SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM users \
                 WHERE id = $2 AND status = 'active' AND password_hash = $8 AND roles = $9)",
            )
            .bind(&s.token_hash)
            .bind(&s.user_id)
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(s.expires_at)
            .bind(s.revoked_at)
            .bind(s.enrolment_only)
            .bind(verified_password_hash)
            .bind(verified_roles)
            .execute(conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(
                    "the account's password, status or roles changed during the login",
                ));
            }
        }
        Mutation::TouchSession { token_hash, at } => {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = CASE WHEN last_seen_at > $2 THEN last_seen_at ELSE $2 END \
                 WHERE token_hash = $1",
            )
            .bind(token_hash)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::RevokeSession { token_hash, at } => {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::RevokeUserSessions { user_id, at } => {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            // A request already past its checks on one of those sessions (a file being scanned,
            // an export being built) commits nothing after them.
            sqlx::query("UPDATE users SET access_epoch = access_epoch + 1 WHERE id = $1")
                .bind(user_id)
                .execute(conn)
                .await?;
        }
        Mutation::RevokeOtherSessions { user_id, keep, at } => {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL \
                 AND token_hash <> $3",
            )
            .bind(user_id)
            .bind(at)
            .bind(keep)
            .execute(conn)
            .await?;
        }
        Mutation::InsertApiKey(k) => {
            sqlx::query(
                "INSERT INTO api_keys (id, key_hash, user_id, name, created_by, created_at, expires_at, \
                 last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&k.id)
            .bind(&k.key_hash)
            .bind(&k.user_id)
            .bind(&k.name)
            .bind(&k.created_by)
            .bind(k.created_at)
            .bind(k.expires_at)
            .bind(k.last_used_at)
            .bind(k.revoked_at)
            .execute(conn)
            .await?;
        }
        Mutation::TouchApiKey { id, at } => {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = CASE WHEN last_used_at > $2 THEN last_used_at ELSE $2 END \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::RevokeApiKey { id, at } => {
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(at)
                .execute(conn)
                .await?;
        }
        Mutation::RevokeAllCredentials { at } => {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL")
                .bind(at)
                .execute(&mut *conn)
                .await?;
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE revoked_at IS NULL")
                .bind(at)
                .execute(&mut *conn)
                .await?;
            // Operator access too: a grant a tenant revoked after the backup must not open its
            // data again, nor a request it denied since be approvable.
            sqlx::query(
                "UPDATE access_requests SET state = 'revoked', revoked_at = $1 \
                 WHERE (state = 'pending' AND request_expires_at > $1) \
                 OR (state = 'approved' AND ends_at > $1)",
            )
            .bind(at)
            .execute(conn)
            .await?;
        }
        Mutation::RevokeUserApiKeys { user_id, at } => {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $2 \
                 WHERE (user_id = $1 OR created_by = $1) AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(at)
            .execute(conn)
            .await?;
        }
        _ => return Err(StoreError::Corrupt("not a credential mutation".into())),
    }
    Ok(())
}

impl Backend {
    pub(super) async fn user_sessions_impl(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at, token_hash",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&mut *self.platform_reader().await?)
        .await?)
    }

    pub(super) async fn api_key_by_hash_impl(
        &self,
        key_hash: &[u8],
    ) -> Result<Option<ApiKeyRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM api_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&mut *self.platform_reader().await?)
            .await?)
    }

    pub(super) async fn api_key_impl(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.platform_reader().await?)
            .await?)
    }

    pub(super) async fn api_keys_impl(
        &self,
        tenant_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ApiKeyEntry>, StoreError> {
        // `$1 IS NULL` selects every tenant (and staff principals); otherwise one tenant only.
        Ok(sqlx::query_as(
            "SELECT k.*, u.roles, u.tenant_id FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE ($1 IS NULL OR u.tenant_id = $1) AND k.id > $2 ORDER BY k.id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.platform_reader().await?)
        .await?)
    }
}
