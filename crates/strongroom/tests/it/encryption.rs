//! Encryption at rest: unique canaries in every field must round-trip
//! through the API and never appear in any byte on disk or in the output.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::kit::*;

/// Unique marker values; everything written to the server is registered.
#[derive(Default)]
struct Canaries(Vec<String>);

impl Canaries {
    fn mark(&mut self, tag: &str) -> String {
        let c = format!("CANARY-{}-{tag}", rand_hex(8));
        self.0.push(c.clone());
        c
    }

    /// Phone numbers must be digits and separators: 16 random digits are as unique as a hex canary.
    fn phone(&mut self) -> String {
        let digits: String = rand_hex(16)
            .chars()
            .map(|c| char::from(b'0' + (c.to_digit(16).unwrap_or(0) % 10) as u8))
            .collect();
        let c = format!("+99 {digits}");
        self.0.push(digits);
        c
    }

    /// Emails stay lowercase (a blind index may normalise case).
    fn email(&mut self, tag: &str) -> String {
        let local = format!("canary-{}-{tag}", rand_hex(8));
        self.0.push(local.clone());
        format!("{local}@example.com")
    }

    /// Every form we look for: as is, lower/upper case, hex of the UTF-8
    /// bytes (both cases), and base64 (standard, URL-safe) at offset 0.
    fn needles(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for c in &self.0 {
            let whole = &c.as_bytes()[..c.len() / 3 * 3];
            let forms = [
                ("plain", c.clone()),
                ("lowercase", c.to_lowercase()),
                ("uppercase", c.to_uppercase()),
                ("hex", hex::encode(c)),
                ("HEX", hex::encode_upper(c)),
                (
                    "base64",
                    base64::engine::general_purpose::STANDARD.encode(whole),
                ),
                (
                    "base64url",
                    base64::engine::general_purpose::URL_SAFE.encode(whole),
                ),
            ];
            for (kind, form) in forms {
                // Forms can coincide (e.g. base64 without '+' or '/'): keep one.
                if !out
                    .iter()
                    .any(|(_, f): &(String, Vec<u8>)| f == form.as_bytes())
                {
                    out.push((format!("{c} ({kind})"), form.into_bytes()));
                }
            }
        }
        out
    }
}

/// Finds any needle in `bytes` (needles indexed by first byte, one pass).
fn find_needles<'a>(bytes: &[u8], needles: &'a [(String, Vec<u8>)]) -> Vec<&'a str> {
    let mut by_first: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, (_, n)) in needles.iter().enumerate() {
        by_first[usize::from(n[0])].push(i);
    }
    let mut found = Vec::new();
    for pos in 0..bytes.len() {
        for &i in &by_first[usize::from(bytes[pos])] {
            let n = &needles[i].1;
            if bytes[pos..].starts_with(n) && !found.contains(&needles[i].0.as_str()) {
                found.push(needles[i].0.as_str());
            }
        }
    }
    found
}

fn scan(paths: &[PathBuf], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).unwrap_or_default();
        for hit in find_needles(&bytes, needles) {
            leaks.push(format!("{}: {hit}", path.display()));
        }
    }
    leaks
}

#[test]
fn scanner_finds_what_it_should() {
    let mut c = Canaries::default();
    let a = c.mark("x");
    let needles = c.needles();
    let hex_form = hex::encode(&a);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{a} and more"));
    assert_eq!(
        find_needles(format!("..{a}..").as_bytes(), &needles).len(),
        1
    );
    assert_eq!(find_needles(a.to_lowercase().as_bytes(), &needles).len(), 1);
    assert_eq!(find_needles(hex_form.as_bytes(), &needles).len(), 1);
    assert_eq!(find_needles(b64.as_bytes(), &needles).len(), 1);
    assert!(find_needles(b"CANARY-", &needles).is_empty());
}

fn assert_fields(got: &Value, want: &Value) {
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&got[k], v, "field {k} did not round-trip: {got}");
    }
}

