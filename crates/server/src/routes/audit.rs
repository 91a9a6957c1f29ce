//! The audit log over HTTP: checkpoint and verifier key are public; proofs reveal only hashes and are
//! public too, so monitors need no credentials; entries need the auditor's or security officer's role.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use strongroom_core::audit::{ConsistencyProof, InclusionProof};
use strongroom_core::model::Page;
use strongroom_core::{ErrorCode, Vault};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query};

pub async fn checkpoint(State(vault): State<Arc<Vault>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        vault.audit().checkpoint().to_string(),
    )
}

pub async fn verifier_key(State(vault): State<Arc<Vault>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        vault.audit().verifier_key().to_owned(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    start: Option<u64>,
    limit: Option<u32>,
    /// A page's `next_cursor`, which is the index to start from: the list convention's name for
    /// `start`.
    cursor: Option<u64>,
}

pub async fn entries(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<EntriesQuery>,
) -> ApiResult<axum::Json<Page<strongroom_core::service_types::LoggedEntry>>> {
    let limit = crate::extract::limit(q.limit)?;
    let start = match (q.start, q.cursor) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "give start or cursor, not both",
            ));
        }
        (start, cursor) => start.or(cursor).unwrap_or(0),
    };
    Ok(axum::Json(
        vault
            .audit_entries(&c.principal, &c.ctx, start, limit)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

pub async fn inclusion(
    State(vault): State<Arc<Vault>>,
    Query(q): Query<InclusionQuery>,
) -> ApiResult<axum::Json<InclusionProof>> {
    Ok(axum::Json(
        vault.audit().inclusion_proof(q.index, q.tree_size).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

pub async fn consistency(
    State(vault): State<Arc<Vault>>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<axum::Json<ConsistencyProof>> {
    Ok(axum::Json(
        vault.audit().consistency_proof(q.from, q.to).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogQuery {
    cursor: Option<u64>,
    limit: Option<u32>,
}

pub async fn tenant_access_log(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<AccessLogQuery>,
) -> ApiResult<axum::Json<Page<strongroom_core::service_types::LoggedEntry>>> {
    let limit = crate::extract::limit(q.limit)?;
    Ok(axum::Json(
        vault
            .tenant_access_log(&c.principal, &c.ctx, &tenant_id, q.cursor, limit)
            .await?,
    ))
}
