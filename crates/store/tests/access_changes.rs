//! Changes that rest on a user's access or credentials as their request read them: each must
//! apply only if that is still so at its commit. A role change, a suspension, a password change
//! or a tenant's shred committed meanwhile must not be missed, and of two requests that read the
//! same state only one may take effect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use strongroom_store::*;

mod common;

use common::{apply, assert_conflict};

const T: &str = "t1";

#[tokio::test]
async fn changes_apply_only_to_the_access_their_request_read() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
        .await
        .unwrap();
    run_all(&sqlite).await;
    if let Some(admin) = common::admin().await {
        let schema = common::schema(&admin).await;
        let pg = common::open(&schema).await;
        run_all(&pg).await;
        pg.close().await;
        common::drop_schema(&admin, &schema).await;
    }
}

async fn run_all(s: &dyn Store) {
    let case = CaseRow {
        tenant_id: T.into(),
        id: "c3".into(),
        title: vec![1; 8],
        description: None,
        severity: "low".into(),
        status: "open".into(),
        product: None,
        contact_id: None,
        assignee_id: None,
        created_at: 0,
        updated_at: 1,
    };
    apply(
        s,
        vec![
            common::tenant(T),
            Mutation::InsertCase(case),
            Mutation::InsertUser(common::user_row("eve")),
        ],
    )
    .await;
    access_requests_need_the_access_they_were_made_under(s).await;
    review_lines_need_their_account(s).await;
    sessions_need_the_password_their_login_verified(s).await;
    a_webhook_secret_changes_only_from_what_was_read(s).await;
    a_revocation_of_an_inactive_account_needs_it_still_inactive(s).await;
}

/// A review line revoked for an account read as suspended suspends nothing; if the account was
/// reactivated before the commit, the revocation must not be recorded as done.
async fn a_revocation_of_an_inactive_account_needs_it_still_inactive(s: &dyn Store) {
    apply(s, vec![Mutation::InsertUser(common::user_row("ivy"))]).await;
    let status = |status: &str, at| Mutation::SetUserStatus {
        user_id: "ivy".into(),
        status: status.into(),
        reason: None,
        at,
    };
    let guard = || Mutation::RequireInactive {
        user_id: "ivy".into(),
    };
    assert_conflict(s, guard()).await;
    apply(s, vec![status("suspended", 2)]).await;
    apply(s, vec![guard()]).await;
    apply(s, vec![status("active", 3)]).await;
    assert_conflict(s, guard()).await;
}

/// A role change or suspension revokes the requester's grants in its commit; a request built
/// before it and committed after must be refused, or it would outlive that revocation.
async fn access_requests_need_the_access_they_were_made_under(s: &dyn Store) {
    let scope = TenantScope::new(T);
    apply(s, vec![Mutation::InsertUser(common::user_row("rex"))]).await;
    let request = |id: &str, access_epoch| Mutation::InsertAccessRequest {
        row: common::access_request(T, id, "c3", "rex", "approved", Some((0, i64::MAX))),
        access_epoch,
    };
    let epoch = s.user("rex").await.unwrap().unwrap().access_epoch;
    apply(s, vec![request("q1", epoch)]).await;
    // A role change: grants revoked and the epoch moved in one commit.
    apply(
        s,
        vec![
            Mutation::RevokeUserGrants {
                user_id: "rex".into(),
                at: 5,
            },
            Mutation::ExpireUserExports {
                user_id: "rex".into(),
                scope: None,
            },
        ],
    )
    .await;
    assert_conflict(s, request("q2", epoch)).await;
    assert!(s.access_request(&scope, "q2").await.unwrap().is_none());
    // Under the new epoch, but suspended.
    let moved = s.user("rex").await.unwrap().unwrap().access_epoch;
    assert_ne!(moved, epoch);
    apply(
        s,
        vec![Mutation::SetUserStatus {
            user_id: "rex".into(),
            status: "suspended".into(),
            reason: None,
            at: 6,
        }],
    )
    .await;
    assert_conflict(s, request("q3", moved)).await;
    assert!(s.access_request(&scope, "q3").await.unwrap().is_none());
}