#[tokio::test]
async fn no_plaintext_at_rest_or_in_logs() {
    let server = Server::start();
    let mut c = Canaries::default();
    let admin = server.admin().await;
    let tenant = create_tenant(&admin, None).await;
    let boss = tenant_session(&server, &admin, "tenant_admin", &tenant).await;

    // Contacts: one kept, one updated, one deleted.
    let mut contact_ids = Vec::new();
    let mut emails = Vec::new();
    for n in 0..3 {
        let email = c.email(&format!("email{n}"));
        let fields = json!({
            "name": c.mark(&format!("name{n}")),
            "email": email,
            "phone": c.phone(),
            "address": c.mark(&format!("address{n}")),
            "notes": c.mark(&format!("notes{n}")),
        });
        let created = create_contact(&boss, &tenant, fields.clone()).await;
        assert_fields(&created, &fields);
        let id = id_of(&created);
        let read = boss.get(&contact_path(&tenant, &id)).await.ok(200);
        assert_fields(&read, &fields);
        contact_ids.push(id);
        emails.push(email);
    }
    let update = json!({"name": c.mark("name-updated"), "notes": c.mark("notes-updated"),
                        "email": c.email("email-updated")});
    let patched = boss
        .patch(&contact_path(&tenant, &contact_ids[1]), update.clone())
        .await
        .ok(200);
    assert_fields(&patched, &update);
    let read = boss
        .get(&contact_path(&tenant, &contact_ids[1]))
        .await
        .ok(200);
    assert_fields(&read, &update);
    boss.delete(&contact_path(&tenant, &contact_ids[2]))
        .await
        .ok(204);

    // Search through the blind index.
    let found = list_items(
        &boss,
        &format!("{}?email={}", contacts_path(&tenant), urlencode(&emails[0])),
    )
    .await;
    assert_eq!(found.len(), 1, "search by email: {found:?}");
    assert_eq!(id_of(&found[0]), contact_ids[0]);
    let updated_email = update["email"].as_str().unwrap();
    let found = list_items(
        &boss,
        &format!(
            "{}?email={}",
            contacts_path(&tenant),
            urlencode(updated_email)
        ),
    )
    .await;
    assert_eq!(found.len(), 1, "search by the updated email: {found:?}");
    assert_eq!(id_of(&found[0]), contact_ids[1]);

    // Cases and comments.
    let case_fields = json!({
        "title": c.mark("title"),
        "description": c.mark("description"),
        // `product` is metadata (API.md field classes), not content: not a canary.
        "product": "Analytical Engine",
        "contact_id": contact_ids[0],
    });
    let case = create_case(&boss, &tenant, case_fields.clone()).await;
    assert_fields(&case, &case_fields);
    let case_id = id_of(&case);
    let desc = json!({"description": c.mark("description-updated")});
    let patched = boss
        .patch(&case_path(&tenant, &case_id), desc.clone())
        .await
        .ok(200);
    assert_fields(&patched, &desc);
    let read = boss.get(&case_path(&tenant, &case_id)).await.ok(200);
    assert_fields(
        &read,
        &json!({"title": case_fields["title"], "description": desc["description"]}),
    );
    let mut bodies = Vec::new();
    for n in 0..2 {
        let body = c.mark(&format!("comment{n}"));
        let comment = add_comment(&boss, &tenant, &case_id, &body).await;
        assert_eq!(comment["body"].as_str(), Some(body.as_str()));
        bodies.push(body);
    }
    let listed: Vec<String> = list_items(&boss, &comments_path(&tenant, &case_id))
        .await
        .iter()
        .filter_map(|v| v["body"].as_str().map(str::to_owned))
        .collect();
    for b in &bodies {
        assert!(listed.contains(b), "comment {b} not listed: {listed:?}");
    }

    // A staff reader exercises the masking paths too.
    let supervisor = staff_session(&server, &admin, "support_supervisor").await;
    let engineer = staff_session(&server, &admin, "support_engineer").await;
    assign(&supervisor, &tenant, &case_id, &engineer.id).await;
    engineer.get(&case_path(&tenant, &case_id)).await.ok(200);
    engineer
        .get(&contact_path(&tenant, &contact_ids[0]))
        .await
        .ok(200);

    // Personal data sent where an id belongs is answered like any unknown id, and the audit
    // entry of that refusal does not keep it (the scans below cover the log's rows).
    let misplaced = c.email("in-place-of-an-id");
    boss.get(&contact_path(&tenant, &misplaced))
        .await
        .err(404, "not_found");
    boss.get(&case_path(&tenant, &misplaced))
        .await
        .err(404, "not_found");
    let file = format!("{}/{misplaced}", attachments_path(&tenant, &case_id));
    for path in [file.clone(), format!("{file}/content")] {
        boss.get(&path).await.err(404, "not_found");
    }

    let needles = c.needles();
    // While running: the database, its WAL/SHM (on PostgreSQL: every row of the server's
    // schema, see Server::at_rest_files) and the logs.
    let files = server.at_rest_files().await;
    let store = if on_postgres() {
        "pg-dump-"
    } else {
        "strongroom.db"
    };
    assert!(
        files.iter().any(|p| p.to_string_lossy().contains(store)),
        "no database file among {files:?}"
    );
    let leaks = scan(&files, &needles);
    assert!(
        leaks.is_empty(),
        "plaintext on disk while running:\n{}",
        leaks.join("\n")
    );

    // Open client connections would hold up the graceful stop.
    drop((boss, admin, supervisor, engineer));
    let status = server.stop().await;
    assert!(status.success(), "exit after SIGTERM: {status}");
    let files = server.at_rest_files().await;
    let leaks = scan(&files, &needles);
    assert!(
        leaks.is_empty(),
        "plaintext on disk after stop:\n{}",
        leaks.join("\n")
    );
    let output = [server.stderr_path.clone(), server.stdout_path.clone()];
    let leaks = scan(&output, &needles);
    assert!(
        leaks.is_empty(),
        "plaintext in the process output:\n{}",
        leaks.join("\n")
    );
    assert!(
        !server.stderr().trim().is_empty(),
        "stderr is empty: the log scan would prove nothing"
    );
}
