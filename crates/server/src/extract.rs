//! Extractors whose rejections become our error body: JSON, query strings, path parameters and the
//! authenticated caller.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use strongroom_core::model::{PageRequest, Purpose};
use strongroom_core::{ErrorCode, Principal, RequestContext, Vault};

use crate::error::ApiError;
use crate::request_id;

/// JSON body; malformed JSON, unknown fields and wrong types are `invalid_request`, an oversized body
/// `payload_too_large`.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Judged after the body is read (within the limit), so that an oversized body is 413
        // whatever its type says.
        let json = is_json(req.headers());
        let read = axum::body::Bytes::from_request(req, state);
        let Ok(read) = tokio::time::timeout(crate::REQUEST_HEAD_TIMEOUT, read).await else {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body did not arrive in time",
            ));
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(r) if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than allowed",
                ));
            }
            Err(_) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "the body could not be read",
                ));
            }
        };
        if !json {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        if holds_nul_escape(&bytes) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a string in the body holds a NUL character (\\u0000), which no field may",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
            // serde's messages can quote input values; keep only the class of error.
            Err(JsonRejection::JsonDataError(_)) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body has an unknown field, a missing field or a value of the wrong type",
            )),
            Err(_) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body is not valid JSON",
            )),
        }
    }
}

/// `Content-Type: application/json`, or another `application/…+json`, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether a JSON text holds the escape of NUL (`\u0000`, not preceded by an escaped
/// backslash). PostgreSQL keeps no NUL in text, and no field needs one: refused at the door, it
/// never reaches a store that would fail the whole batch it was written with.
fn holds_nul_escape(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(at, window)| {
        window == b"\\u0000"
            && json[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

/// Whether a percent-encoded query carries NUL (`%00`), refused for the same reason.
fn encodes_nul(raw: &str) -> bool {
    raw.contains("%00")
}

/// Path parameters; a segment that does not decode (not UTF-8, say) is `invalid_request` in our
/// error body, not axum's plain-text rejection (which would also quote the segment).
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The decoded values, not the URI: a nested router has already stripped the segments
        // it matched (the tenant id) from the path it passes on.
        let holds_nul = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_or(true, |params| params.iter().any(|(_, v)| v.contains('\0')));
        if holds_nul {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a path segment is malformed",
            ));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(_) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a path segment is malformed",
            )),
        }
    }
}

/// Query string; anything that does not parse is `invalid_request`.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(encodes_nul) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a query parameter is unknown or malformed",
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(_)) | Err(_) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a query parameter is unknown or malformed",
            )),
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        page_request(self.limit, self.cursor.clone())
    }
}

/// A list's `?limit=` and `?cursor=`. These lists page by record id, so a cursor is a
/// `next_cursor` a list returned; anything else (an empty one included) is a bad parameter, not
/// an empty page.
pub fn page_request(
    limit_asked: Option<u32>,
    cursor: Option<String>,
) -> Result<PageRequest, ApiError> {
    if cursor
        .as_deref()
        .is_some_and(|cursor| !PageRequest::is_cursor(cursor))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "cursor must be a next_cursor this list returned",
        ));
    }
    Ok(PageRequest {
        limit: limit(limit_asked)?,
        cursor,
    })
}

/// A list's `?limit=`: 50 when absent, otherwise 1 to 500.
pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    let limit = requested.unwrap_or(50);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "limit must be between 1 and 500",
        ))
    }
}

/// The authenticated caller and what the request says about purpose.
#[derive(Clone)]
pub struct Caller {
    pub principal: Principal,
    pub ctx: RequestContext,
}

pub fn context(headers: &HeaderMap) -> Result<RequestContext, ApiError> {
    let purpose = match headers.get("access-purpose") {
        None => None,
        // An empty header states no purpose: `purpose_required` where one is, like none at all.
        Some(v) if v.as_bytes().trim_ascii().is_empty() => None,
        Some(v) => {
            let text = v.to_str().map_err(|_| {
                ApiError::new(ErrorCode::InvalidRequest, "Access-Purpose is not text")
            })?;
            Some(text.trim().parse::<Purpose>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "Access-Purpose is not a known purpose",
                )
            })?)
        }
    };
    let justification = match headers.get("access-justification") {
        None => None,
        Some(v) => {
            // The value goes into the audit log, which outlives shredding: a reference, not prose.
            // Bytes that are not visible ASCII are refused like any other non-reference.
            let text = v.to_str().map(str::trim).unwrap_or("\u{0}");
            if !text.is_empty() && !strongroom_core::is_reference(text) {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "Access-Justification must be a reference such as a case or ticket number: \
                     3 to 64 letters, digits or -._:/ with a digit among them (free text could carry personal data into \
                     the audit log)",
                ));
            }
            Some(text.to_owned()).filter(|t| !t.is_empty())
        }
    };
    Ok(RequestContext {
        request_id: request_id::current(),
        purpose,
        justification,
    })
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A caller that may also hold an enrolment-only session (a user who must enrol a second factor
/// first). Only for `/v1/me`, `/v1/me/mfa/*` and `/v1/auth/logout`; every other route takes [`Caller`],
/// which refuses such sessions with `403 mfa_enrolment_required`.
pub struct EnrollingCaller {
    pub principal: Principal,
    pub ctx: RequestContext,
}

impl FromRequestParts<Arc<Vault>> for EnrollingCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        vault: &Arc<Vault>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError(strongroom_core::ServiceError::unauthenticated()))?;
        let principal = vault
            .authenticate_for_enrolment(token, &request_id::current())
            .await?;
        let ctx = context(&parts.headers)?;
        Ok(Self { principal, ctx })
    }
}

impl FromRequestParts<Arc<Vault>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        vault: &Arc<Vault>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError(strongroom_core::ServiceError::unauthenticated()))?;
        let principal = vault.authenticate(token, &request_id::current()).await?;
        let ctx = context(&parts.headers)?;
        Ok(Self { principal, ctx })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::context;

    fn justification(value: HeaderValue) -> Option<Option<String>> {
        let mut headers = HeaderMap::new();
        headers.insert("access-justification", value);
        context(&headers).ok().map(|ctx| ctx.justification)
    }

    #[test]
    fn a_nul_escape_is_found_and_an_escaped_backslash_is_not_one() {
        use super::holds_nul_escape;
        for (json, nul) in [
            (&br#"{"a": "x\u0000y"}"#[..], true),
            (br#"{"a": "\u0000"}"#, true),
            (br#"{"a": "\\\u0000"}"#, true),
            (br#"{"a": "\\u0000"}"#, false),
            (br#"{"a": "u0000"}"#, false),
            (br#"{"a": "\u00000"}"#, true),
            (br#"{"a": "\u0001"}"#, false),
            (b"", false),
        ] {
            assert_eq!(
                holds_nul_escape(json),
                nul,
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn justifications_are_references_or_refused() {
        let given = |text: &'static str| justification(HeaderValue::from_static(text));
        assert_eq!(given(" INC-4711 "), Some(Some("INC-4711".to_owned())));
        assert_eq!(given("   "), Some(None));
        assert_eq!(given("customer Jane Doe called"), None);
        assert_eq!(given("jane@example.com"), None);
        for bytes in [&b"caf\xc3\xa9-12"[..], b"ticket\xff12", b"\x80\x80\x80"] {
            let value = HeaderValue::from_bytes(bytes).ok();
            assert!(
                value.is_some_and(|v| justification(v).is_none()),
                "{bytes:?}"
            );
        }
    }
}
