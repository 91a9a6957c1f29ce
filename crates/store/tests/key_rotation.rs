//! Key rotation and retention mutations against real databases: SQLite, and PostgreSQL when
//! it is reachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use strongroom_store::*;

const T: &str = "t1";

/// A stand-in ciphertext: format byte, key version, then opaque bytes.
fn ct(version: u32, tag: u8) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&[tag; 28]);
    v
}

mod common;

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
        .await
        .unwrap();
    (dir, s)
}

async fn run(s: &dyn Store, m: Mutation) -> Result<(), StoreError> {
    s.commit(&[vec![m]], &AuditAppend::default(), &no_replan)
        .await
        .unwrap()
        .remove(0)
}

fn tenant() -> Mutation {
    Mutation::InsertTenant(TenantRow {
        id: T.into(),
        name: "t".into(),
        status: "active".into(),
        instructions: "{}".into(),
        created_at: 0,
        updated_at: 0,
    })
}

fn key(version: i64) -> Mutation {
    Mutation::InsertTenantKey(TenantKeyRow {
        tenant_id: T.into(),
        version,
        wrapped: vec![0; 8],
        created_at: 0,
    })
}

fn case(id: &str, status: &str, updated_at: i64) -> Mutation {
    Mutation::InsertCase(CaseRow {
        tenant_id: T.into(),
        id: id.into(),
        title: ct(1, 7),
        description: None,
        severity: "low".into(),
        status: status.into(),
        product: None,
        contact_id: None,
        assignee_id: None,
        created_at: 0,
        updated_at,
    })
}

fn reencrypt(old: Vec<u8>, new: Vec<u8>) -> Mutation {
    Mutation::ReencryptRow {
        table: CipherTable::Cases,
        scope: TenantScope::new(T),
        id: "c1".into(),
        old: vec![Some(old), None],
        new: vec![Some(new), None],
        email_index: None,
    }
}

fn usage(rows: &[KeyUsageRow]) -> Vec<(i64, i64)> {
    rows.iter().map(|u| (u.version, u.ciphertexts)).collect()
}

#[tokio::test]
async fn reencryption_is_conditional_and_retirement_checks_use() {
    let (_dir, s) = store().await;
    reencryption_is_conditional(&s).await;
    if let Some(admin) = common::admin().await {
        let schema = common::schema(&admin).await;
        let pg = common::open(&schema).await;
        reencryption_is_conditional(&pg).await;
        pg.close().await;
        common::drop_schema(&admin, &schema).await;
    }
}

