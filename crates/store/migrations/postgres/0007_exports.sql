-- Limited exports and tenant archives: age ciphertext only, never plaintext.
-- The manifest is JSON holding ids, codes, counts and a hash, never a personal-data value.
-- A row outlives its ciphertext: once expired the ciphertext is dropped and the row stays,
-- so daily quotas still count it and the tenant can see what left.
CREATE TABLE exports (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    requester_id   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    manifest       TEXT NOT NULL,
    record_count   BIGINT NOT NULL,
    ciphertext     BYTEA,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    approved_by    TEXT,
    approved_at    BIGINT
);
CREATE INDEX exports_tenant ON exports (tenant_id, id);
CREATE INDEX exports_requester ON exports (requester_id, created_at);
CREATE INDEX exports_live ON exports (expires_at) WHERE ciphertext IS NOT NULL;
