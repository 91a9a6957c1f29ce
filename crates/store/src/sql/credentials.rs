//! Reads of sessions and API keys beyond the single-token lookup.

use super::Backend;
use crate::StoreError;
use crate::rows::{ApiKeyEntry, ApiKeyRow, SessionRow};

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
