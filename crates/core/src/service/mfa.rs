//! The second factor: TOTP enrolment and confirmation, its check at login, and password changes
//! (whose length rule depends on it).

use strongroom_policy::{Action, Denial, Role};
use strongroom_store::{Mutation, UserRow};
use zeroize::Zeroizing;

use super::auth::user_view;
use super::users::user_ref;
use crate::Vault;
use crate::access::{Principal, RequestContext, parse_roles};
use crate::audit::{AuditDecision, AuditRecord};
use crate::auth::password;
use crate::auth::throttle::StoredAttempts;
use crate::auth::totp::{self, SEAL_PURPOSE};
use crate::error::{ErrorCode, ServiceError, ServiceResult};
use crate::model::{PasswordChange, RecoveryCodes, TotpConfirmation, TotpEnrolment, User};

/// The outcome of the second-factor step of a login whose password checked out.
pub(crate) enum SecondFactor {
    /// The account has no confirmed factor.
    NotEnrolled,
    /// A valid, fresh code (now consumed).
    Passed,
    /// The account has a factor and the login gave none.
    Missing,
    /// Wrong, replayed or used code.
    Failed,
}

fn conflict(message: &'static str) -> ServiceError {
    ServiceError::new(ErrorCode::Conflict, message)
}

fn now_secs(now_ms: i64) -> u64 {
    u64::try_from(now_ms / 1000).unwrap_or(0)
}

