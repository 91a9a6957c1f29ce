//! The one place where service errors become HTTP responses (API.md's error body).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strongroom_core::{ErrorCode, ServiceError};

use crate::request_id;

/// An error on its way out. Its message never holds personal data.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        Self(err)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: &'static str) -> Self {
        Self(ServiceError::new(code, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = StatusCode::from_u16(err.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({
            "code": err.code.as_str(),
            "message": err.message,
            "request_id": request_id::current(),
        });
        if let (Some(details), Some(obj)) = (err.details, body.as_object_mut()) {
            obj.insert("details".into(), details);
        }
        let mut response = (status, axum::Json(json!({ "error": body }))).into_response();
        if let Some(secs) = err.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
