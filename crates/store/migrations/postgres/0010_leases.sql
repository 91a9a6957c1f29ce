-- Several instances share this database. Leases let them agree on who runs a periodic job or
-- signs the audit log; the audit head is the one row every batch locks, so appends from all
-- instances form one sequence of indexes.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    size  BIGINT NOT NULL CHECK (size >= 0)
);
INSERT INTO audit_head (id, size) SELECT 1, COALESCE(MAX(idx) + 1, 0) FROM audit_entries;

-- Row-level security: a row of a tenant table is visible (and writable) only when the
-- transaction's scope, `strongroom.tenant`, is its tenant or `*` (platform-wide work: jobs,
-- governance, group commits that span tenants). Unset, the scope matches nothing. FORCE makes
-- the policies bind the tables' owner too; the server refuses roles that bypass them.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_keys', 'tenant_key_retirements', 'contacts', 'cases',
        'comments', 'audit_entries', 'access_requests', 'webhook_secrets', 'notifications',
        'exports']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_scope ON %I '
            'USING (current_setting(''strongroom.tenant'', true) IN (''*'', tenant_id)) '
            'WITH CHECK (current_setting(''strongroom.tenant'', true) IN (''*'', tenant_id))',
            t);
    END LOOP;
END
$$;
