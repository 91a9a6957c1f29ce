//! Every request gets an id: set on the response as `Request-Id`, repeated in error bodies, recorded in
//! the audit entry and the request log line.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served (empty outside a request).
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

pub const HEADER: &str = "request-id";

/// Assigns the id and runs the request inside its scope.
pub async fn middleware(request: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

/// Metrics and one log line per matched request, labelled by route template only: paths carry ids and
/// a query may carry a blind-index lookup value, so the raw URI is never logged.
pub async fn observe(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::counter!("strongroom_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("strongroom_http_request_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if status >= 400 {
        tracing::info!(request_id = %current(), %method, route, status, micros, "request");
    } else {
        tracing::debug!(request_id = %current(), %method, route, status, micros, "request");
    }
    response
}
