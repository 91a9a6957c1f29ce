-- Files attached to cases: logs, dumps, screenshots. The name is a field ciphertext (case
-- content, under the data key); the content is sealed under the tenant's attachment key. Only
-- files a scanner passed are stored: `scanner` and `scanned_at` say which one and when.
-- `content_version` repeats the key version in the content's header, so that the key jobs
-- count and find old ciphertexts without reading megabytes of content.
CREATE TABLE attachments (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    case_id      TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL,
    name         BYTEA NOT NULL,
    media_type   TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content      BYTEA NOT NULL,
    content_version BYTEA NOT NULL,
    scanner      TEXT NOT NULL,
    scanned_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (content_version = substr(content, 2, 4))
);
CREATE INDEX attachments_case ON attachments(tenant_id, case_id, id);

ALTER TABLE attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON attachments
    USING (current_setting('strongroom.tenant', true) IN ('*', tenant_id))
    WITH CHECK (current_setting('strongroom.tenant', true) IN ('*', tenant_id));