/// An access review read before a tenant was shredded must not write its users' names back.
async fn review_lines_need_their_account(s: &dyn Store) {
    let line = |user_id: &str| AccessReviewLineRow {
        review_id: "rv1".into(),
        user_id: user_id.into(),
        username: user_id.into(),
        roles: "tenant_user".into(),
        tenant_id: Some(T.into()),
        status: "active".into(),
        last_activity_at: 0,
        mfa_enrolled: false,
        assignments: 0,
        active_grants: 0,
        api_keys: 0,
        decision: None,
        decided_by: None,
        decided_at: None,
    };
    let review = AccessReviewRow {
        id: "rv1".into(),
        created_by: None,
        created_at: 1,
    };
    apply(
        s,
        vec![Mutation::InsertAccessReview {
            review,
            lines: vec![line("eve"), line("gone-meanwhile")],
        }],
    )
    .await;
    let kept: Vec<String> = s
        .access_review_lines("rv1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.user_id)
        .collect();
    assert_eq!(kept, ["eve"]);
}

/// A login that verified the old password and commits after a password change (or a
/// suspension) must not leave a session; the change ends every other session, also those made
/// after it listed them.
async fn sessions_need_the_password_their_login_verified(s: &dyn Store) {
    apply(s, vec![Mutation::InsertUser(common::user_row("pat"))]).await;
    let pat = s.user("pat").await.unwrap().unwrap();
    let (old_hash, roles) = (pat.password_hash, pat.roles);
    let session = |n: u8, verified: &str| Mutation::InsertSession {
        row: SessionRow {
            token_hash: vec![n; 32],
            user_id: "pat".into(),
            created_at: 1,
            last_seen_at: 1,
            expires_at: 1_000_000,
            revoked_at: None,
            enrolment_only: false,
        },
        verified_password_hash: verified.into(),
        verified_roles: roles.clone(),
    };
    apply(s, vec![session(1, &old_hash)]).await;
    apply(s, vec![session(2, &old_hash)]).await;
    apply(
        s,
        vec![
            Mutation::SetPasswordHash {
                user_id: "pat".into(),
                password_hash: "new-hash".into(),
                at: 2,
            },
            Mutation::RevokeOtherSessions {
                user_id: "pat".into(),
                keep: vec![1; 32],
                at: 2,
            },
        ],
    )
    .await;
    assert_conflict(s, session(3, &old_hash)).await;
    let live: Vec<Vec<u8>> = s
        .user_sessions("pat", 3)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.token_hash)
        .collect();
    assert_eq!(live, [vec![1u8; 32]], "only the changing session is left");
    apply(s, vec![session(4, "new-hash")]).await;
    // A role change during a login: the session it judged under the old roles is refused.
    apply(
        s,
        vec![Mutation::SetUserRoles {
            user_id: "pat".into(),
            roles: "tenant_admin".into(),
            at: 3,
        }],
    )
    .await;
    assert_conflict(s, session(6, "new-hash")).await;
    apply(
        s,
        vec![Mutation::SetUserStatus {
            user_id: "pat".into(),
            status: "suspended".into(),
            reason: None,
            at: 4,
        }],
    )
    .await;
    assert_conflict(s, session(5, "new-hash")).await;
}

/// Two first requests for a tenant's webhook secret, or two rotations, read the same state: only
/// one secret may take effect, or a caller would hold one that never signs anything.
async fn a_webhook_secret_changes_only_from_what_was_read(s: &dyn Store) {
    let scope = TenantScope::new(T);
    let set = |secret: u8, replaces: Option<Vec<u8>>| Mutation::SetWebhookSecret {
        row: WebhookSecretRow {
            tenant_id: T.into(),
            secret: vec![secret; 16],
            created_at: i64::from(secret),
        },
        replaces,
    };
    apply(s, vec![set(1, None)]).await;
    assert_conflict(s, set(2, None)).await;
    assert_conflict(s, set(3, Some(vec![9; 16]))).await;
    apply(s, vec![set(4, Some(vec![1; 16]))]).await;
    assert_conflict(s, set(5, Some(vec![1; 16]))).await;
    let stored = s.webhook_secret(&scope).await.unwrap().unwrap();
    assert_eq!(stored.secret, vec![4u8; 16]);
}
