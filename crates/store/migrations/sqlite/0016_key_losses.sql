-- A key version lost to this deployment: a restore accepted records sealed under a version its key
-- source did not have. The version stays taken (a rotation never issues it again, or the old
-- ciphertexts would meet new keys), and those records read as unreadable rather than as an
-- integrity failure.
CREATE TABLE tenant_key_losses (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version)
);