async fn reencryption_is_conditional(s: &dyn Store) {
    let scope = TenantScope::new(T);
    for m in [tenant(), key(1), key(2), case("c1", "open", 0)] {
        run(s, m).await.unwrap();
    }
    assert_eq!(usage(&s.key_usage(&scope).await.unwrap()), vec![(1, 1)]);
    let stale = s
        .stale_ciphertexts(&scope, CipherTable::Cases, 2, None, 10)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].cells, vec![Some(ct(1, 7)), None]);
    // In use: not retired; the newest is never retired.
    assert!(matches!(
        run(
            s,
            Mutation::RetireTenantKey {
                scope: scope.clone(),
                version: 1,
                at: 5
            }
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        run(
            s,
            Mutation::RetireTenantKey {
                scope: scope.clone(),
                version: 2,
                at: 5
            }
        )
        .await,
        Err(StoreError::Conflict(_))
    ));

    // A user write got there first: the job's rewrite changes nothing.
    run(s, reencrypt(ct(1, 9), ct(2, 1))).await.unwrap();
    assert_eq!(s.case(&scope, "c1").await.unwrap().unwrap().title, ct(1, 7));
    // Still what was read: rewritten.
    run(s, reencrypt(ct(1, 7), ct(2, 7))).await.unwrap();
    assert_eq!(s.case(&scope, "c1").await.unwrap().unwrap().title, ct(2, 7));
    assert_eq!(usage(&s.key_usage(&scope).await.unwrap()), vec![(2, 1)]);
    assert!(
        s.stale_ciphertexts(&scope, CipherTable::Cases, 2, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    run(
        s,
        Mutation::RetireTenantKey {
            scope: scope.clone(),
            version: 1,
            at: 5,
        },
    )
    .await
    .unwrap();
    let live: Vec<i64> = s
        .tenant_keys(&scope)
        .await
        .unwrap()
        .iter()
        .map(|k| k.version)
        .collect();
    assert_eq!(live, vec![2]);
    let retired = s.retired_tenant_keys(&scope).await.unwrap();
    assert_eq!((retired[0].version, retired[0].retired_at), (1, 5));

    // A restore records the versions it accepted records under without their keys; once.
    assert!(s.lost_tenant_keys(&scope).await.unwrap().is_empty());
    for version in [4, 3, 4] {
        let loss = Mutation::RecordKeyLoss {
            scope: scope.clone(),
            version,
            at: 6,
        };
        run(s, loss).await.unwrap();
    }
    assert_eq!(s.lost_tenant_keys(&scope).await.unwrap(), vec![3, 4]);
    assert!(
        s.lost_tenant_keys(&TenantScope::new("another"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn purge_takes_only_closed_cases_past_the_cutoff() {
    let (_dir, s) = store().await;
    purge_takes_only_closed_cases(&s).await;
    if let Some(admin) = common::admin().await {
        let schema = common::schema(&admin).await;
        let pg = common::open(&schema).await;
        purge_takes_only_closed_cases(&pg).await;
        pg.close().await;
        common::drop_schema(&admin, &schema).await;
    }
}

async fn purge_takes_only_closed_cases(s: &dyn Store) {
    let scope = TenantScope::new(T);
    for m in [
        tenant(),
        Mutation::InsertUser(common::user_row("eng")),
        Mutation::InsertUser(common::user_row("sec")),
        case("old-closed", "closed", 10),
        case("old-resolved", "resolved", 10),
        case("old-open", "open", 10),
        case("new-closed", "closed", 100),
    ] {
        run(s, m).await.unwrap();
    }
    run(
        s,
        Mutation::InsertComment(CommentRow {
            tenant_id: T.into(),
            id: "m1".into(),
            case_id: "old-closed".into(),
            author_id: "u".into(),
            body: ct(1, 3),
            created_at: 0,
        }),
    )
    .await
    .unwrap();
    for (id, case_id) in [("r1", "old-closed"), ("r2", "new-closed")] {
        let request = common::access_request(T, id, case_id, "eng", "denied", None);
        run(s, common::insert_request(request)).await.unwrap();
    }
    // A break-glass use of a case awaiting its review keeps the case (and the request) until
    // the review; a grant still open at 1,000 keeps it as well.
    let mut unreviewed =
        common::access_request(T, "r3", "old-resolved", "sec", "approved", Some((0, 10)));
    unreviewed.break_glass = true;
    run(s, common::insert_request(unreviewed)).await.unwrap();
    // Exports: one holding a purged case's comment, one holding only a kept case.
    let version = s.tenant(T).await.unwrap().unwrap().updated_at;
    let epoch = s.user("eng").await.unwrap().unwrap().access_epoch;
    for (id, held) in [("x-held", "m1"), ("x-kept", "old-open")] {
        let insert = Mutation::InsertExport {
            row: common::export_row(T, id, "eng"),
            record_ids: Some(vec!["other".into(), held.into()]),
            access_epoch: epoch,
            tenant_version: version,
            quota: None,
            without_approval: None,
        };
        run(s, insert).await.unwrap();
    }
    let due: Vec<String> = s
        .expired_cases(&scope, 50, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(due, vec!["old-closed", "old-resolved"]);
    let purge = |id: &str| Mutation::PurgeCase {
        scope: scope.clone(),
        case_id: id.into(),
        cutoff: 50,
        at: 1_000,
    };
    run(s, purge("old-closed")).await.unwrap();
    assert!(s.case(&scope, "old-closed").await.unwrap().is_none());
    // The requests made for the purged case went with it (their justifications are free text
    // about it); the other case's stayed.
    assert!(s.access_request(&scope, "r1").await.unwrap().is_none());
    assert!(s.access_request(&scope, "r2").await.unwrap().is_some());
    assert!(
        s.comments(&scope, "old-closed", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Not closed, or too recent, or gone already, or a break-glass use awaiting review: a
    // conflict, nothing deleted.
    for id in ["old-open", "new-closed", "old-closed", "old-resolved"] {
        assert!(
            matches!(run(s, purge(id)).await, Err(StoreError::Conflict(_))),
            "{id}"
        );
    }
    assert!(s.case(&scope, "old-open").await.unwrap().is_some());
    assert!(s.case(&scope, "old-resolved").await.unwrap().is_some());
    assert!(s.access_request(&scope, "r3").await.unwrap().is_some());
    // The export holding the purged case's comment ended with it; the other is kept.
    for (id, state, kept) in [("x-held", "expired", false), ("x-kept", "ready", true)] {
        let row = s.export(&scope, id).await.unwrap().unwrap();
        assert_eq!(
            (row.state.as_str(), row.ciphertext.is_some()),
            (state, kept),
            "{id}"
        );
    }
}

#[tokio::test]
async fn sealing_commits_check_the_recorded_root_key() {
    let (_dir, s) = store().await;
    sealing_commits_check_the_root_key(&s).await;
    if let Some(admin) = common::admin().await {
        let schema = common::schema(&admin).await;
        let pg = common::open(&schema).await;
        sealing_commits_check_the_root_key(&pg).await;
        pg.close().await;
        common::drop_schema(&admin, &schema).await;
    }
}

async fn sealing_commits_check_the_root_key(s: &dyn Store) {
    let require = |fingerprint: &str| Mutation::RequireRootKey {
        fingerprint: fingerprint.into(),
    };
    let replace = |was: &str, now: &str| Mutation::ReplaceRootKey {
        was: was.into(),
        now: now.into(),
    };
    let rotated =
        |result: Result<(), StoreError>| matches!(result, Err(StoreError::RootKeyRotated));
    assert_eq!(s.root_key_fingerprint().await.unwrap(), None);
    // The first seal records its key; another key is refused, and its unit changes nothing.
    run(s, tenant()).await.unwrap();
    run(s, require("aaaa")).await.unwrap();
    assert_eq!(
        s.root_key_fingerprint().await.unwrap().as_deref(),
        Some("aaaa")
    );
    let refused = s
        .commit(
            &[vec![require("bbbb"), key(1)]],
            &AuditAppend::default(),
            &no_replan,
        )
        .await
        .unwrap()
        .remove(0);
    assert!(
        rotated(refused),
        "a seal under another root key was applied"
    );
    assert!(s.all_tenant_keys().await.unwrap().is_empty());
    // A rotation moves the record only from the key it replaces; then the old key is refused.
    assert!(rotated(run(s, replace("bbbb", "cccc")).await));
    run(s, replace("aaaa", "cccc")).await.unwrap();
    assert!(rotated(run(s, require("aaaa")).await));
    common::apply(s, vec![require("cccc"), key(1)]).await;
    assert_eq!(s.all_tenant_keys().await.unwrap().len(), 1);
    // At start, a key shown to open the store is recorded over the older record read before
    // (a restore), unless another moved it meanwhile (a rotation).
    assert!(!s.record_root_key("dddd", Some("bbbb")).await.unwrap());
    assert!(!s.record_root_key("dddd", None).await.unwrap());
    assert_eq!(
        s.root_key_fingerprint().await.unwrap().as_deref(),
        Some("cccc")
    );
    assert!(s.record_root_key("dddd", Some("cccc")).await.unwrap());
    assert_eq!(
        s.root_key_fingerprint().await.unwrap().as_deref(),
        Some("dddd")
    );
    assert!(rotated(run(s, require("cccc")).await));
}

#[tokio::test]
async fn a_restores_revocation_ends_open_grants_and_requests() {
    let (_dir, s) = store().await;
    restore_revocation_ends_grants(&s).await;
    if let Some(admin) = common::admin().await {
        let schema = common::schema(&admin).await;
        let pg = common::open(&schema).await;
        restore_revocation_ends_grants(&pg).await;
        pg.close().await;
        common::drop_schema(&admin, &schema).await;
    }
}

async fn restore_revocation_ends_grants(s: &dyn Store) {
    let scope = TenantScope::new(T);
    for m in [
        tenant(),
        Mutation::InsertUser(common::user_row("eng")),
        case("c1", "open", 10),
    ] {
        run(s, m).await.unwrap();
    }
    let requests = [
        ("open-grant", "approved", Some((0, 5_000))),
        ("ended-grant", "approved", Some((0, 500))),
        ("pending", "pending", None),
        ("denied", "denied", None),
    ];
    for (id, state, window) in requests {
        let row = common::access_request(T, id, "c1", "eng", state, window);
        run(s, common::insert_request(row)).await.unwrap();
    }
    run(s, Mutation::RevokeAllCredentials { at: 1_000 })
        .await
        .unwrap();
    for (id, was, _) in requests {
        let row = s.access_request(&scope, id).await.unwrap().unwrap();
        let want = if matches!(id, "open-grant" | "pending") {
            "revoked"
        } else {
            was
        };
        assert_eq!(row.state, want, "{id}");
    }
}
