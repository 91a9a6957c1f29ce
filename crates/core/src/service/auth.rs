//! Login, sessions and the confidentiality acknowledgement.

use std::net::IpAddr;
use std::sync::Arc;

use strongroom_crypto::{Token, token_hash, token_well_formed};
use strongroom_policy::{Denial, Role};
use strongroom_store::{Mutation, SessionRow, UserRow};
use zeroize::Zeroizing;

use crate::access::{Principal, RequestContext, denial_error, parse_roles};
use crate::audit::{Actor, AuditDecision, AuditRecord, ResourceRef};
use crate::auth::password;
use crate::auth::session::{CachedSession, TOUCH_EVERY_MS};
use crate::auth::throttle::{StoredAttempts, refusal_key};

/// Audit reasons of throttled logins: the username's backoff or lockout, or the client address
/// past its failures (that entry names no account and never the address).
const USERNAME_THROTTLED: &str = "too_many_attempts";
const SOURCE_THROTTLED: &str = "too_many_attempts_from_source";
use crate::clock::rfc3339;
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::{
    Acknowledgement, AcknowledgementReceipt, Agreement, Credentials, LoginResponse, LoginUser,
    MfaStatus, User,
};
use crate::service::mfa::SecondFactor;
use crate::service::sessions::session_id;
use crate::{Vault, new_id};

