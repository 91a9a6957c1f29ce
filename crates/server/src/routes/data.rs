//! Customer data: contacts, cases, comments, attachments. Personal data only ever in bodies (and the one `?email=`
//! lookup, which is never logged).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use strongroom_core::model::{
    Assignment, AttachmentInput, CaseInput, CommentInput, ContactInput, Page, RecordView,
};
use strongroom_core::{ErrorCode, Vault};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Json, PageQuery, Path, Query};

type Created = (StatusCode, axum::Json<RecordView>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    email: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn create_contact(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Json(input): Json<ContactInput>,
) -> ApiResult<Created> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            vault
                .create_contact(&c.principal, &c.ctx, &tenant_id, input)
                .await?,
        ),
    ))
}

pub async fn list_contacts(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<ContactQuery>,
) -> ApiResult<axum::Json<Page<RecordView>>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    if q.email
        .as_deref()
        .is_some_and(|email| email.trim().is_empty())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "email must not be empty (leave it out to list contacts)",
        ));
    }
    Ok(axum::Json(
        vault
            .list_contacts(&c.principal, &c.ctx, &tenant_id, q.email.as_deref(), &page)
            .await?,
    ))
}

pub async fn contact(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, contact_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<RecordView>> {
    Ok(axum::Json(
        vault
            .read_contact(&c.principal, &c.ctx, &tenant_id, &contact_id)
            .await?,
    ))
}

pub async fn update_contact(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, contact_id)): Path<(String, String)>,
    Json(input): Json<ContactInput>,
) -> ApiResult<axum::Json<RecordView>> {
    Ok(axum::Json(
        vault
            .update_contact(&c.principal, &c.ctx, &tenant_id, &contact_id, input)
            .await?,
    ))
}

pub async fn delete_contact(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, contact_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    vault
        .delete_contact(&c.principal, &c.ctx, &tenant_id, &contact_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_case(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Json(input): Json<CaseInput>,
) -> ApiResult<Created> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            vault
                .create_case(&c.principal, &c.ctx, &tenant_id, input)
                .await?,
        ),
    ))
}

pub async fn list_cases(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path(tenant_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<RecordView>>> {
    Ok(axum::Json(
        vault
            .list_cases(&c.principal, &c.ctx, &tenant_id, &q.page()?)
            .await?,
    ))
}

pub async fn case(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<RecordView>> {
    Ok(axum::Json(
        vault
            .read_case(&c.principal, &c.ctx, &tenant_id, &case_id)
            .await?,
    ))
}

pub async fn update_case(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id)): Path<(String, String)>,
    Json(input): Json<CaseInput>,
) -> ApiResult<axum::Json<RecordView>> {
    Ok(axum::Json(
        vault
            .update_case(&c.principal, &c.ctx, &tenant_id, &case_id, input)
            .await?,
    ))
}

pub async fn assign_case(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id)): Path<(String, String)>,
    Json(assignment): Json<Assignment>,
) -> ApiResult<axum::Json<RecordView>> {
    Ok(axum::Json(
        vault
            .assign_case(&c.principal, &c.ctx, &tenant_id, &case_id, assignment)
            .await?,
    ))
}

pub async fn add_comment(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id)): Path<(String, String)>,
    Json(input): Json<CommentInput>,
) -> ApiResult<Created> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            vault
                .add_comment(&c.principal, &c.ctx, &tenant_id, &case_id, input)
                .await?,
        ),
    ))
}

pub async fn list_comments(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<RecordView>>> {
    Ok(axum::Json(
        vault
            .list_comments(&c.principal, &c.ctx, &tenant_id, &case_id, &q.page()?)
            .await?,
    ))
}

/// Authenticates an upload before it waits for a turn or its body is read: a sender without
/// credentials must not hold one of the few turns while it trickles a body. The handler
/// authenticates again once its turn and body have come.
pub async fn upload_caller_first(
    State(vault): State<Arc<Vault>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &vault).await?;
    parts.extensions.insert(caller);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// How much of an upload's body is read, and how long it may take to arrive.
#[derive(Clone, Copy)]
pub struct UploadBody {
    pub limit: usize,
    pub deadline: Duration,
}

/// Reads an upload's whole body (at most `limit` bytes) within its deadline, then hands the
/// request on with the body buffered. Only the reading is timed: the upload itself, once it
/// runs, is never cut off half-way.
pub async fn upload_body_in_time(
    State(UploadBody { limit, deadline }): State<UploadBody>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(deadline, Limited::new(body, limit).collect());
    let bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<LengthLimitError>() => {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than allowed",
            ));
        }
        Ok(Err(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body could not be read",
            ));
        }
        Err(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body did not arrive in time once the upload's turn came",
            ));
        }
    };
    Ok(next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await)
}

/// The caller is authenticated again here: [`upload_caller_first`]'s check came before the
/// wait for a turn and the body, during which the session or key may have been revoked.
pub async fn add_attachment(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id)): Path<(String, String)>,
    Json(input): Json<AttachmentInput>,
) -> ApiResult<Created> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            vault
                .add_attachment(&c.principal, &c.ctx, &tenant_id, &case_id, input)
                .await?,
        ),
    ))
}

pub async fn list_attachments(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<RecordView>>> {
    Ok(axum::Json(
        vault
            .list_attachments(&c.principal, &c.ctx, &tenant_id, &case_id, &q.page()?)
            .await?,
    ))
}

pub async fn attachment(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<RecordView>> {
    Ok(axum::Json(
        vault
            .read_attachment(&c.principal, &c.ctx, &tenant_id, &case_id, &attachment_id)
            .await?,
    ))
}

pub async fn delete_attachment(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    vault
        .delete_attachment(&c.principal, &c.ctx, &tenant_id, &case_id, &attachment_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The file's bytes. Always `application/octet-stream` and never named in a header: the
/// declared media type and the name are in the file's record, and a browser must not render
/// what a customer uploaded.
pub async fn attachment_content(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Path((tenant_id, case_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let content = vault
        .download_attachment(&c.principal, &c.ctx, &tenant_id, &case_id, &attachment_id)
        .await?;
    // The body owns the plaintext and wipes it when dropped: sent, or the client gone.
    let body = axum::body::Body::from(axum::body::Bytes::from_owner(content));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment"),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'",
            ),
        ],
        body,
    )
        .into_response())
}
