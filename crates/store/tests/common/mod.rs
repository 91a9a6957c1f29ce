//! A real PostgreSQL for the store's tests: its own schema per test, owned by a role that
//! row-level security binds. Without a reachable server the tests say they were skipped, unless
//! `STRONGROOM_REQUIRE_POSTGRES=1` makes that a failure.
#![allow(dead_code)]

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use strongroom_store::{
    AccessRequestRow, AuditAppend, AuditEntryRow, ContactRow, ExportRow, Mutation, NodeKey,
    PgOptions, PgStore, Store, StoreError, TenantRow, UserRow, no_replan,
};

pub const APP_ROLE: &str = "strongroom_app";

pub fn admin_url() -> String {
    std::env::var("STRONGROOM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn app_url() -> String {
    let admin = admin_url();
    match admin.split_once('@') {
        Some((_, rest)) => format!("postgres://{APP_ROLE}@{rest}"),
        None => admin,
    }
}

/// The admin pool, or `None` (after saying why) when PostgreSQL is not there and not required.
pub async fn admin() -> Option<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&admin_url())
        .await;
    match pool {
        Ok(pool) => Some(pool),
        Err(err) if std::env::var("STRONGROOM_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("PostgreSQL is required (STRONGROOM_REQUIRE_POSTGRES=1) but unreachable: {err}")
        }
        Err(err) => {
            eprintln!(
                "SKIPPED: PostgreSQL store test not run: cannot connect ({err}); set \
                 STRONGROOM_REQUIRE_POSTGRES=1 to make this a failure"
            );
            None
        }
    }
}

/// A fresh schema owned by the application role (created if missing).
pub async fn schema(admin: &PgPool) -> String {
    let created = admin
        .execute(
            "DO $$ BEGIN CREATE ROLE strongroom_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB \
             NOCREATEROLE; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .await;
    created.expect("create the application role");
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random");
    let name = format!(
        "sr_store_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {name} AUTHORIZATION {APP_ROLE}"
        )))
        .await
        .expect("create schema");
    name
}

pub async fn drop_schema(admin: &PgPool, name: &str) {
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
        .await;
}

pub fn options(schema: &str) -> PgOptions {
    PgOptions {
        url: app_url(),
        schema: Some(schema.to_owned()),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(30),
    }
}

pub async fn open(schema: &str) -> PgStore {
    PgStore::open(&options(schema)).await.expect("open PgStore")
}

/// A tenant to insert: the smallest data change a unit can carry.
pub fn tenant(id: &str) -> Mutation {
    Mutation::InsertTenant(TenantRow {
        id: id.into(),
        name: "t".into(),
        status: "active".into(),
        instructions: "{}".into(),
        created_at: 1,
        updated_at: 1,
    })
}

/// A contact with stand-in ciphertext (no optional field set).
pub fn contact_row(tenant_id: &str, id: &str, updated_at: i64) -> ContactRow {
    ContactRow {
        tenant_id: tenant_id.into(),
        id: id.into(),
        name: vec![1, 2, 3],
        email: None,
        phone: None,
        address: None,
        notes: None,
        email_index: None,
        created_at: 1,
        updated_at,
    }
}

/// Entries `start..start + n` and every tree node they complete (stand-in hashes: each node's
/// bytes are its level).
pub fn entries(start: i64, n: i64) -> AuditAppend {
    let mut nodes = Vec::new();
    for idx in start..start + n {
        let size = u64::try_from(idx + 1).unwrap();
        for level in 0u8..63 {
            if size % (1 << level) != 0 {
                break;
            }
            let key = NodeKey {
                level,
                index: (size >> level) - 1,
            };
            nodes.push((key, [level; 32]));
        }
    }
    AuditAppend {
        entries: (start..start + n)
            .map(|idx| AuditEntryRow {
                idx,
                tenant_id: None,
                entry: vec![0; 8],
            })
            .collect(),
        nodes,
    }
}

/// An access request on `case_id`: approved for `window` (start, end) when given.
pub fn access_request(
    tenant: &str,
    id: &str,
    case_id: &str,
    requester: &str,
    state: &str,
    window: Option<(i64, i64)>,
) -> AccessRequestRow {
    AccessRequestRow {
        id: id.into(),
        tenant_id: tenant.into(),
        case_id: case_id.into(),
        requester_id: requester.into(),
        requester_roles: "support_engineer".into(),
        purpose: "case-resolution".into(),
        justification: vec![3; 8],
        field_classes: "contact,sensitive".into(),
        duration_minutes: 60,
        break_glass: false,
        state: state.into(),
        created_at: 0,
        request_expires_at: 2_000,
        decided_by: window.map(|_| "admin".into()),
        decided_at: window.map(|(start, _)| start),
        decision_comment: None,
        starts_at: window.map(|(start, _)| start),
        ends_at: window.map(|(_, end)| end),
        revoked_by: None,
        revoked_at: None,
        reviewed_by: None,
        reviewed_at: None,
        expiry_notified_at: None,
    }
}

/// Inserts `row` for a requester whose access has not changed since their account was made.
pub fn insert_request(row: AccessRequestRow) -> Mutation {
    Mutation::InsertAccessRequest {
        row,
        access_epoch: 0,
    }
}

/// An active support engineer named by its id.
pub fn user_row(id: &str) -> UserRow {
    UserRow {
        id: id.into(),
        username: id.into(),
        display_name: id.into(),
        password_hash: "x".into(),
        roles: "support_engineer".into(),
        tenant_id: None,
        status: "active".into(),
        status_reason: None,
        confidentiality_version: None,
        confidentiality_at: None,
        failed_logins: 0,
        last_failed_login_at: None,
        locked_until: None,
        last_login_at: None,
        created_at: 1,
        updated_at: 1,
        reactivated_at: None,
        access_epoch: 0,
    }
}

/// Commits `unit` and expects every change in it applied.
pub async fn apply(s: &dyn Store, unit: Vec<Mutation>) {
    let results = s
        .commit(&[unit], &AuditAppend::default(), &no_replan)
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// Commits `mutation` alone and expects it refused as a conflict.
pub async fn assert_conflict(s: &dyn Store, mutation: Mutation) {
    assert_unit_conflicts(s, vec![mutation]).await;
}

/// Commits `unit` and expects it refused as a conflict (and so undone whole).
pub async fn assert_unit_conflicts(s: &dyn Store, unit: Vec<Mutation>) {
    let results = s
        .commit(&[unit], &AuditAppend::default(), &no_replan)
        .await
        .unwrap();
    assert!(
        matches!(results.as_slice(), [Err(StoreError::Conflict(_))]),
        "{results:?}"
    );
}

/// A ready limited export of `tenant` by `requester`, with a stand-in ciphertext.
pub fn export_row(tenant: &str, id: &str, requester: &str) -> ExportRow {
    ExportRow {
        id: id.into(),
        tenant_id: tenant.into(),
        requester_id: requester.into(),
        kind: "records".into(),
        state: "ready".into(),
        manifest: "{}".into(),
        record_count: 1,
        ciphertext: Some(vec![5; 8]),
        created_at: 1,
        expires_at: i64::MAX,
        approved_by: None,
        approved_at: None,
    }
}
