//! Incidents the breach watch raised from the audit log.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use strongroom_core::Vault;
use strongroom_core::model::{Page, PageRequest};
use strongroom_core::service_types::Incident;

use crate::error::ApiResult;
use crate::extract::{Caller, Json, Path, Query, page_request};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    state: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl IncidentQuery {
    fn page(&self) -> ApiResult<PageRequest> {
        page_request(self.limit, self.cursor.clone())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseIncident {
    resolution: String,
}

pub async fn list(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<axum::Json<Page<Incident>>> {
    let page = q.page()?;
    Ok(axum::Json(
        vault
            .incidents(&c.principal, &c.ctx, q.state.as_deref(), &page)
            .await?,
    ))
}

pub async fn for_tenant(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<axum::Json<Page<Incident>>> {
    let page = q.page()?;
    Ok(axum::Json(
        vault
            .tenant_incidents(&c.principal, &c.ctx, &tenant_id, q.state.as_deref(), &page)
            .await?,
    ))
}

pub async fn close(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(incident_id): Path<String>,
    Json(body): Json<CloseIncident>,
) -> ApiResult<axum::Json<Incident>> {
    Ok(axum::Json(
        vault
            .close_incident(&c.principal, &c.ctx, &incident_id, &body.resolution)
            .await?,
    ))
}
