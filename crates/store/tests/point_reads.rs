//! The lookups on every request's path, which SQLite steps on the caller's thread with rusqlite
//! and PostgreSQL runs through sqlx: both must answer alike from the same rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use strongroom_store::*;

mod common;

const T: &str = "t1";
const OTHER: &str = "t2";
const NOW: i64 = 1_000;

#[tokio::test]
async fn point_reads_answer_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
        .await
        .unwrap();
    point_reads(&sqlite).await;
    if let Some(admin) = common::admin().await {
        let schema = common::schema(&admin).await;
        let pg = common::open(&schema).await;
        point_reads(&pg).await;
        pg.close().await;
        common::drop_schema(&admin, &schema).await;
    }
}

async fn point_reads(s: &dyn Store) {
    let mut setup = vec![
        common::tenant(T),
        common::tenant(OTHER),
        Mutation::InsertUser(common::user_row("u1")),
        Mutation::InsertUser(common::user_row("u2")),
        Mutation::BeginTotp {
            user_id: "u1".into(),
            secret: vec![9; 40],
            at: 5,
        },
    ];
    for (tenant, id) in [(T, "p1"), (T, "p2"), (OTHER, "p1")] {
        setup.push(Mutation::InsertContact(contact(tenant, id)));
    }
    // c1 (p1) is assigned to u1, c2 (p2) to u2; c3 has no contact.
    for (tenant, id, contact_id, assignee) in [
        (T, "c1", Some("p1"), Some("u1")),
        (T, "c2", Some("p2"), Some("u2")),
        (T, "c3", None, None),
        (OTHER, "c1", Some("p1"), Some("u1")),
    ] {
        setup.push(Mutation::InsertCase(case(tenant, id, contact_id, assignee)));
    }
    // u1's grants in T: g1 and g4 active, g2 pending, g3 over, g5 not started; g6 is u2's;
    // g7 is in the other tenant.
    for (tenant, id, case_id, requester, state, window) in [
        (T, "g1", "c2", "u1", "approved", Some((0, 2_000))),
        (T, "g2", "c2", "u1", "pending", None),
        (T, "g3", "c2", "u1", "approved", Some((0, NOW))),
        (T, "g4", "c3", "u1", "approved", Some((NOW, NOW + 1))),
        (T, "g5", "c2", "u1", "approved", Some((NOW + 1, 2_000))),
        (T, "g6", "c2", "u2", "approved", Some((0, 2_000))),
        (OTHER, "g7", "c1", "u1", "approved", Some((0, 2_000))),
    ] {
        setup.push(common::insert_request(common::access_request(
            tenant, id, case_id, requester, state, window,
        )));
    }
    let results = s
        .commit(&[setup], &AuditAppend::default(), &no_replan)
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let scope = TenantScope::new(T);

    let (row, reachable) = s
        .contact_with_reach(&scope, "p1", "u1")
        .await
        .unwrap()
        .unwrap();
    assert!(reachable);
    assert_eq!(
        (row.tenant_id.as_str(), row.id.as_str()),
        (T, "p1"),
        "the row asked for"
    );
    assert_eq!(row.name, b"name-t1-p1");
    assert_eq!(row.email.as_deref(), Some(&b"email-t1-p1"[..]));
    assert_eq!(row.phone, None);
    assert_eq!(row.notes.as_deref(), Some(&b"notes-t1-p1"[..]));
    assert_eq!(row.email_index.as_deref(), Some(&[7u8; 32][..]));
    assert_eq!((row.created_at, row.updated_at), (11, 12));
    let (_, reachable) = s
        .contact_with_reach(&scope, "p2", "u1")
        .await
        .unwrap()
        .unwrap();
    assert!(!reachable, "p2's case is assigned to someone else");
    assert!(
        s.contact_with_reach(&scope, "p9", "u1")
            .await
            .unwrap()
            .is_none()
    );
    let (other, _) = s
        .contact_with_reach(&TenantScope::new(OTHER), "p1", "u2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.name, b"name-t2-p1", "each tenant's own row");

    let grants = s.active_grants(&scope, "u1", NOW).await.unwrap();
    let seen: Vec<(&str, &str, Option<&str>, &str, &str)> = grants
        .iter()
        .map(|g| {
            (
                g.id.as_str(),
                g.case_id.as_str(),
                g.contact_id.as_deref(),
                g.purpose.as_str(),
                g.field_classes.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("g4", "c3", None, "case-resolution", "contact,sensitive"),
            (
                "g1",
                "c2",
                Some("p2"),
                "case-resolution",
                "contact,sensitive"
            ),
        ],
        "active grants of u1 in T, newest id first"
    );
    let ends: Vec<i64> = grants.iter().map(|g| g.ends_at).collect();
    assert_eq!(ends, vec![NOW + 1, 2_000], "each grant's end");
    assert!(
        s.active_grants(&scope, "nobody", NOW)
            .await
            .unwrap()
            .is_empty()
    );

    let totp = s.user_totp("u1").await.unwrap().unwrap();
    assert_eq!(
        (
            totp.user_id.as_str(),
            totp.secret.as_slice(),
            totp.confirmed_at
        ),
        ("u1", &[9u8; 40][..], None)
    );
    assert_eq!((totp.last_step, totp.created_at), (None, 5));
    assert!(s.user_totp("u2").await.unwrap().is_none());
}

fn contact(tenant: &str, id: &str) -> ContactRow {
    ContactRow {
        tenant_id: tenant.into(),
        id: id.into(),
        name: format!("name-{tenant}-{id}").into_bytes(),
        email: Some(format!("email-{tenant}-{id}").into_bytes()),
        phone: None,
        address: None,
        notes: Some(format!("notes-{tenant}-{id}").into_bytes()),
        email_index: Some(vec![7; 32]),
        created_at: 11,
        updated_at: 12,
    }
}

fn case(tenant: &str, id: &str, contact_id: Option<&str>, assignee: Option<&str>) -> CaseRow {
    CaseRow {
        tenant_id: tenant.into(),
        id: id.into(),
        title: vec![1; 8],
        description: None,
        severity: "low".into(),
        status: "open".into(),
        product: None,
        contact_id: contact_id.map(Into::into),
        assignee_id: assignee.map(Into::into),
        created_at: 0,
        updated_at: 0,
    }
}
