//! Cases and contacts are rewritten whole, so an update must apply only to the version its
//! request read: otherwise a request that read a case before it was reassigned writes the old
//! assignee back (and with it the old assignee's reach to the case's contact), and a contact
//! update silently undoes another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use strongroom_store::*;

mod common;

use common::{apply, assert_conflict, assert_unit_conflicts};

const T: &str = "t1";

#[tokio::test]
async fn a_case_update_applies_only_to_the_version_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("db"), Duration::from_secs(5))
        .await
        .unwrap();
    stale_updates_are_refused(&sqlite).await;
    stale_contact_writes_are_refused(&sqlite).await;
    stale_tenant_writes_are_refused(&sqlite).await;
    open_requests_are_checked_inside_the_commit(&sqlite).await;
    comments_need_their_case(&sqlite).await;
    access_requests_need_their_case(&sqlite).await;
    files_need_their_case_and_go_once(&sqlite).await;
    exports_need_the_access_they_were_built_under(&sqlite).await;
    the_last_platform_admin_is_kept(&sqlite).await;
    root_rotation_applies_only_to_what_it_read(&sqlite).await;
    assignments_follow_the_assignees_roles(&sqlite).await;
    the_watch_moves_on_only_from_where_it_read(&sqlite).await;
    if let Some(admin) = common::admin().await {
        let schema = common::schema(&admin).await;
        let pg = common::open(&schema).await;
        stale_updates_are_refused(&pg).await;
        stale_contact_writes_are_refused(&pg).await;
        stale_tenant_writes_are_refused(&pg).await;
        open_requests_are_checked_inside_the_commit(&pg).await;
        comments_need_their_case(&pg).await;
        access_requests_need_their_case(&pg).await;
        files_need_their_case_and_go_once(&pg).await;
        exports_need_the_access_they_were_built_under(&pg).await;
        the_last_platform_admin_is_kept(&pg).await;
        root_rotation_applies_only_to_what_it_read(&pg).await;
        assignments_follow_the_assignees_roles(&pg).await;
        the_watch_moves_on_only_from_where_it_read(&pg).await;
        pg.close().await;
        common::drop_schema(&admin, &schema).await;
    }
}

async fn stale_updates_are_refused(s: &dyn Store) {
    let read = case(Some("p1"), Some("alice"), 10);
    apply(s, vec![common::tenant(T), contact("p1"), contact("p2")]).await;
    apply(s, vec![Mutation::InsertCase(read.clone())]).await;

    // The case is reassigned to bob after `read` was taken.
    let reassigned = case(Some("p1"), Some("bob"), 20);
    apply(s, vec![update(reassigned, &read)]).await;

    // An update built from the old read (a status change) would write alice back: refused.
    let mut stale = read.clone();
    stale.status = "closed".into();
    stale.updated_at = 30;
    assert_conflict(s, update(stale, &read)).await;
    // A relink built from an old read is refused the same way, whatever else it keeps.
    let mut relinked = case(Some("p2"), Some("bob"), 10);
    relinked.updated_at = 30;
    assert_conflict(s, update(relinked, &read)).await;

    // The contact it read is deleted meanwhile (which unlinks the case): a conflict like any
    // other change, not a missing reference.
    let mut linked = case(Some("p2"), Some("bob"), 20);
    linked.id = "c2".into();
    apply(s, vec![Mutation::InsertCase(linked.clone())]).await;
    apply(
        s,
        vec![Mutation::DeleteContact {
            scope: TenantScope::new(T),
            id: "p2".into(),
        }],
    )
    .await;
    let mut late = linked.clone();
    late.status = "closed".into();
    late.updated_at = 30;
    assert_conflict(s, update(late, &linked)).await;

    let now = current(s).await;
    assert_eq!(now.assignee_id.as_deref(), Some("bob"));
    assert_eq!(now.contact_id.as_deref(), Some("p1"));
    assert_eq!((now.status.as_str(), now.updated_at), ("open", 20));

    // Built from the current version, the same change applies.
    let mut fresh = now.clone();
    fresh.status = "closed".into();
    fresh.updated_at = 40;
    apply(s, vec![update(fresh, &now)]).await;
    let after = current(s).await;
    assert_eq!((after.status.as_str(), after.updated_at), ("closed", 40));
    assert_eq!(after.assignee_id.as_deref(), Some("bob"));
}

