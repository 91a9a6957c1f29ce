use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use strongroom_core::Vault;
use strongroom_core::model::keys::TenantKeyStatus;
use strongroom_core::model::{
    Assignee, InstructionsPatch, NewTenant, NewUser, Page, Suspension, Tenant, User, UserPatch,
};
use strongroom_core::service_types::DeletionCertificate;

use crate::error::ApiResult;
use crate::extract::{Caller, Json, PageQuery, Path, Query};

pub async fn create_tenant(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Json(input): Json<NewTenant>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(vault.create_tenant(&c.principal, &c.ctx, input).await?),
    ))
}

pub async fn tenant(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<Tenant>> {
    Ok(axum::Json(
        vault.tenant(&c.principal, &c.ctx, &tenant_id).await?,
    ))
}

/// The body of `DELETE /v1/tenants/{id}`: a reference to the tenant's written request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionRequest {
    request_reference: String,
}

pub async fn delete_tenant(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Json(input): Json<DeletionRequest>,
) -> ApiResult<axum::Json<DeletionCertificate>> {
    Ok(axum::Json(
        vault
            .delete_tenant(&c.principal, &c.ctx, &tenant_id, &input.request_reference)
            .await?,
    ))
}

pub async fn update_instructions(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Json(patch): Json<InstructionsPatch>,
) -> ApiResult<axum::Json<Tenant>> {
    Ok(axum::Json(
        vault
            .update_instructions(&c.principal, &c.ctx, &tenant_id, patch)
            .await?,
    ))
}

/// The active staff who can be assigned cases, for whoever assigns them.
pub async fn assignees(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<Assignee>>> {
    Ok(axum::Json(
        vault.assignees(&c.principal, &c.ctx, &q.page()?).await?,
    ))
}

pub async fn create_user(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Json(input): Json<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(vault.create_user(&c.principal, &c.ctx, input).await?),
    ))
}

pub async fn user(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        vault.user(&c.principal, &c.ctx, &user_id).await?,
    ))
}

pub async fn update_user(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(user_id): Path<String>,
    Json(patch): Json<UserPatch>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        vault
            .update_user_roles(&c.principal, &c.ctx, &user_id, patch)
            .await?,
    ))
}

pub async fn suspend(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(user_id): Path<String>,
    Json(suspension): Json<Suspension>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        vault
            .suspend_user(&c.principal, &c.ctx, &user_id, suspension)
            .await?,
    ))
}

pub async fn reactivate(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        vault
            .reactivate_user(&c.principal, &c.ctx, &user_id)
            .await?,
    ))
}

/// `POST /v1/users/{id}/mfa/reset`: the user's second factor removed (a lost device).
pub async fn reset_second_factor(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        vault
            .reset_second_factor(&c.principal, &c.ctx, &user_id)
            .await?,
    ))
}

/// `POST /v1/tenants/{id}/keys/rotate`: a new key version for all new writes; the server's job
/// re-encrypts the rest in the background.
pub async fn rotate_keys(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<TenantKeyStatus>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            vault
                .rotate_tenant_keys(&c.principal, &c.ctx, &tenant_id)
                .await?,
        ),
    ))
}

pub async fn keys(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<TenantKeyStatus>> {
    Ok(axum::Json(
        vault
            .tenant_key_status(&c.principal, &c.ctx, &tenant_id)
            .await?,
    ))
}
