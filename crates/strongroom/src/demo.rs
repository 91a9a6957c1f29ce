//! `--demo`: two tenants, one user of every role, a few contacts and cases — all created through the
//! service layer like any other client would.

use anyhow::{Result, anyhow};
use base64::Engine;
use strongroom_core::model::{
    Acknowledgement, Assignment, CaseInput, ContactInput, Credentials, NewTenant, NewUser, Purpose,
    TotpConfirmation,
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
        justification: Some("demo-2026".into()),
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
            None,
        )
        .await
        .map_err(|e| anyhow!("demo login {username}: {e}"))?;
    if response.mfa_enrolment_required {
        enrol_totp(vault, username, &response.token).await?;
    }
    vault
        .authenticate(&response.token, "demo")
        .await
        .map_err(|e| anyhow!("demo session: {e}"))
}

/// Demo accounts that must have a second factor get one, so the loader can act as them; the seed is
/// printed once with the other demo credentials, for an authenticator app.
async fn enrol_totp(vault: &Vault, username: &str, token: &str) -> Result<()> {
    let err = |e: strongroom_core::ServiceError| anyhow!("demo enrolment {username}: {e}");
    let p = vault
        .authenticate_for_enrolment(token, "demo")
        .await
        .map_err(err)?;
    let started = vault
        .start_totp_enrolment(&p, &ctx(None))
        .await
        .map_err(err)?;
    let seed = strongroom_core::auth::totp::decode_base32(&started.secret)
        .ok_or_else(|| anyhow!("demo enrolment {username}: seed"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let code = strongroom_core::auth::totp::code_at(&seed, now).map_err(err)?;
    vault
        .confirm_totp_enrolment(&p, &ctx(None), TotpConfirmation { code })
        .await
        .map_err(err)?;
    eprintln!(
        "strongroom: demo TOTP seed of {username} (shown once): {}",
        started.secret
    );
    Ok(())
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
    // One login per account: with a second factor, a second password-only login would be refused.
    let mut sessions = Vec::with_capacity(staff.len());
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
        let mut p = p;
        p.confidentiality_version = Some(version.clone());
        sessions.push(p);
    }
    let engineer_id = staff.first().map(|s| s.1.clone()).unwrap_or_default();
    let supervisor = match sessions.get(1) {
        Some(p) => p.clone(),
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
