//! Comments on a case: bodies are ciphertext under the tenant's data key, reached through the
//! case's gate.

use strongroom_policy::Action;
use strongroom_store::{CommentRow, Mutation, TenantScope};

use super::case_gate::case_facts;
use super::{MAX_FIELD_CHARS, required_text};
use crate::access::{Principal, RequestContext};
use crate::error::ServiceResult;
use crate::model::{CommentInput, Page, PageRequest, RecordView};
use crate::{Vault, new_id, shape};

impl Vault {
    pub async fn add_comment(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        input: CommentInput,
    ) -> ServiceResult<RecordView> {
        let epoch = self.current_access_epoch(p).await?;
        let (mut gate, _) = self
            .case_gate(
                p,
                ctx,
                tenant_id,
                case_id,
                Action::AddComment,
                "comment.create",
            )
            .await?;
        let guard = self.access_guard(p, epoch, &gate.record).await?;
        let body = required_text(Some(&input.body), "body", MAX_FIELD_CHARS)?;
        let ring = self.keys.keyring(self.store.as_ref(), tenant_id).await?;
        let id = new_id();
        let row = CommentRow {
            tenant_id: tenant_id.to_owned(),
            id: id.clone(),
            case_id: case_id.to_owned(),
            author_id: p.user_id.clone(),
            body: shape::seal(&ring, "comment", &id, "body", &body)?,
            created_at: self.now(),
        };
        gate.record.fields_requested = vec!["body"];
        gate.record.records = vec![id];
        let d = self.decide(
            p,
            Action::ReadComments,
            &case_facts(p, &gate.row, &gate.grants),
            Some(&gate.tenant.facts),
            ctx.purpose,
        );
        let view = shape::disclose(&mut gate.record, shape::comment(&ring, &row, &d.fields)?);
        self.commit_attempt(
            vec![gate.record],
            [
                guard.at(self.now()),
                vec![Mutation::InsertComment(row.clone())],
            ]
            .concat(),
            ("comment.create_not_applied", "changed_meanwhile"),
        )
        .await?;
        Ok(view)
    }

    pub async fn list_comments(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tenant_id: &str,
        case_id: &str,
        page: &PageRequest,
    ) -> ServiceResult<Page<RecordView>> {
        let (gate, decision) = self
            .case_gate(
                p,
                ctx,
                tenant_id,
                case_id,
                Action::ReadComments,
                "comment.list",
            )
            .await?;
        let rows = self
            .store
            .comments(
                &TenantScope::new(tenant_id),
                case_id,
                page.cursor.as_deref(),
                page.limit,
            )
            .await?;
        self.disclose_case_page(
            gate,
            rows,
            page.limit,
            |r| &r.id,
            |ring, r| shape::comment(ring, r, &decision.fields),
        )
        .await
    }
}
