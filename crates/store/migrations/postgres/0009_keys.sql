-- Key rotation and retention.
-- A retired key version: its wrapped key is deleted from tenant_keys (no ciphertext used it any
-- more); this row keeps the version number from being reused and shows when it went.
CREATE TABLE tenant_key_retirements (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- The retention sweep looks for closed cases by last change.
CREATE INDEX cases_retention ON cases(tenant_id, status, updated_at);
