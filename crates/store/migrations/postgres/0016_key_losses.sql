-- A key version lost to this deployment: a restore accepted records sealed under a version its key
-- source did not have. The version stays taken (a rotation never issues it again, or the old
-- ciphertexts would meet new keys), and those records read as unreadable rather than as an
-- integrity failure.
CREATE TABLE tenant_key_losses (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

ALTER TABLE tenant_key_losses ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_key_losses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON tenant_key_losses
    USING (current_setting('strongroom.tenant', true) IN ('*', tenant_id))
    WITH CHECK (current_setting('strongroom.tenant', true) IN ('*', tenant_id));