async fn stale_contact_writes_are_refused(s: &dyn Store) {
    let scope = TenantScope::new(T);
    let mut first = common::contact_row(T, "p3", 10);
    apply(s, vec![Mutation::InsertContact(first.clone())]).await;
    // Another request updated p3 after this one read it (at 10).
    let mut other = first.clone();
    other.notes = Some(vec![2; 8]);
    other.updated_at = 20;
    apply(
        s,
        vec![Mutation::UpdateContact {
            row: other,
            read_updated_at: 10,
        }],
    )
    .await;
    first.name = vec![3; 8];
    first.updated_at = 30;
    assert_conflict(
        s,
        Mutation::UpdateContact {
            row: first,
            read_updated_at: 10,
        },
    )
    .await;
    let now = s.contact(&scope, "p3").await.unwrap().unwrap();
    assert_eq!((now.notes, now.updated_at), (Some(vec![2; 8]), 20));

    // Deleting a contact that is gone is a conflict, not a silent success.
    let delete = || Mutation::DeleteContact {
        scope: TenantScope::new(T),
        id: "p3".into(),
    };
    apply(s, vec![delete()]).await;
    assert_conflict(s, delete()).await;
    assert!(s.contact(&scope, "p3").await.unwrap().is_none());
}

async fn stale_tenant_writes_are_refused(s: &dyn Store) {
    // `common::tenant` inserts at updated_at 1. An admin tightens the instructions ...
    let tightened = TenantRow {
        id: T.into(),
        name: "t".into(),
        status: "active".into(),
        instructions: r#"{"operator_access_requires_approval":true}"#.into(),
        created_at: 1,
        updated_at: 2,
    };
    let rewrite = |row: TenantRow, read_updated_at| Mutation::UpdateTenant {
        row,
        read_updated_at,
    };
    apply(s, vec![rewrite(tightened.clone(), 1)]).await;
    // ... and a change built from the copy read before cannot loosen them again.
    let mut stale = tightened.clone();
    stale.instructions = r#"{"operator_access_requires_approval":false}"#.into();
    stale.updated_at = 3;
    assert_conflict(s, rewrite(stale, 1)).await;
    let now = s.tenant(T).await.unwrap().unwrap();
    assert_eq!(
        (now.instructions, now.updated_at),
        (tightened.instructions, 2)
    );
}

/// A tenant user may re-point a case only while nobody has operator access to it pending or
/// open; a request filed between that check and the commit must make the relink a conflict.
async fn open_requests_are_checked_inside_the_commit(s: &dyn Store) {
    const NOW: i64 = 1_000;
    let scope = TenantScope::new(T);
    let mut case = case(None, None, 50);
    case.id = "c3".into();
    apply(s, vec![Mutation::InsertCase(case.clone())]).await;
    for requester in ["eve", "mallory"] {
        apply(s, vec![Mutation::InsertUser(common::user_row(requester))]).await;
    }
    let guard = || Mutation::RequireNoOpenRequest {
        scope: scope.clone(),
        case_id: "c3".into(),
        at: NOW,
    };
    // Requests that ended (a refusal, a grant past its end) leave the case free.
    for (id, state, window) in [("r1", "denied", None), ("r2", "approved", Some((0, NOW)))] {
        let ended = common::access_request(T, id, "c3", "eve", state, window);
        apply(s, vec![common::insert_request(ended)]).await;
    }
    assert!(
        s.case_open_requesters(&scope, "c3", NOW)
            .await
            .unwrap()
            .is_empty()
    );
    apply(s, vec![guard()]).await;

    // A pending request and an open grant, by two engineers.
    let pending = common::access_request(T, "r3", "c3", "mallory", "pending", None);
    let open = common::access_request(T, "r4", "c3", "eve", "approved", Some((0, NOW + 1)));
    apply(s, vec![common::insert_request(pending)]).await;
    apply(s, vec![common::insert_request(open)]).await;
    assert_eq!(
        s.case_open_requesters(&scope, "c3", NOW).await.unwrap(),
        vec!["eve".to_owned(), "mallory".to_owned()]
    );
    let mut relinked = case.clone();
    relinked.contact_id = Some("p1".into());
    relinked.updated_at = 60;
    assert_unit_conflicts(s, vec![update(relinked, &case), guard()]).await;
    let now = s.case(&scope, "c3").await.unwrap().unwrap();
    assert_eq!(now.contact_id, None, "the relink is undone whole");
}

