//! Exports: limited encrypted exports and the tenant archive. Content leaves only as an age file.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strongroom_core::Vault;
use strongroom_core::model::Page;
use strongroom_core::model::exports::{ExportView, NewExport};

use crate::error::ApiResult;
use crate::extract::{Caller, Json, PageQuery, Path, Query};

pub async fn create(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Json(input): Json<NewExport>,
) -> ApiResult<(StatusCode, axum::Json<ExportView>)> {
    let view = vault
        .create_export(&c.principal, &c.ctx, &tenant_id, input)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

pub async fn list(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<ExportView>>> {
    Ok(axum::Json(
        vault
            .exports(&c.principal, &c.ctx, &tenant_id, &q.page()?)
            .await?,
    ))
}

pub async fn get(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, export_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<ExportView>> {
    Ok(axum::Json(
        vault
            .export(&c.principal, &c.ctx, &tenant_id, &export_id)
            .await?,
    ))
}

pub async fn approve(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, export_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<ExportView>> {
    Ok(axum::Json(
        vault
            .approve_export(&c.principal, &c.ctx, &tenant_id, &export_id)
            .await?,
    ))
}

/// The age file (`application/octet-stream`); the body is ciphertext only.
pub async fn download(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, export_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let bytes = vault
        .download_export(&c.principal, &c.ctx, &tenant_id, &export_id)
        .await?;
    let disposition = format!("attachment; filename=\"export-{export_id}.age\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