fn actor_of(user: &UserRow) -> Actor {
    Actor {
        user_id: user.id.clone(),
        roles: user
            .roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// A session or API key that exists, for the record of its refusal.
pub(super) struct CredentialRef<'a> {
    pub user_id: &'a str,
    pub resource: ResourceRef,
    pub request_id: &'a str,
}

pub(crate) fn user_view(u: &UserRow) -> User {
    User {
        id: u.id.clone(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        roles: u
            .roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        tenant_id: u.tenant_id.clone(),
        status: u.status.clone(),
        status_reason: u.status_reason.clone(),
        confidentiality_acknowledged_version: u.confidentiality_version.clone(),
        last_login_at: u.last_login_at.map(rfc3339),
        created_at: rfc3339(u.created_at),
        mfa: None,
    }
}

impl Vault {
    /// Creates the platform administrator `admin` when the deployment has no user yet.
    /// Returns true when it did.
    pub async fn bootstrap_admin(&self, password: &str) -> ServiceResult<bool> {
        if self.store.user_count().await? > 0 {
            return Ok(false);
        }
        password::check_policy_for(
            password,
            "admin",
            self.mfa_required_for(&[Role::PlatformAdmin]),
        )?;
        let hash = password::hash(Zeroizing::new(password.to_owned())).await?;
        let now = self.now();
        let row = super::users::new_user_row(
            new_id(),
            "admin".into(),
            "Platform administrator".into(),
            hash,
            Role::PlatformAdmin.as_str().into(),
            None,
            now,
        );
        let mut record = AuditRecord::new("user.bootstrap_admin", "bootstrap");
        record.resource = Some(crate::audit::ResourceRef {
            kind: "user",
            id: Some(row.id.clone()),
        });
        // Instances starting together on one database race here; the username decides.
        match self
            .audit
            .commit(vec![record], vec![Mutation::InsertUser(row)])
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.code == crate::error::ErrorCode::Conflict => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Logs in. `source` is the client's address where the edge knows it: its failures are
    /// counted across usernames (`SourceThrottle`).
    pub async fn login(
        &self,
        credentials: Credentials,
        request_id: &str,
        source: Option<IpAddr>,
    ) -> ServiceResult<LoginResponse> {
        let now = self.now();
        let username = credentials.username;
        let password = Zeroizing::new(credentials.password);
        let second = credentials.totp.map(Zeroizing::new);
        let mut record = AuditRecord::new("auth.login", request_id);
        record.decision = AuditDecision::Deny;

        if let Some(source) = source
            && let Some(secs) = self.source_throttle.retry_after(source, now)
        {
            return Err(self
                .refuse_throttled(
                    record,
                    &self.source_throttle.refusal_key(source),
                    SOURCE_THROTTLED,
                    now,
                    secs,
                )
                .await);
        }
        if let Some(secs) = self.throttle.retry_after(&username, now) {
            return Err(self
                .refuse_throttled(
                    record,
                    &refusal_key(&username),
                    USERNAME_THROTTLED,
                    now,
                    secs,
                )
                .await);
        }
        let user = self.store.user_by_username(&username).await?;
        if let Some(u) = &user {
            // Failures counted by other instances, or before a restart, count here too.
            self.throttle.restore(&username, StoredAttempts::of(u), now);
            if let Some(secs) = self.throttle.retry_after(&username, now) {
                record.actor = Some(actor_of(u));
                return Err(self
                    .refuse_throttled(
                        record,
                        &refusal_key(&username),
                        USERNAME_THROTTLED,
                        now,
                        secs,
                    )
                    .await);
            }
        }
        // Checked and counted as failed in one step before the slow check, so parallel attempts cannot
        // outrun the throttles; a success clears the username's and takes back the source's.
        if let Some(source) = source
            && let Err(secs) = self.source_throttle.begin_attempt(source, now)
        {
            return Err(self
                .refuse_throttled(
                    record,
                    &self.source_throttle.refusal_key(source),
                    SOURCE_THROTTLED,
                    now,
                    secs,
                )
                .await);
        }
        // Counted as failed from here on: only a success, or the server failing to judge the
        // attempt at all, takes it back. (A client that leaves mid-check stays counted.)
        let take_back = || {
            if let Some(source) = source {
                self.source_throttle.take_back(source);
            }
        };
        let locked_until = match self.throttle.begin_attempt(&username, now) {
            Ok(locked_until) => locked_until,
            Err(secs) => {
                take_back();
                record.actor = user.as_ref().map(actor_of);
                return Err(self
                    .refuse_throttled(
                        record,
                        &refusal_key(&username),
                        USERNAME_THROTTLED,
                        now,
                        secs,
                    )
                    .await);
            }
        };
        let Some(user) = user else {
            // Same work and the same answer as a wrong password.
            let _ = password::verify(password, password::DUMMY_HASH.clone())
                .await
                .inspect_err(|_| take_back())?;
            record.reason = Some("invalid_credentials");
            self.audit.append(record).await?;
            return Err(invalid_credentials());
        };
        record.actor = Some(actor_of(&user));
        if !password::verify(password, user.password_hash.clone())
            .await
            .inspect_err(|_| take_back())?
        {
            record.reason = Some(if locked_until.is_some() {
                "locked_out"
            } else {
                "invalid_credentials"
            });
            self.record_failed_attempt(record, &user.id, now, locked_until)
                .await?;
            return Err(invalid_credentials());
        }
        // The second factor, only once the password checked out. A missing or wrong code is a failed
        // attempt like a wrong password: the throttle counted it already, and it is recorded.
        let factor = self
            .second_factor(&user, second.as_ref().map(|c| c.as_str()), now, &record)
            .await
            .inspect_err(|_| take_back())?;
        let refusal = match factor {
            SecondFactor::Missing => Some(("mfa_required", mfa_required())),
            SecondFactor::Failed => Some(("mfa_failure", invalid_credentials())),
            SecondFactor::NotEnrolled | SecondFactor::Passed => None,
        };
        if let Some((reason, err)) = refusal {
            record.reason = Some(if locked_until.is_some() {
                "locked_out"
            } else {
                reason
            });
            self.record_failed_attempt(record, &user.id, now, locked_until)
                .await?;
            return Err(err);
        }
        self.throttle.record_success(&username);
        take_back();
        if user.status != "active" {
            record.reason = Some("account_suspended");
            self.audit.append(record).await?;
            return Err(ServiceError::new(
                ErrorCode::AccountSuspended,
                "the account is suspended",
            ));
        }

        let token = Token::generate().map_err(|_| ServiceError::internal("token generation"))?;
        let hash = token.hash();
        let absolute_ms = i64::try_from(
            self.settings
                .session_absolute_timeout_secs
                .saturating_mul(1000),
        )
        .unwrap_or(i64::MAX);
        let session = SessionRow {
            token_hash: hash.to_vec(),
            user_id: user.id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(absolute_ms),
            revoked_at: None,
            enrolment_only: matches!(factor, SecondFactor::NotEnrolled)
                && self.mfa_required_for(&parse_roles(&user.roles)),
        };
        record.decision = AuditDecision::Allow;
        record.reason = session.enrolment_only.then_some("mfa_enrolment_required");
        // Read before the commit: a revocation of the user's sessions that lands between the
        // commit and the caching below keeps this one out of the cache, to be read revoked.
        let generation = self.sessions.generation();
        let committed = self
            .commit_attempt(
                vec![record],
                vec![
                    Mutation::InsertSession {
                        row: session.clone(),
                        verified_password_hash: user.password_hash.clone(),
                        verified_roles: user.roles.clone(),
                    },
                    Mutation::RecordLoginSuccess {
                        user_id: user.id.clone(),
                        at: now,
                    },
                ],
                ("auth.login_not_applied", "changed_meanwhile"),
            )
            .await;
        if let Err(err) = committed {
            // The password verified, or the account's state, is no longer the account's.
            if err.code != ErrorCode::Conflict {
                return Err(err);
            }
            let suspended = self
                .store
                .user(&user.id)
                .await?
                .is_some_and(|u| u.status != "active");
            return Err(if suspended {
                ServiceError::new(ErrorCode::AccountSuspended, "the account is suspended")
            } else {
                invalid_credentials()
            });
        }
        self.sessions.insert_loaded(
            hash,
            Arc::new(CachedSession::from_row(&session)),
            generation,
        );
        self.forget_user(&user.id);
        Ok(LoginResponse {
            token: token.as_str().to_owned(),
            expires_at: rfc3339(session.expires_at),
            user: LoginUser {
                id: user.id.clone(),
                username: user.username.clone(),
                roles: actor_of(&user).roles,
                tenant_id: user.tenant_id.clone(),
            },
            mfa_enrolment_required: session.enrolment_only,
        })
    }

    /// Answers a throttled login, recording it once a minute per throttled key (`refusal_key`: a
    /// username's or a client address's, both hashed) with `reason`: a locked account, or an
    /// address past its failures, hammered without credentials is refused every time, but grows
    /// the append-only log once a window, not once a request. (`audit_unavailable` if the log
    /// cannot take the entry due.)
    async fn refuse_throttled(
        &self,
        mut record: AuditRecord,
        refusal_key: &str,
        reason: &'static str,
        now: i64,
        retry_after_secs: u64,
    ) -> ServiceError {
        record.reason = Some(reason);
        if self.refusals.first_in_window(refusal_key, now)
            && let Err(err) = self.audit.append(record).await
        {
            return err;
        }
        ServiceError::too_many_attempts(retry_after_secs)
    }

    /// Resolves a bearer token to a principal with full access; `unauthenticated` for anything not
    /// currently valid, `account_suspended` when its user is suspended or deactivated,
    /// `mfa_enrolment_required` for a session that may only enrol a second factor. This is what every
    /// route uses, except the few an enrolling user needs. `request_id` goes into the audit entry of a
    /// refusal.
    pub async fn authenticate(&self, token: &str, request_id: &str) -> ServiceResult<Principal> {
        let principal = self.authenticate_for_enrolment(token, request_id).await?;
        if principal.enrolment_only {
            return Err(self.refuse_enrolment_only(&principal, request_id).await);
        }
        Ok(principal)
    }

    /// Refuses an enrolment-only session on a route that needs a full one, with a deny entry
    /// against its user once a minute per session (a console retrying must not flood the log).
    /// Only `audit_unavailable` replaces the refusal when the log cannot take it.
    async fn refuse_enrolment_only(&self, p: &Principal, request_id: &str) -> ServiceError {
        let session = session_id(&p.token_hash);
        let key = format!("enrolment:{session}");
        if self.refusals.first_in_window(&key, self.now()) {
            let mut record = AuditRecord::new("auth.authenticate", request_id);
            record.decision = AuditDecision::Deny;
            record.actor = Some(Actor {
                user_id: p.user_id.clone(),
                roles: p.role_names(),
            });
            record.tenant_id = p.tenant_id.clone();
            record.resource = Some(ResourceRef {
                kind: "session",
                id: Some(session),
            });
            record.reason = Some(ErrorCode::MfaEnrolmentRequired.as_str());
            if let Err(err) = self.audit.commit(vec![record], Vec::new()).await {
                return err;
            }
        }
        ServiceError::new(
            ErrorCode::MfaEnrolmentRequired,
            "enrol a second factor first: this session may only use /v1/me, /v1/me/mfa and \
             /v1/auth/logout",
        )
    }

    /// Like [`Vault::authenticate`], but also accepts an enrolment-only session. Only for `/v1/me`,
    /// `/v1/me/mfa/*` and `/v1/auth/logout`; the principal carries `enrolment_only`.
    pub async fn authenticate_for_enrolment(
        &self,
        token: &str,
        request_id: &str,
    ) -> ServiceResult<Principal> {
        if token.starts_with(crate::auth::api_key::API_KEY_PREFIX) {
            return self.authenticate_api_key(token, request_id).await;
        }
        // Garbage never costs a store lookup (misses are not cached).
        if !token_well_formed(token) {
            return Err(ServiceError::unauthenticated());
        }
        let hash = token_hash(token);
        let now = self.now();
        let session = match self.sessions.get(&hash) {
            Some(s) => s,
            None => {
                let generation = self.sessions.generation();
                // No row, no entry: random tokens must not grow the log.
                let row = self
                    .store
                    .session(&hash)
                    .await?
                    .ok_or_else(ServiceError::unauthenticated)?;
                let s = Arc::new(CachedSession::from_row(&row));
                self.sessions
                    .insert_loaded(hash, Arc::clone(&s), generation);
                s
            }
        };
        // Built only on refusal: the session id is a hash, and valid sessions skip it.
        let refused = || CredentialRef {
            user_id: &session.user_id,
            resource: ResourceRef {
                kind: "session",
                id: Some(session_id(&hash)),
            },
            request_id,
        };
        if session.is_revoked() || now >= session.expires_at {
            let reason = if session.is_revoked() {
                "session_revoked"
            } else {
                "session_expired"
            };
            return Err(self
                .refuse_credential(refused(), None, reason, Vec::new())
                .await);
        }
        let idle_ms = i64::try_from(self.settings.session_idle_timeout_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        if now.saturating_sub(session.last_seen()) > idle_ms {
            self.sessions.remove(&hash);
            let revoke = vec![Mutation::RevokeSession {
                token_hash: hash.to_vec(),
                at: now,
            }];
            return Err(self
                .refuse_credential(refused(), None, "session_idle", revoke)
                .await);
        }
        let user = self.active_user(&session.user_id, refused).await?;
        // Other instances (and this one, once the entry expires) judge idleness from the store's
        // copy, so on a shared store it must lag well within the idle timeout.
        let touch_every = if self.store.shared() {
            (idle_ms / 4).clamp(250, TOUCH_EVERY_MS)
        } else {
            TOUCH_EVERY_MS
        };
        if session.touch(now, touch_every) {
            self.record_use_later(Mutation::TouchSession {
                token_hash: hash.to_vec(),
                at: now,
            });
        }
        Ok(Principal {
            user_id: user.id.clone(),
            username: user.username.clone(),
            roles: parse_roles(&user.roles),
            tenant_id: user.tenant_id.clone(),
            confidentiality_version: user.confidentiality_version.clone(),
            // Only active users get here; the policy's own guardrail still reads it.
            active: true,
            enrolment_only: session.is_enrolment_only(),
            token_hash: hash,
            api_key_id: None,
            logged_in_at: Some(session.created_at),
        })
    }

    /// The user of a session or API key, if it exists and is active; otherwise the credential's
    /// refusal (recorded; `account_suspended` for a suspended or deactivated user).
    pub(super) async fn active_user<'a>(
        &self,
        user_id: &str,
        refused: impl FnOnce() -> CredentialRef<'a>,
    ) -> ServiceResult<Arc<UserRow>> {
        let Some(user) = self.user_row(user_id).await? else {
            let reason = ErrorCode::Unauthenticated.as_str();
            return Err(self
                .refuse_credential(refused(), None, reason, Vec::new())
                .await);
        };
        if user.status != "active" {
            let reason = Denial::AccountSuspended.code();
            return Err(self
                .refuse_credential(refused(), Some(user), reason, Vec::new())
                .await);
        }
        Ok(user)
    }

    /// Refuses a session or API key that exists but does not authenticate, with a deny entry
    /// against its user, once a minute per credential (and `mutations` in the same commit). A suspended or deactivated user gets
    /// `account_suspended` (403), whatever else is wrong with the credential; anything else is
    /// `unauthenticated`. `user` is the row when already in hand; otherwise it is read from the
    /// store, not the cache: a refused credential is often the first sign of a suspension made
    /// elsewhere. Only `audit_unavailable` replaces the refusal when the log cannot take it.
    pub(super) async fn refuse_credential(
        &self,
        credential: CredentialRef<'_>,
        user: Option<Arc<UserRow>>,
        reason: &'static str,
        mutations: Vec<Mutation>,
    ) -> ServiceError {
        let user = match user {
            Some(u) => Some(u),
            None => match self.store.user(credential.user_id).await {
                Ok(u) => u.map(Arc::new),
                Err(err) => return err.into(),
            },
        };
        let suspended = user.as_ref().is_some_and(|u| u.status != "active");
        let mut record = AuditRecord::new("auth.authenticate", credential.request_id);
        record.decision = AuditDecision::Deny;
        record.actor = Some(user.as_deref().map_or_else(
            || Actor {
                user_id: credential.user_id.to_owned(),
                roles: Vec::new(),
            },
            actor_of,
        ));
        record.tenant_id = user.as_ref().and_then(|u| u.tenant_id.clone());
        record.reason = Some(if suspended {
            Denial::AccountSuspended.code()
        } else {
            reason
        });
        let key = format!(
            "{}:{}",
            credential.resource.kind,
            credential.resource.id.as_deref().unwrap_or_default()
        );
        record.resource = Some(credential.resource);
        // A change (the idle session's revocation) always commits, with its entry.
        if (!mutations.is_empty() || self.refusals.first_in_window(&key, self.now()))
            && let Err(err) = self.audit.commit(vec![record], mutations).await
        {
            return err;
        }
        if suspended {
            denial_error(Denial::AccountSuspended)
        } else {
            ServiceError::unauthenticated()
        }
    }

    /// Revokes the credential the request came with: its session, or the API key itself (a key
    /// has no session to end, and answering 204 while it stays valid would mislead the caller).
    pub async fn logout(&self, p: &Principal, ctx: &RequestContext) -> ServiceResult<()> {
        let at = self.now();
        let mut record = self.record(p, ctx, "auth.logout", None, None);
        let revoke = match p.api_key_id.as_deref() {
            Some(key_id) => {
                record.resource = super::api_keys::key_ref(key_id);
                Mutation::RevokeApiKey {
                    id: key_id.to_owned(),
                    at,
                }
            }
            None => Mutation::RevokeSession {
                token_hash: p.token_hash.to_vec(),
                at,
            },
        };
        self.audit.commit(vec![record], vec![revoke]).await?;
        match p.api_key_id.as_deref() {
            Some(key_id) => self.api_keys.revoke_id(key_id),
            None => self.sessions.remove(&p.token_hash),
        }
        Ok(())
    }

    pub async fn me(&self, p: &Principal) -> ServiceResult<User> {
        let user = self
            .user_row(&p.user_id)
            .await?
            .ok_or_else(ServiceError::unauthenticated)?;
        let mut view = user_view(&user);
        view.mfa = Some(MfaStatus {
            totp: self.has_totp(&user.id).await?,
        });
        Ok(view)
    }

    pub fn agreement(&self) -> Agreement {
        Agreement {
            version: self.settings.confidentiality_version.clone(),
            text: self.settings.confidentiality_text.clone(),
        }
    }

    pub async fn acknowledge_confidentiality(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        ack: Acknowledgement,
    ) -> ServiceResult<AcknowledgementReceipt> {
        if ack.version != self.settings.confidentiality_version {
            return Err(ServiceError::validation(
                "that is not the current agreement's version",
                &["version"],
            ));
        }
        let now = self.now();
        let mut record = self.record(p, ctx, "user.acknowledge_confidentiality", None, None);
        // Not an issued id, so not through `record`'s filter: the version was checked above.
        record.resource = Some(ResourceRef {
            kind: "confidentiality_agreement",
            id: Some(ack.version.clone()),
        });
        self.audit
            .commit(
                vec![record],
                vec![Mutation::AcknowledgeConfidentiality {
                    user_id: p.user_id.clone(),
                    version: ack.version.clone(),
                    at: now,
                }],
            )
            .await?;
        self.forget_user(&p.user_id);
        Ok(AcknowledgementReceipt {
            version: ack.version,
            acknowledged_at: rfc3339(now),
        })
    }
}

fn mfa_required() -> ServiceError {
    ServiceError::new(
        ErrorCode::MfaRequired,
        "this account has a second factor: give its code in `totp`",
    )
}

impl Vault {
    /// Writes a last-use time off the request path: it is bookkeeping, not part of the answer,
    /// and a failure only leaves the stored time older.
    pub(super) fn record_use_later(&self, mutation: Mutation) {
        let audit = Arc::clone(&self.audit);
        tokio::spawn(async move {
            let _ = audit.commit(Vec::new(), vec![mutation]).await;
        });
    }

    /// Records a failed credential check: the refusal and, in the same transaction, the count
    /// (and lockout) that survives a restart.
    pub(super) async fn record_failed_attempt(
        &self,
        record: AuditRecord,
        user_id: &str,
        now: i64,
        locked_until: Option<i64>,
    ) -> ServiceResult<()> {
        self.audit
            .commit(
                vec![record],
                vec![Mutation::RecordLoginFailure {
                    user_id: user_id.to_owned(),
                    at: now,
                    locked_until,
                }],
            )
            .await?;
        Ok(())
    }
}

fn invalid_credentials() -> ServiceError {
    ServiceError::new(ErrorCode::InvalidCredentials, "wrong username or password")
}
