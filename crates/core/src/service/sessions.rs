//! Session management: a user lists and revokes its own sessions; an administrator revokes all of
//! another user's. A revocation updates the store and the in-memory cache together, so it holds from
//! the next request.

use sha2::{Digest, Sha256};
use strongroom_policy::{Action, Denial};
use strongroom_store::{Mutation, SessionRow};

use super::page_in_memory;
use super::users::user_ref;
use crate::Vault;
use crate::access::{Principal, RequestContext};
use crate::audit::ResourceRef;
use crate::clock::rfc3339;
use crate::error::ServiceResult;
use crate::model::{Page, PageRequest, Revoked, SessionInfo};

/// The public name of a session: a domain-separated digest of the token's hash, so it can be shown
/// and logged but never used as (or turned back into) a credential.
pub(crate) fn session_id(token_hash: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"strongroom.session-id\0")
        .chain_update(token_hash)
        .finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn session_ref(id: String) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "session",
        id: Some(id),
    })
}

impl Vault {
    /// The user's sessions that still authenticate, with the freshest `last_seen` known.
    pub(super) async fn live_sessions(
        &self,
        user_id: &str,
    ) -> ServiceResult<Vec<(SessionRow, i64)>> {
        let now = self.now();
        let idle_ms = i64::try_from(self.settings.session_idle_timeout_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let rows = self.store.user_sessions(user_id, now).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let cached = <[u8; 32]>::try_from(row.token_hash.as_slice())
                    .ok()
                    .and_then(|h| self.sessions.get(&h));
                if cached.as_ref().is_some_and(|s| s.is_revoked()) {
                    return None;
                }
                let seen = cached
                    .map_or(row.last_seen_at, |s| s.last_seen())
                    .max(row.last_seen_at);
                (now.saturating_sub(seen) <= idle_ms).then_some((row, seen))
            })
            .collect())
    }

    pub async fn my_sessions(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> ServiceResult<Page<SessionInfo>> {
        let mut record = self.record(p, ctx, "session.list", p.tenant_id.as_deref(), None);
        let items: Vec<SessionInfo> = self
            .live_sessions(&p.user_id)
            .await?
            .into_iter()
            .map(|(row, seen)| SessionInfo {
                id: session_id(&row.token_hash),
                created_at: rfc3339(row.created_at),
                last_seen_at: rfc3339(seen),
                expires_at: rfc3339(row.expires_at),
                current: row.token_hash.as_slice() == p.token_hash.as_slice(),
            })
            .collect();
        let page = page_in_memory(items, page, |s| &s.id);
        record.records = page.items.iter().map(|s| s.id.clone()).collect();
        self.audit.append(record).await?;
        Ok(page)
    }

    pub async fn revoke_my_session(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        session: &str,
    ) -> ServiceResult<()> {
        let record = self.record(
            p,
            ctx,
            "session.revoke",
            p.tenant_id.as_deref(),
            session_ref(session.to_owned()),
        );
        let found = self
            .live_sessions(&p.user_id)
            .await?
            .into_iter()
            .find(|(row, _)| session_id(&row.token_hash) == session);
        let Some((row, _)) = found else {
            return Err(self.refuse(record, Denial::NotFound, Vec::new()).await);
        };
        self.revoke_sessions(record, vec![row]).await?;
        Ok(())
    }

    /// Revokes the caller's other sessions, and the current one too when `include_current`.
    pub async fn revoke_my_sessions(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        include_current: bool,
    ) -> ServiceResult<Revoked> {
        let mut record = self.record(p, ctx, "session.revoke_all", p.tenant_id.as_deref(), None);
        record.reason = Some(if include_current {
            "including_current"
        } else {
            "others_only"
        });
        let rows: Vec<SessionRow> = self
            .live_sessions(&p.user_id)
            .await?
            .into_iter()
            .map(|(row, _)| row)
            .filter(|row| include_current || row.token_hash.as_slice() != p.token_hash.as_slice())
            .collect();
        record.records = rows.iter().map(|r| session_id(&r.token_hash)).collect();
        self.revoke_sessions(record, rows).await
    }

    async fn revoke_sessions(
        &self,
        record: crate::audit::AuditRecord,
        rows: Vec<SessionRow>,
    ) -> ServiceResult<Revoked> {
        let now = self.now();
        let hashes: Vec<Vec<u8>> = rows.into_iter().map(|r| r.token_hash).collect();
        let mutations = hashes
            .iter()
            .map(|h| Mutation::RevokeSession {
                token_hash: h.clone(),
                at: now,
            })
            .collect();
        self.audit.commit(vec![record], mutations).await?;
        for hash in &hashes {
            if let Ok(h) = <[u8; 32]>::try_from(hash.as_slice()) {
                self.sessions.remove(&h);
            }
        }
        Ok(Revoked {
            revoked: u64::try_from(hashes.len()).unwrap_or(u64::MAX),
        })
    }

    /// An administrator ends every session of `user_id`.
    pub async fn revoke_user_sessions(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        user_id: &str,
    ) -> ServiceResult<Revoked> {
        let (_, mut record) = self
            .user_target(
                p,
                ctx,
                user_id,
                Action::RevokeCredentials,
                "user.revoke_sessions",
                &[],
            )
            .await?;
        record.resource = user_ref(user_id);
        let now = self.now();
        let live = self.store.user_sessions(user_id, now).await?;
        self.audit
            .commit(
                vec![record],
                vec![Mutation::RevokeUserSessions {
                    user_id: user_id.to_owned(),
                    at: now,
                }],
            )
            .await?;
        self.sessions.revoke_user(user_id);
        Ok(Revoked {
            revoked: u64::try_from(live.len()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_short_stable_and_not_the_hash() {
        let hash = [7u8; 32];
        let id = session_id(&hash);
        assert_eq!(id.len(), 32);
        assert_eq!(id, session_id(&hash));
        assert_ne!(id, session_id(&[8u8; 32]));
        let hex_hash: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!hex_hash.starts_with(&id));
    }
}
