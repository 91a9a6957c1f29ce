//! The service's one error type. Its codes are API.md's, and messages never carry personal data.

use std::borrow::Cow;

use serde_json::Value;
use strongroom_store::StoreError;

/// Stable, greppable error codes (API.md "Errors").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidRequest,
    PurposeRequired,
    Unauthenticated,
    InvalidCredentials,
    MfaRequired,
    Forbidden,
    PurposeNotPermitted,
    AccessGrantRequired,
    ConfidentialityAcknowledgementRequired,
    MfaEnrolmentRequired,
    AccountSuspended,
    NotFound,
    Conflict,
    PayloadTooLarge,
    WeakPassword,
    ValidationFailed,
    TooManyAttempts,
    AuditUnavailable,
    /// An upload matched a malware signature and was not stored.
    MalwareDetected,
    /// No scanner verdict could be had, so the upload was refused.
    ScannerUnavailable,
    /// A file's content is sealed under a key version whose keys are lost (a restore accepted
    /// it): it cannot be served from the keys this deployment holds.
    ContentUnreadable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::PurposeRequired => "purpose_required",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::MfaRequired => "mfa_required",
            Self::Forbidden => "forbidden",
            Self::PurposeNotPermitted => "purpose_not_permitted",
            Self::AccessGrantRequired => "access_grant_required",
            Self::ConfidentialityAcknowledgementRequired => {
                "confidentiality_acknowledgement_required"
            }
            Self::MfaEnrolmentRequired => "mfa_enrolment_required",
            Self::AccountSuspended => "account_suspended",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::WeakPassword => "weak_password",
            Self::ValidationFailed => "validation_failed",
            Self::TooManyAttempts => "too_many_attempts",
            Self::AuditUnavailable => "audit_unavailable",
            Self::MalwareDetected => "malware_detected",
            Self::ScannerUnavailable => "scanner_unavailable",
            Self::ContentUnreadable => "content_unreadable",
            Self::Internal => "internal",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::PurposeRequired => 400,
            Self::Unauthenticated | Self::InvalidCredentials | Self::MfaRequired => 401,
            Self::Forbidden
            | Self::PurposeNotPermitted
            | Self::AccessGrantRequired
            | Self::ConfidentialityAcknowledgementRequired
            | Self::MfaEnrolmentRequired
            | Self::AccountSuspended => 403,
            Self::NotFound => 404,
            Self::ContentUnreadable => 410,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::WeakPassword | Self::ValidationFailed | Self::MalwareDetected => 422,
            Self::TooManyAttempts => 429,
            Self::Internal => 500,
            Self::AuditUnavailable | Self::ScannerUnavailable => 503,
        }
    }
}

/// An error the service returns to its callers (HTTP, CLI).
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub details: Option<Value>,
    /// Seconds, for `too_many_attempts`.
    pub retry_after: Option<u64>,
    /// A ciphertext named a key version newer than the keyring in hand: another instance rotated
    /// the tenant's keys after this one cached them (see `KeyCache::with_keyring`).
    keyring_behind: bool,
    /// A commit sealed under a root key another instance has rotated away (see
    /// `KeyCache::root_guard`): recorded as such when the attempt is.
    root_key_rotated: bool,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            keyring_behind: false,
            root_key_rotated: false,
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such resource")
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorCode::Unauthenticated,
            "missing, expired or revoked credentials",
        )
    }
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    /// `fields` names the offending fields (names only, never values).
    pub fn validation(message: impl Into<Cow<'static, str>>, fields: &[&str]) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
            .with_details(serde_json::json!({ "fields": fields }))
    }
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut err = Self::new(ErrorCode::TooManyAttempts, "too many attempts; retry later");
        err.retry_after = Some(retry_after_secs.max(1));
        err
    }
    pub fn audit_unavailable() -> Self {
        Self::new(
            ErrorCode::AuditUnavailable,
            "the audit log cannot be written; the request was refused and nothing changed",
        )
    }
    /// A ciphertext under a key version newer than the keyring in hand: an internal error if it
    /// reaches the caller, which it does only when the keyring read again still lacks it.
    pub(crate) fn keyring_behind() -> Self {
        tracing::info!("a ciphertext names a key version newer than the keyring in hand");
        let mut err = Self::new(ErrorCode::Internal, "internal error");
        err.keyring_behind = true;
        err
    }
    pub(crate) fn is_root_key_rotated(&self) -> bool {
        self.root_key_rotated
    }
    pub(crate) fn is_keyring_behind(&self) -> bool {
        self.keyring_behind
    }
    /// An internal failure. `context` goes to the operator log only; it must not hold personal data.
    pub fn internal(context: &str) -> Self {
        tracing::error!(context, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict("unique constraint") => {
                Self::new(ErrorCode::Conflict, "the resource already exists")
            }
            StoreError::Conflict(why) => Self::new(ErrorCode::Conflict, why),
            StoreError::MissingReference => Self::new(
                ErrorCode::ValidationFailed,
                "a referenced record does not exist",
            ),
            StoreError::UnstorableText => Self::new(
                ErrorCode::InvalidRequest,
                "a text value holds a character that cannot be stored",
            ),
            rotated @ StoreError::RootKeyRotated => {
                let mut err = Self::internal(&rotated.to_string());
                err.root_key_rotated = true;
                err
            }
            other => Self::internal(&other.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
