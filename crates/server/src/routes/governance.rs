//! Access governance: the inactivity sweep and access reviews.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strongroom_core::model::Page;
use strongroom_core::model::governance::{
    AccessReview, AccessReviewLine, AccessReviewSummary, ReviewDecision, SweepReport, SweepRequest,
};
use strongroom_core::{ErrorCode, Vault};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Json, PageQuery, Path, Query};

pub async fn sweep_inactive(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Json(request): Json<SweepRequest>,
) -> ApiResult<axum::Json<SweepReport>> {
    Ok(axum::Json(
        vault.sweep_inactive(&c.principal, &c.ctx, request).await?,
    ))
}

pub async fn create_review(
    State(vault): State<Arc<Vault>>,
    c: Caller,
) -> ApiResult<(StatusCode, axum::Json<AccessReview>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(vault.create_access_review(&c.principal, &c.ctx).await?),
    ))
}

pub async fn reviews(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<AccessReviewSummary>>> {
    Ok(axum::Json(
        vault
            .access_reviews(&c.principal, &c.ctx, q.page()?)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    format: Option<String>,
}

/// The review as JSON, or with `?format=csv` as a CSV download.
pub async fn review(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(review_id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "format is json or csv",
            ));
        }
    };
    let review = vault
        .access_review(&c.principal, &c.ctx, &review_id)
        .await?;
    if !csv {
        return Ok(axum::Json(review).into_response());
    }
    let disposition = format!("attachment; filename=\"access-review-{}.csv\"", review.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        review.to_csv(),
    )
        .into_response())
}

pub async fn decide(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(review_id): Path<String>,
    Json(decision): Json<ReviewDecision>,
) -> ApiResult<axum::Json<AccessReviewLine>> {
    Ok(axum::Json(
        vault
            .decide_access_review(&c.principal, &c.ctx, &review_id, decision)
            .await?,
    ))
}
