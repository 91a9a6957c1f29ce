//! Rules that close paths found in review: staff cannot re-point a case at another contact, nobody
//! assigns a case to themselves, phone numbers are numbers, and parallel logins cannot outrun the
//! throttle.

use serde_json::json;

use crate::kit::*;

#[tokio::test]
async fn staff_cannot_relink_a_case_to_reach_another_contact() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let mine = create_contact(&boss, &tenant, json!({"name": "On The Case"})).await;
    let secret = create_contact(&boss, &tenant, json!({"name": "Somebody Else"})).await;
    let case = create_case(
        &boss,
        &tenant,
        json!({"title": "t", "contact_id": id_of(&mine)}),
    )
    .await;
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    assign(&supervisor, &tenant, &id_of(&case), &engineer.id).await;

    engineer
        .patch(
            &case_path(&tenant, &id_of(&case)),
            json!({"contact_id": id_of(&secret)}),
        )
        .await
        .err(403, "forbidden");
    engineer
        .get(&contact_path(&tenant, &id_of(&secret)))
        .await
        .err(403, "access_grant_required");
    let unchanged = boss.get(&case_path(&tenant, &id_of(&case))).await.ok(200);
    assert_eq!(
        unchanged["contact_id"].as_str(),
        Some(id_of(&mine).as_str())
    );
    // Status changes are still the engineer's to make.
    engineer
        .patch(
            &case_path(&tenant, &id_of(&case)),
            json!({"status": "pending"}),
        )
        .await
        .ok(200);
}

#[tokio::test]
async fn a_supervisor_cannot_assign_a_case_to_themselves() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let case = create_case(&boss, &tenant, json!({"title": "t"})).await;
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    supervisor
        .post(
            &format!("{}/assign", case_path(&tenant, &id_of(&case))),
            json!({"user_id": supervisor.id}),
        )
        .await
        .err(403, "forbidden");
    let after = boss.get(&case_path(&tenant, &id_of(&case))).await.ok(200);
    assert!(after["assignee_id"].is_null());
}

#[tokio::test]
async fn phone_numbers_must_be_numbers() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let refused = boss
        .post(
            &contacts_path(&tenant),
            json!({"name": "X", "phone": "ask for Maria"}),
        )
        .await;
    refused.err(422, "validation_failed");
    assert_eq!(refused.fields(), vec!["phone".to_owned()]);
    assert!(list_items(&boss, &contacts_path(&tenant)).await.is_empty());
    let ok = create_contact(
        &boss,
        &tenant,
        json!({"name": "X", "phone": "+1 (202) 555-0147"}),
    )
    .await;
    boss.patch(
        &contact_path(&tenant, &id_of(&ok)),
        json!({"phone": "call me"}),
    )
    .await
    .err(422, "validation_failed");
}

#[tokio::test]
async fn parallel_wrong_passwords_cannot_outrun_the_throttle() {
    let server = Server::start_with(&[("STRONGROOM_LOGIN_BACKOFF_BASE_MS", "60000")], &[]);
    let admin = server.admin().await;
    let user = create_user(&admin, "support_engineer", None).await;
    let attempts = (0..12).map(|_| {
        let api = server.anon();
        let username = user.username.clone();
        async move { login_attempt(&api, &username, "definitely not the password 42").await }
    });
    let answers = futures_join_all(attempts).await;
    let refused = answers.iter().filter(|r| r.status == 429).count();
    let guessed = answers.iter().filter(|r| r.status == 401).count();
    assert_eq!(refused + guessed, 12);
    assert!(
        guessed <= 3,
        "{guessed} password guesses got through before the throttle"
    );
}

/// Runs futures concurrently on the test's runtime (no extra dependency).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn what_a_write_answers_is_in_its_audit_entry() {
    let server = Server::start();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;
    let contact = create_contact(
        &boss,
        &tenant,
        json!({"name": "N", "email": "n@example.com"}),
    )
    .await;
    let log = boss
        .get(&format!("/v1/tenants/{tenant}/access-log?limit=500"))
        .await
        .ok(200);
    let entry = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["entry"])
        .find(|e| e["action"] == "contact.create" && e["resource"]["id"] == contact["id"])
        .expect("the create is in the tenant's access log");
    let disclosed = strings(&entry["fields_disclosed"]);
    for field in ["name", "email", "phone", "address", "notes"] {
        assert!(
            disclosed.contains(&field.to_owned()),
            "{field} not recorded: {entry}"
        );
    }
    assert_eq!(entry["decision"], "allow");
}
