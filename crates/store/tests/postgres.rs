//! The PostgreSQL store on a real server: row-level security, role checks, one audit sequence
//! across writers, leases (a stale audit head: `audit_head.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{entries, tenant};
use sqlx::{Connection, Executor, PgConnection, Row};
use strongroom_store::*;

fn contact(tenant_id: &str, id: &str) -> Mutation {
    Mutation::InsertContact(common::contact_row(tenant_id, id, 1))
}

/// A plain connection as the application role, in the test's schema.
async fn app_conn(schema: &str) -> PgConnection {
    let mut conn = PgConnection::connect(&common::app_url()).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!("SET search_path = {schema}")))
        .await
        .unwrap();
    conn
}

async fn visible_contacts(conn: &mut PgConnection, scope: Option<&str>) -> Vec<String> {
    let mut tx = conn.begin().await.unwrap();
    if let Some(scope) = scope {
        sqlx::query("SELECT set_config('strongroom.tenant', $1, true)")
            .bind(scope)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    // Deliberately no `WHERE tenant_id`: the policies alone must filter.
    let rows = sqlx::query("SELECT tenant_id || '/' || id AS k FROM contacts ORDER BY 1")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<String, _>("k")).collect()
}

#[tokio::test]
async fn row_level_security_shows_one_tenant_per_scope() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let store = common::open(&schema).await;
    let results = store
        .commit(
            &[vec![
                tenant("ta"),
                tenant("tb"),
                contact("ta", "c1"),
                contact("tb", "c2"),
            ]],
            &entries(0, 1),
            &no_replan,
        )
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let mut conn = app_conn(&schema).await;
    assert_eq!(visible_contacts(&mut conn, Some("ta")).await, ["ta/c1"]);
    assert_eq!(visible_contacts(&mut conn, Some("tb")).await, ["tb/c2"]);
    // The wrong scope and no scope at all both see nothing.
    assert!(visible_contacts(&mut conn, Some("tz")).await.is_empty());
    assert!(visible_contacts(&mut conn, None).await.is_empty());
    assert_eq!(
        visible_contacts(&mut conn, Some("*")).await,
        ["ta/c1", "tb/c2"]
    );

    // A write into another tenant than the scope is refused by WITH CHECK.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('strongroom.tenant', 'ta', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let smuggled = sqlx::query(
        "INSERT INTO contacts (tenant_id, id, name, created_at, updated_at) \
         VALUES ('tb', 'x', '\\x00', 1, 1)",
    )
    .execute(&mut *tx)
    .await;
    assert!(smuggled.is_err(), "a cross-tenant insert went through");
    drop(tx);

    // The store's own tenant-scoped reads go through the same policies.
    let a = TenantScope::new("ta");
    assert!(store.contact(&a, "c1").await.unwrap().is_some());
    assert!(store.contact(&a, "c2").await.unwrap().is_none());
    store.close().await;
    common::drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn every_tenant_table_has_row_level_security() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let store = common::open(&schema).await;
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_attribute a \
         WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
         ORDER BY 1",
    )
    .bind(&schema)
    .fetch_all(&admin)
    .await
    .unwrap();
    // Platform records that name a tenant without holding its data.
    let exempt = ["access_review_lines", "tenant_shreds", "users"];
    for (table, enabled, forced) in &rows {
        if exempt.contains(&table.as_str()) {
            continue;
        }
        assert!(
            *enabled && *forced,
            "{table} lacks forced row-level security"
        );
    }
    assert!(rows.len() > exempt.len() + 5, "{rows:?}");
    store.close().await;
    common::drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn refuses_a_role_that_bypasses_row_level_security() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let mut options = common::options(&schema);
    options.url = common::admin_url();
    let err = PgStore::open(&options).await.err().expect("must refuse");
    let text = err.to_string();
    assert!(text.contains("BYPASSRLS"), "{text}");
    common::drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error_without_the_password() {
    let mut options = common::options("public");
    options.url = "postgres://someone:s3cret-canary@127.0.0.1:1/test".into();
    options.acquire_timeout = std::time::Duration::from_secs(2);
    let err = PgStore::open(&options).await.err().expect("must fail");
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to PostgreSQL at 127.0.0.1:1/test"),
        "{text}"
    );
    assert!(!text.contains("s3cret-canary"), "{text}");
    assert!(!format!("{options:?}").contains("s3cret-canary"));
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let store = common::open(&schema).await;
    assert!(store.try_lease("job", "a", 100, 200).await.unwrap());
    assert!(!store.try_lease("job", "b", 150, 250).await.unwrap());
    assert!(
        store.try_lease("job", "a", 150, 250).await.unwrap(),
        "renewal"
    );
    assert!(!store.try_lease("job", "b", 249, 349).await.unwrap());
    assert!(
        store.try_lease("job", "b", 250, 350).await.unwrap(),
        "takeover"
    );
    assert!(!store.try_lease("job", "a", 260, 360).await.unwrap());
    store.close().await;
    common::drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn refuses_a_missing_schema_and_a_newer_database() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let missing = common::options("sr_store_does_not_exist");
    let err = PgStore::open(&missing).await.err().expect("must refuse");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let schema = common::schema(&admin).await;
    common::open(&schema).await.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}._sqlx_migrations (version, description, success, checksum, \
         execution_time) VALUES (9999, 'from the future', true, '\\x00', 0)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let err = PgStore::open(&common::options(&schema))
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("newer strongroom"), "{err}");
    common::drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn commits_wait_for_the_wal_whatever_the_url_asks() {
    let Some(admin) = common::admin().await else {
        return;
    };
    let schema = common::schema(&admin).await;
    let mut options = common::options(&schema);
    // A role or URL default of `synchronous_commit = off` would acknowledge entries a crash can
    // lose; the store's own session setting overrides it, or its start-up check refuses.
    let url = common::app_url();
    let joiner = if url.contains('?') { '&' } else { '?' };
    options.url = format!("{url}{joiner}options=-c%20synchronous_commit%3Doff");
    let store = PgStore::open(&options).await.expect("opens, overriding");
    store.close().await;
    common::drop_schema(&admin, &schema).await;
}
