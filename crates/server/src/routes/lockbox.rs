//! Customer lockbox: operator access requests, grants, notifications and the webhook secret.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use strongroom_core::Vault;
use strongroom_core::model::Page;
use strongroom_core::model::lockbox::{
    AccessDecision, AccessRequestView, NewAccessRequest, Notification, WebhookSecret,
};

use crate::error::ApiResult;
use crate::extract::{Caller, Json, PageQuery, Path, Query, page_request};

type Json200<T> = ApiResult<axum::Json<T>>;

pub async fn create(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Json(input): Json<NewAccessRequest>,
) -> ApiResult<(StatusCode, axum::Json<AccessRequestView>)> {
    let view = vault
        .request_access(&c.principal, &c.ctx, &tenant_id, input)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Json200<Page<AccessRequestView>> {
    let page = page_request(q.limit, q.cursor)?;
    Ok(axum::Json(
        vault
            .access_requests(
                &c.principal,
                &c.ctx,
                &tenant_id,
                q.state.as_deref(),
                false,
                &page,
            )
            .await?,
    ))
}

pub async fn grants(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Json200<Page<AccessRequestView>> {
    Ok(axum::Json(
        vault
            .access_requests(&c.principal, &c.ctx, &tenant_id, None, true, &q.page()?)
            .await?,
    ))
}

pub async fn approve(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, request_id)): Path<(String, String)>,
    Json(input): Json<AccessDecision>,
) -> Json200<AccessRequestView> {
    Ok(axum::Json(
        vault
            .decide_access(&c.principal, &c.ctx, &tenant_id, &request_id, true, input)
            .await?,
    ))
}

pub async fn deny(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, request_id)): Path<(String, String)>,
    Json(input): Json<AccessDecision>,
) -> Json200<AccessRequestView> {
    Ok(axum::Json(
        vault
            .decide_access(&c.principal, &c.ctx, &tenant_id, &request_id, false, input)
            .await?,
    ))
}

pub async fn revoke(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, request_id)): Path<(String, String)>,
) -> Json200<AccessRequestView> {
    Ok(axum::Json(
        vault
            .revoke_access(&c.principal, &c.ctx, &tenant_id, &request_id)
            .await?,
    ))
}

pub async fn review(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, request_id)): Path<(String, String)>,
) -> Json200<AccessRequestView> {
    Ok(axum::Json(
        vault
            .review_break_glass(&c.principal, &c.ctx, &tenant_id, &request_id)
            .await?,
    ))
}

pub async fn notifications(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Json200<Page<Notification>> {
    Ok(axum::Json(
        vault
            .notifications(&c.principal, &c.ctx, &tenant_id, &q.page()?)
            .await?,
    ))
}

pub async fn webhook_secret(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
) -> Json200<WebhookSecret> {
    Ok(axum::Json(
        vault
            .webhook_secret(&c.principal, &c.ctx, &tenant_id, false)
            .await?,
    ))
}

pub async fn rotate_webhook_secret(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
) -> Json200<WebhookSecret> {
    Ok(axum::Json(
        vault
            .webhook_secret(&c.principal, &c.ctx, &tenant_id, true)
            .await?,
    ))
}
