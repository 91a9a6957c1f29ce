-- Staff reach a contact through a case assigned to them: one index lookup, not a tenant scan.
CREATE INDEX cases_contact_assignee ON cases(tenant_id, contact_id, assignee_id);