/// A comment committed after its case was purged would outlive the tenant's retention.
async fn comments_need_their_case(s: &dyn Store) {
    let scope = TenantScope::new(T);
    let comment = |id: &str, case_id: &str| {
        Mutation::InsertComment(CommentRow {
            tenant_id: T.into(),
            id: id.into(),
            case_id: case_id.into(),
            author_id: "alice".into(),
            body: vec![4; 8],
            created_at: 1,
        })
    };
    apply(s, vec![comment("m1", "c1")]).await;
    assert_conflict(s, comment("m2", "purged")).await;
    let page = s.comments(&scope, "c1", None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["m1"]
    );
    assert!(
        s.comments(&scope, "purged", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A request committed after its case was purged would keep its sealed justification past the
/// tenant's retention.
async fn access_requests_need_their_case(s: &dyn Store) {
    let scope = TenantScope::new(T);
    let orphan = common::access_request(T, "r9", "purged", "eve", "pending", None);
    assert_conflict(s, common::insert_request(orphan)).await;
    assert!(s.access_request(&scope, "r9").await.unwrap().is_none());
}

/// A file goes onto a case that still exists, and is deleted once: a second deletion (a
/// request that read the file before another removed it) is a conflict, and only that file goes.
async fn files_need_their_case_and_go_once(s: &dyn Store) {
    let scope = TenantScope::new(T);
    let file = |id: &str, case_id: &str| Mutation::InsertAttachment {
        row: AttachmentRow {
            tenant_id: T.into(),
            id: id.into(),
            case_id: case_id.into(),
            uploaded_by: "alice".into(),
            name: vec![6; 8],
            media_type: "text/plain".into(),
            size: 3,
            scanner: "builtin".into(),
            scanned_at: 1,
            created_at: 1,
        },
        // A sealed-content header: format byte, then the key version.
        content: vec![1, 0, 0, 0, 1, 9, 9, 9],
    };
    apply(s, vec![file("f1", "c1"), file("f2", "c1")]).await;
    assert_conflict(s, file("f3", "purged")).await;
    let delete = |id: &str, case_id: &str| Mutation::DeleteAttachment {
        scope: TenantScope::new(T),
        case_id: case_id.into(),
        id: id.into(),
    };
    // Named under another case, the file is not deleted.
    assert_conflict(s, delete("f1", "purged")).await;
    apply(s, vec![delete("f1", "c1")]).await;
    assert_conflict(s, delete("f1", "c1")).await;
    assert!(s.attachment(&scope, "c1", "f1").await.unwrap().is_none());
    assert!(
        s.attachment_content(&scope, "c1", "f1")
            .await
            .unwrap()
            .is_none()
    );
    let left = s.attachments(&scope, "c1", None, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["f2"]
    );
}

/// An export gathered while its requester's access was being withdrawn must not be inserted
/// after the withdrawal expired their exports.
async fn exports_need_the_access_they_were_built_under(s: &dyn Store) {
    let scope = TenantScope::new(T);
    apply(s, vec![Mutation::InsertUser(common::user_row("eng"))]).await;
    let epoch = s.user("eng").await.unwrap().unwrap().access_epoch;
    let version = s.tenant(T).await.unwrap().unwrap().updated_at;
    let export = |id: &str| common::export_row(T, id, "eng");
    let insert = |id: &str, access_epoch| Mutation::InsertExport {
        row: export(id),
        record_ids: None,
        access_epoch,
        tenant_version: version,
        quota: None,
        without_approval: None,
    };
    apply(s, vec![insert("x1", epoch)]).await;
    // A grant is revoked: the export already made goes, and so does one still being built.
    let withdraw = Mutation::ExpireUserExports {
        user_id: "eng".into(),
        scope: Some(scope.clone()),
    };
    apply(s, vec![withdraw]).await;
    assert_conflict(s, insert("x2", epoch)).await;
    let now = s.user("eng").await.unwrap().unwrap().access_epoch;
    assert_eq!(now, epoch + 1);
    apply(s, vec![insert("x3", now)]).await;
    let mut states = Vec::new();
    for id in ["x1", "x2", "x3"] {
        states.push(s.export(&scope, id).await.unwrap().map(|e| e.state));
    }
    assert_eq!(
        states,
        [Some("expired".to_owned()), None, Some("ready".to_owned())]
    );

    // Two exports that each passed the quota check before either committed: the second is
    // refused inside the commit (two records exported since 0 already, at most three a day).
    let quota = Some(ExportQuota { since: 0, limit: 3 });
    let within = |id: &str| Mutation::InsertExport {
        row: export(id),
        record_ids: None,
        access_epoch: now,
        tenant_version: version,
        quota,
        without_approval: None,
    };
    apply(s, vec![within("x4")]).await;
    assert_conflict(s, within("x5")).await;
    assert!(s.export(&scope, "x5").await.unwrap().is_none());

    // The tenant tightens its instructions: its open exports go, and one built under the
    // instructions before is not inserted.
    let before = Mutation::InsertExport {
        row: export("x6"),
        record_ids: None,
        access_epoch: now,
        tenant_version: version - 1,
        quota: None,
        without_approval: None,
    };
    assert_conflict(s, before).await;

    // Two exports each under the approval threshold, built at once: together they would pass
    // it without a second person, so the second is refused inside the commit. One waiting for
    // approval is not bound by it.
    let used = s
        .records_exported_without_approval_since("eng", 0)
        .await
        .unwrap();
    let unapproved = |id: &str, state: &str| {
        let mut row = export(id);
        row.state = state.into();
        Mutation::InsertExport {
            row,
            record_ids: None,
            access_epoch: now,
            tenant_version: version,
            quota: None,
            without_approval: Some(ExportQuota {
                since: 0,
                limit: used + 1,
            }),
        }
    };
    apply(s, vec![unapproved("x7", "ready")]).await;
    assert_conflict(s, unapproved("x8", "ready")).await;
    apply(s, vec![unapproved("x9", "pending_approval")]).await;
    assert_eq!(
        s.records_exported_without_approval_since("eng", 0)
            .await
            .unwrap(),
        used + 1
    );

    apply(
        s,
        vec![Mutation::ExpireTenantExports {
            scope: scope.clone(),
        }],
    )
    .await;
    let x4 = s.export(&scope, "x4").await.unwrap();
    assert_eq!(x4.as_ref().map(|e| e.state.as_str()), Some("expired"));
    assert!(x4.is_some_and(|e| e.ciphertext.is_none()));
    // The export that waited for approval expired without it: it never left, and still does
    // not count among the records exported without approval.
    assert_eq!(
        s.records_exported_without_approval_since("eng", 0)
            .await
            .unwrap(),
        used + 1
    );
}

/// Two administrators suspending each other at once both pass the check made before the batch;
/// the one inside it keeps the second.
async fn the_last_platform_admin_is_kept(s: &dyn Store) {
    for id in ["ada", "bob"] {
        let mut admin = common::user_row(id);
        admin.roles = "platform_admin,auditor".into();
        apply(s, vec![Mutation::InsertUser(admin)]).await;
    }
    let suspend = |id: &str| {
        vec![
            Mutation::SetUserStatus {
                user_id: id.into(),
                status: "suspended".into(),
                reason: Some("other".into()),
                at: 2,
            },
            Mutation::KeepAnotherPlatformAdmin { user_id: id.into() },
        ]
    };
    apply(s, suspend("bob")).await;
    assert_unit_conflicts(s, suspend("ada")).await;
    let ada = s.user("ada").await.unwrap().unwrap();
    assert_eq!(ada.status, "active", "the suspension is undone whole");
}

/// Root-key rotation rewraps and re-seals what it read, and only if nothing was added since: a
/// key or second factor changed or added meanwhile (another instance on the store) would stay
/// under the old root, unreadable once it is gone. Each makes the rotation a conflict, undone whole.
async fn root_rotation_applies_only_to_what_it_read(s: &dyn Store) {
    apply(s, vec![Mutation::InsertUser(common::user_row("tia"))]).await;
    let key = TenantKeyRow {
        tenant_id: T.into(),
        version: 90,
        wrapped: vec![1; 8],
        created_at: 1,
    };
    apply(s, vec![Mutation::InsertTenantKey(key)]).await;
    let begin = Mutation::BeginTotp {
        user_id: "tia".into(),
        secret: vec![3; 8],
        at: 1,
    };
    apply(s, vec![begin]).await;
    let keys = i64::try_from(s.all_tenant_keys().await.unwrap().len()).unwrap();
    let secrets = i64::try_from(s.all_totp().await.unwrap().len()).unwrap();
    let counts = |tenant_keys: i64, user_secrets: i64| Mutation::RequireRootSealedCounts {
        tenant_keys,
        user_secrets,
    };
    let rewrap = |was: u8| Mutation::RewrapTenantKey {
        tenant_id: T.into(),
        version: 90,
        was: vec![was; 8],
        wrapped: vec![2; 8],
    };
    let reseal = |was: u8| Mutation::ResealTotp {
        user_id: "tia".into(),
        was: vec![was; 8],
        secret: vec![4; 8],
    };
    let wrapped = || async {
        let all = s.all_tenant_keys().await.unwrap();
        let ours = all.iter().find(|k| k.tenant_id == T && k.version == 90);
        ours.unwrap().wrapped.clone()
    };
    let sealed = || async {
        let all = s.all_totp().await.unwrap();
        all.iter()
            .find(|t| t.user_id == "tia")
            .unwrap()
            .secret
            .clone()
    };
    // Changed since read (another wrap, another enrolment), or one more than read: refused.
    assert_unit_conflicts(s, vec![counts(keys, secrets), rewrap(7), reseal(3)]).await;
    assert_unit_conflicts(s, vec![counts(keys, secrets), rewrap(1), reseal(7)]).await;
    assert_unit_conflicts(s, vec![counts(keys - 1, secrets), rewrap(1), reseal(3)]).await;
    assert_unit_conflicts(s, vec![counts(keys, secrets - 1), rewrap(1), reseal(3)]).await;
    assert_eq!((wrapped().await, sealed().await), (vec![1; 8], vec![3; 8]));
    // As read: applied.
    apply(s, vec![counts(keys, secrets), rewrap(1), reseal(3)]).await;
    assert_eq!((wrapped().await, sealed().await), (vec![2; 8], vec![4; 8]));
}

/// An assignment and a role change that read each other's state before committing: whichever
/// commits second finds the other and is a conflict.
async fn assignments_follow_the_assignees_roles(s: &dyn Store) {
    apply(s, vec![Mutation::InsertUser(common::user_row("sam"))]).await;
    let assignable = || Mutation::RequireActiveWithRole {
        user_id: "sam".into(),
        any_of: vec!["support_engineer".into(), "support_supervisor".into()],
    };
    let unassigned = || Mutation::RequireNoAssignments {
        user_id: "sam".into(),
    };
    apply(s, vec![assignable(), unassigned()]).await;

    // Assigned first: the role change that read no assignment is refused.
    let mut held = case(None, Some("sam"), 70);
    held.id = "c4".into();
    apply(s, vec![Mutation::InsertCase(held.clone())]).await;
    let demote = Mutation::SetUserRoles {
        user_id: "sam".into(),
        roles: "marketing".into(),
        at: 3,
    };
    assert_unit_conflicts(s, vec![demote.clone(), unassigned()]).await;
    let sam = s.user("sam").await.unwrap().unwrap();
    assert_eq!(
        sam.roles, "support_engineer",
        "the role change is undone whole"
    );

    // Demoted first: an assignment checked against the old roles is refused.
    let release = Mutation::ReleaseAssignment {
        scope: TenantScope::new(T),
        case_id: "c4".into(),
        assignee_id: "sam".into(),
        at: 3,
    };
    apply(s, vec![demote, release, unassigned()]).await;
    assert_conflict(s, assignable()).await;
}

fn update(row: CaseRow, read: &CaseRow) -> Mutation {
    Mutation::UpdateCase {
        row,
        read: CaseVersion::of(read),
    }
}

fn incident(id: &str, tenant: Option<&str>) -> IncidentRow {
    IncidentRow {
        id: id.into(),
        kind: "mass_read".into(),
        tenant_id: tenant.map(str::to_owned),
        subject_id: Some("u1".into()),
        first_index: 1,
        last_index: 4,
        events: 4,
        opened_at: 10,
        updated_at: 10,
        state: "open".into(),
        closed_by: None,
        closed_at: None,
        resolution: None,
    }
}

fn advance(from: Option<i64>, to: i64) -> Mutation {
    Mutation::AdvanceWatch {
        name: "breach".into(),
        from,
        to,
    }
}

/// The breach watch's place moves only from where its pass read it, with what the pass found;
/// an incident grows only while open and closes once.
async fn the_watch_moves_on_only_from_where_it_read(s: &dyn Store) {
    assert_eq!(s.watch_progress("breach").await.unwrap(), None);
    apply(s, vec![advance(None, 5)]).await;
    assert_conflict(s, advance(None, 7)).await;
    assert_conflict(s, advance(Some(4), 7)).await;
    // A pass that read from a stale place records nothing it found.
    assert_unit_conflicts(
        s,
        vec![
            Mutation::OpenIncident(incident("i0", Some(T))),
            advance(Some(3), 9),
        ],
    )
    .await;
    assert!(s.incident("i0").await.unwrap().is_none());
    apply(
        s,
        vec![
            Mutation::OpenIncident(incident("i1", Some(T))),
            Mutation::OpenIncident(incident("i2", None)),
            advance(Some(5), 9),
        ],
    )
    .await;
    assert_eq!(s.watch_progress("breach").await.unwrap(), Some(9));
    let extend = |events| Mutation::ExtendIncident {
        id: "i1".into(),
        last_index: 8,
        events,
        at: 20,
    };
    apply(s, vec![extend(3)]).await;
    let grown = s.incident("i1").await.unwrap().unwrap();
    assert_eq!((grown.events, grown.last_index), (7, 8));
    let close = Mutation::CloseIncident {
        id: "i1".into(),
        closed_by: "officer".into(),
        resolution: "contained".into(),
        at: 30,
    };
    apply(s, vec![close.clone()]).await;
    assert_conflict(s, close).await;
    assert_conflict(s, extend(1)).await;
    // A tenant's list holds its own; the platform's every one, the platform-wide too.
    let scope = TenantScope::new(T);
    let theirs = s.incidents(Some(&scope), None, None, 10).await.unwrap();
    assert_eq!(
        theirs.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["i1"]
    );
    let open = s.incidents(None, Some("open"), None, 10).await.unwrap();
    assert_eq!(
        open.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["i2"]
    );
    assert_eq!(s.open_incidents().await.unwrap().len(), 1);
}

async fn current(s: &dyn Store) -> CaseRow {
    s.case(&TenantScope::new(T), "c1").await.unwrap().unwrap()
}

fn contact(id: &str) -> Mutation {
    Mutation::InsertContact(common::contact_row(T, id, 1))
}

fn case(contact_id: Option<&str>, assignee: Option<&str>, updated_at: i64) -> CaseRow {
    CaseRow {
        tenant_id: T.into(),
        id: "c1".into(),
        title: vec![1; 8],
        description: None,
        severity: "low".into(),
        status: "open".into(),
        product: None,
        contact_id: contact_id.map(Into::into),
        assignee_id: assignee.map(Into::into),
        created_at: 0,
        updated_at,
    }
}
