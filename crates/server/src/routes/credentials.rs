//! Sessions and API keys.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use strongroom_core::Vault;
use strongroom_core::model::{ApiKey, CreatedApiKey, NewApiKey, Page, Revoked, SessionInfo};

use crate::error::ApiResult;
use crate::extract::{Caller, Json, PageQuery, Path, Query};

pub async fn my_sessions(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<SessionInfo>>> {
    Ok(axum::Json(
        vault.my_sessions(&c.principal, &c.ctx, &q.page()?).await?,
    ))
}

pub async fn revoke_my_session(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    vault
        .revoke_my_session(&c.principal, &c.ctx, &session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeAllQuery {
    #[serde(default)]
    include_current: bool,
}

pub async fn revoke_my_sessions(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<RevokeAllQuery>,
) -> ApiResult<axum::Json<Revoked>> {
    Ok(axum::Json(
        vault
            .revoke_my_sessions(&c.principal, &c.ctx, q.include_current)
            .await?,
    ))
}

pub async fn revoke_user_sessions(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<Revoked>> {
    Ok(axum::Json(
        vault
            .revoke_user_sessions(&c.principal, &c.ctx, &user_id)
            .await?,
    ))
}

pub async fn create_api_key(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Json(input): Json<NewApiKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(vault.create_api_key(&c.principal, &c.ctx, input).await?),
    ))
}

pub async fn api_keys(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<ApiKey>>> {
    let page = q.page()?;
    Ok(axum::Json(
        vault.api_keys(&c.principal, &c.ctx, &page).await?,
    ))
}

pub async fn revoke_api_key(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<StatusCode> {
    vault.revoke_api_key(&c.principal, &c.ctx, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
