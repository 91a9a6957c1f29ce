//! `--demo`: two tenants, one user of every role, a few contacts and cases — all created through the
//! service layer like any other client would.

use anyhow::{Result, anyhow};
use base64::Engine;
use strongroom_core::model::{
    Acknowledgement, Assignment, CaseInput, ContactInput, Credentials, NewTenant, NewUser, Purpose,
};
use strongroom_core::{Principal, RequestContext, Vault};

fn password() -> Result<String> {
    let bytes: [u8; 15] = strongroom_crypto::random_bytes().map_err(|e| anyhow!("random: {e}"))?;
    Ok(format!(
        "demo-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

fn ctx(purpose: Option<Purpose>) -> RequestContext {
    RequestContext {
        request_id: "demo".into(),
        purpose,
        justification: Some("demo data set".into()),
    }
}

async fn login(vault: &Vault, username: &str, password: &str) -> Result<Principal> {
    let response = vault
        .login(
            Credentials {
                username: username.into(),
                password: password.into(),
                totp: None,
            },
            "demo",
        )
        .await
        .map_err(|e| anyhow!("demo login {username}: {e}"))?;
    vault
        .authenticate(&response.token)
        .await
        .map_err(|e| anyhow!("demo session: {e}"))
}

pub async fn load(vault: &Vault, admin_password: &str) -> Result<()> {
    let err = |e: strongroom_core::ServiceError| anyhow!("demo data: {e}");
    let admin = login(vault, "admin", admin_password).await?;
    let mut credentials = Vec::new();
    let mut staff = Vec::new();
    for role in [
        "support_engineer",
        "support_supervisor",
        "security_officer",
        "auditor",
        "marketing",
    ] {
        let username = format!("demo.{}", role.replace('_', "."));
        let pw = password()?;
        let user = vault
            .create_user(
                &admin,
                &ctx(None),
                NewUser {
                    username: username.clone(),
                    display_name: format!("Demo {role}"),
                    password: pw.clone(),
                    roles: vec![role.into()],
                    tenant_id: None,
                },
            )
            .await
            .map_err(err)?;
        credentials.push((username.clone(), pw.clone(), role.to_owned()));
        staff.push((role, user.id, username, pw));
    }
    let version = vault.agreement().version;
    for (_, _, username, pw) in &staff {
        let p = login(vault, username, pw).await?;
        vault
            .acknowledge_confidentiality(
                &p,
                &ctx(None),
                Acknowledgement {
                    version: version.clone(),
                },
            )
            .await
            .map_err(err)?;
    }
    let engineer_id = staff.first().map(|s| s.1.clone()).unwrap_or_default();
    let supervisor = match staff.get(1) {
        Some((_, _, u, pw)) => login(vault, u, pw).await?,
        None => return Err(anyhow!("demo supervisor missing")),
    };

    for (name, slug) in [("Acme Logistics", "acme"), ("Globex Health", "globex")] {
        let tenant = vault
            .create_tenant(
                &admin,
                &ctx(None),
                NewTenant {
                    name: name.into(),
                    instructions: Default::default(),
                },
            )
            .await
            .map_err(err)?;
        let mut tenant_admin = None;
        for role in ["tenant_admin", "tenant_user"] {
            let username = format!("{slug}.{}", role.trim_start_matches("tenant_"));
            let pw = password()?;
            vault
                .create_user(
                    &admin,
                    &ctx(None),
                    NewUser {
                        username: username.clone(),
                        display_name: format!("{name} {role}"),
                        password: pw.clone(),
                        roles: vec![role.into()],
                        tenant_id: Some(tenant.id.clone()),
                    },
                )
                .await
                .map_err(err)?;
            if role == "tenant_admin" {
                tenant_admin = Some(login(vault, &username, &pw).await?);
            }
            credentials.push((username, pw, format!("{role} of {name}")));
        }
        let Some(customer) = tenant_admin else {
            continue;
        };
        let purpose = ctx(Some(Purpose::CustomerSelfService));
        for (i, (person, email, phone)) in [
            ("Ada Lovelace", "ada@example.com", "+44 20794 60123"),
            ("Grace Hopper", "grace@example.com", "+1 202 555 0147"),
        ]
        .iter()
        .enumerate()
        {
            let contact = vault
                .create_contact(
                    &customer,
                    &purpose,
                    &tenant.id,
                    ContactInput {
                        name: Some((*person).into()),
                        email: Some(format!("{slug}.{email}")),
                        phone: Some((*phone).into()),
                        address: Some("1 Example Street, Example City".into()),
                        notes: Some("Prefers email. Account number on file.".into()),
                    },
                )
                .await
                .map_err(err)?;
            let contact_id = contact
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let case = vault
                .create_case(
                    &customer,
                    &purpose,
                    &tenant.id,
                    CaseInput {
                        title: Some(format!("Export job fails nightly (#{})", i + 1)),
                        description: Some(
                            "The nightly export stops with error 42 after the upgrade.".into(),
                        ),
                        severity: Some(if i == 0 { "high" } else { "medium" }.into()),
                        status: None,
                        product: Some("vault-sync".into()),
                        contact_id: Some(contact_id),
                    },
                )
                .await
                .map_err(err)?;
            if i == 0 {
                let case_id = case.get("id").and_then(|v| v.as_str()).unwrap_or_default();
                vault
                    .assign_case(
                        &supervisor,
                        &ctx(Some(Purpose::CaseResolution)),
                        &tenant.id,
                        case_id,
                        Assignment {
                            user_id: engineer_id.clone(),
                        },
                    )
                    .await
                    .map_err(err)?;
            }
        }
    }
    eprintln!("strongroom: demo data loaded; demo credentials (shown once):");
    for (username, pw, role) in credentials {
        eprintln!("  {username:<28} {pw}  ({role})");
    }
    Ok(())
}