impl Vault {
    /// Whether accounts with these roles must have a second factor (settings).
    pub(crate) fn mfa_required_for(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| {
            (r.is_staff() && self.settings.mfa_required_for_staff)
                || (*r == Role::TenantAdmin && self.settings.mfa_required_for_tenant_admins)
        })
    }

    /// Whether the user has a confirmed TOTP factor.
    pub(crate) async fn has_totp(&self, user_id: &str) -> ServiceResult<bool> {
        Ok(self
            .store
            .user_totp(user_id)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some()))
    }

    /// Refuses enrolment to an API key, and to a session whose login is older than
    /// `mfa_enrolment_window_secs`: the factor then belongs to whoever holds the password, not
    /// to whoever holds a token.
    async fn may_enrol(&self, p: &Principal, record: &AuditRecord) -> ServiceResult<()> {
        self.refuse_minting_by_key(p, record).await?;
        let window_ms = i64::try_from(self.settings.mfa_enrolment_window_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let recent = p
            .logged_in_at
            .is_some_and(|at| self.now().saturating_sub(at) <= window_ms);
        if recent {
            return Ok(());
        }
        Err(self
            .refuse_because(
                record.clone(),
                "login_too_old",
                ServiceError::new(
                    ErrorCode::Forbidden,
                    "log in again to enrol a second factor: enrolment follows a fresh login",
                ),
            )
            .await)
    }

    /// Starts (or restarts, before confirmation) TOTP enrolment for the caller. The seed is stored
    /// sealed under the platform key and shown only in this answer.
    pub async fn start_totp_enrolment(
        &self,
        p: &Principal,
        ctx: &RequestContext,
    ) -> ServiceResult<TotpEnrolment> {
        let mut record = self.record(p, ctx, "auth.mfa.totp_start", None, user_ref(&p.user_id));
        self.may_enrol(p, &record).await?;
        if self.has_totp(&p.user_id).await? {
            record.decision = AuditDecision::Deny;
            record.reason = Some("conflict");
            self.audit.append(record).await?;
            return Err(conflict("a second factor is already confirmed"));
        }
        let seed = totp::generate_secret()?;
        let sealed = self
            .keys
            .seal_user_secret(&p.user_id, SEAL_PURPOSE, seed.as_slice())?;
        let secret = totp::base32(seed.as_slice());
        let uri = totp::otpauth_uri(&p.username, &secret);
        let svg = totp::qr_svg(&uri)?;
        // Refused in the store if a factor was confirmed meanwhile: recorded as not applied.
        self.commit_attempt(
            vec![record],
            vec![
                self.keys.root_guard(),
                Mutation::BeginTotp {
                    user_id: p.user_id.clone(),
                    secret: sealed,
                    at: self.now(),
                },
            ],
            ("auth.mfa.totp_start_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(TotpEnrolment {
            secret: secret.to_string(),
            otpauth_uri: uri.to_string(),
            qr_svg: svg.to_string(),
        })
    }

    /// Confirms the pending factor with a first valid code; returns recovery codes (shown once,
    /// stored hashed). An enrolment-only session becomes a full one.
    pub async fn confirm_totp_enrolment(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        input: TotpConfirmation,
    ) -> ServiceResult<RecoveryCodes> {
        let code = Zeroizing::new(input.code);
        let mut record = self.record(p, ctx, "auth.mfa.totp_confirm", None, user_ref(&p.user_id));
        self.may_enrol(p, &record).await?;
        let pending = self
            .store
            .user_totp(&p.user_id)
            .await?
            .filter(|t| t.confirmed_at.is_none());
        let Some(pending) = pending else {
            record.decision = AuditDecision::Deny;
            record.reason = Some("conflict");
            self.audit.append(record).await?;
            return Err(conflict(
                "no pending enrolment: start one with POST /v1/me/mfa/totp",
            ));
        };
        let seed = self
            .keys
            .open_user_secret(&p.user_id, SEAL_PURPOSE, &pending.secret)?;
        let Some(step) = totp::accept(&seed, code.trim(), now_secs(self.now()), None)? else {
            record.decision = AuditDecision::Deny;
            record.reason = Some("mfa_failure");
            self.audit.append(record).await?;
            return Err(ServiceError::validation(
                "the code does not match the pending enrolment",
                &["code"],
            ));
        };
        let codes = totp::generate_recovery_codes()?;
        let hashes = codes
            .iter()
            .filter_map(|c| totp::normalise_recovery_code(c))
            .map(|canonical| totp::recovery_code_hash(&p.user_id, &canonical))
            .collect::<Vec<_>>();
        if hashes.len() != codes.len() {
            return Err(ServiceError::internal("recovery code format"));
        }
        self.commit_attempt(
            vec![record],
            vec![Mutation::ConfirmTotp {
                user_id: p.user_id.clone(),
                step,
                recovery_code_hashes: hashes,
                session_token_hash: p.enrolment_only.then(|| p.token_hash.to_vec()),
                at: self.now(),
            }],
            ("auth.mfa.totp_confirm_not_applied", "changed_meanwhile"),
        )
        .await?;
        if let Some(session) = self.sessions.get(&p.token_hash) {
            session.complete_enrolment();
        }
        Ok(RecoveryCodes {
            recovery_codes: codes.iter().map(|c| c.to_string()).collect(),
        })
    }

    /// The second-factor step of a login, run only after the password checked out. A valid code is
    /// consumed in the store before the session exists: the conditional update there is the replay
    /// check, so two logins racing with one code cannot both pass. A recovery code is spent for
    /// good, so its use is recorded in the same commit (from `login`, the login's record so far),
    /// whatever the login's outcome; a TOTP step has no entry of its own, the login's follows.
    pub(crate) async fn second_factor(
        &self,
        user: &UserRow,
        presented: Option<&str>,
        now: i64,
        login: &AuditRecord,
    ) -> ServiceResult<SecondFactor> {
        let Some(factor) = self
            .store
            .user_totp(&user.id)
            .await?
            .filter(|t| t.confirmed_at.is_some())
        else {
            return Ok(SecondFactor::NotEnrolled);
        };
        let Some(code) = presented.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(SecondFactor::Missing);
        };
        let (mutation, recovery_code) = if totp::is_totp_shape(code) {
            let seed = self
                .keys
                .open_user_secret(&user.id, SEAL_PURPOSE, &factor.secret)?;
            match totp::accept(&seed, code, now_secs(now), factor.last_step)? {
                Some(step) => (
                    Mutation::UseTotpStep {
                        user_id: user.id.clone(),
                        step,
                    },
                    false,
                ),
                None => return Ok(SecondFactor::Failed),
            }
        } else if let Some(canonical) = totp::normalise_recovery_code(code) {
            (
                Mutation::UseRecoveryCode {
                    user_id: user.id.clone(),
                    code_hash: totp::recovery_code_hash(&user.id, &canonical),
                    at: now,
                },
                true,
            )
        } else {
            return Ok(SecondFactor::Failed);
        };
        let consumed = if recovery_code {
            self.commit_attempt(
                vec![self.recovery_code_record(login)],
                vec![mutation],
                ("auth.mfa.recovery_code_used_not_applied", "already_used"),
            )
            .await
        } else {
            self.audit.commit(Vec::new(), vec![mutation]).await
        };
        match consumed {
            Ok(_) => Ok(SecondFactor::Passed),
            Err(err) if err.code == ErrorCode::Conflict => Ok(SecondFactor::Failed),
            Err(err) => Err(err),
        }
    }

    /// Changes the caller's own password. The current password is checked under the login
    /// throttle; the new one must meet the length rule for the account's factors.
    pub async fn change_password(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        mut change: PasswordChange,
    ) -> ServiceResult<()> {
        // Moved, not cloned: `PasswordChange` has no Drop to wipe the originals.
        let current = Zeroizing::new(std::mem::take(&mut change.current_password));
        let new = Zeroizing::new(std::mem::take(&mut change.new_password));
        let mut record = self.record(p, ctx, "user.change_password", None, user_ref(&p.user_id));
        // From the store, not the cache: its failure count is checked like a login's.
        let user = self
            .store
            .user(&p.user_id)
            .await?
            .ok_or_else(ServiceError::unauthenticated)?;
        let now = self.now();
        // Failures and a lockout counted by logins elsewhere hold here too: this check of the
        // password is no second oracle for guessing it.
        self.throttle
            .restore(&user.username, StoredAttempts::of(&user), now);
        let locked_until = match self.throttle.begin_attempt(&user.username, now) {
            Ok(locked_until) => locked_until,
            Err(secs) => {
                record.decision = AuditDecision::Deny;
                record.reason = Some("too_many_attempts");
                self.audit.append(record).await?;
                return Err(ServiceError::too_many_attempts(secs));
            }
        };
        if !password::verify(current, user.password_hash.clone()).await? {
            record.decision = AuditDecision::Deny;
            record.reason = Some("invalid_credentials");
            self.record_failed_attempt(record, &user.id, now, locked_until)
                .await?;
            return Err(ServiceError::validation(
                "the current password is wrong",
                &["current_password"],
            ));
        }
        self.throttle.record_success(&user.username);
        let second_factor =
            self.has_totp(&user.id).await? || self.mfa_required_for(&parse_roles(&user.roles));
        password::check_policy_for(&new, &user.username, second_factor)?;
        let hash = password::hash(new).await?;
        // Every other session ends with the old password: one may be why it was changed. The
        // store revokes them all in the commit, including any a racing login made; a login
        // still in flight then finds the hash changed and makes none.
        let now = self.now();
        let mutations = vec![
            Mutation::SetPasswordHash {
                user_id: user.id.clone(),
                password_hash: hash,
                at: now,
            },
            Mutation::RevokeOtherSessions {
                user_id: user.id.clone(),
                keep: p.token_hash.to_vec(),
                at: now,
            },
        ];
        self.audit.commit(vec![record], mutations).await?;
        match <[u8; 32]>::try_from(p.token_hash.as_slice()) {
            Ok(current) => self.sessions.revoke_user_except(&user.id, &current),
            Err(_) => self.sessions.revoke_user(&user.id),
        }
        self.forget_user(&user.id);
        Ok(())
    }

    /// Removes a user's second factor and its recovery codes, for a lost device: an administrator
    /// who may reactivate the account may reset it. The user's sessions end with it; their next
    /// login gives the password alone and, where their roles require a factor, enrols a new one
    /// before anything else. Not one's own factor (a stolen session would drop it), and not with
    /// an API key (it opens the account to whoever holds the password).
    pub async fn reset_second_factor(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        user_id: &str,
    ) -> ServiceResult<User> {
        let (user, record) = self
            .user_target(
                p,
                ctx,
                user_id,
                Action::ResetSecondFactor,
                "user.mfa_reset",
                &[],
            )
            .await?;
        self.refuse_minting_by_key(p, &record).await?;
        if user.id == p.user_id {
            return Err(self.refuse(record, Denial::Forbidden, Vec::new()).await);
        }
        if self.store.user_totp(user_id).await?.is_none() {
            return Err(self
                .refuse_because(
                    record,
                    "conflict",
                    conflict("the user has no second factor"),
                )
                .await);
        }
        let at = self.now();
        self.commit_attempt(
            vec![record],
            vec![
                Mutation::ResetTotp {
                    user_id: user_id.to_owned(),
                },
                Mutation::RevokeUserSessions {
                    user_id: user_id.to_owned(),
                    at,
                },
            ],
            ("user.mfa_reset_not_applied", "changed_meanwhile"),
        )
        .await?;
        self.sessions.revoke_user(user_id);
        self.forget_user(user_id);
        Ok(user_view(&user))
    }

    /// The audit entry of a login that used a recovery code.
    pub(crate) fn recovery_code_record(&self, login: &AuditRecord) -> AuditRecord {
        let mut r = login.clone();
        r.action = "auth.mfa.recovery_code_used";
        r.reason = None;
        r.decision = AuditDecision::Allow;
        r
    }
}
