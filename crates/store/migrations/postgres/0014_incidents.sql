-- Suspected breaches the watch raised from the audit log (DESIGN.md "breach handling"), and how
-- each was closed. Identifiers and codes only: the evidence is the range of log entries.
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    tenant_id    TEXT,
    subject_id   TEXT,
    first_index  BIGINT NOT NULL,
    last_index   BIGINT NOT NULL,
    events       BIGINT NOT NULL,
    opened_at    BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    state        TEXT NOT NULL,
    closed_by    TEXT,
    closed_at    BIGINT,
    resolution   TEXT
);
CREATE INDEX incidents_tenant ON incidents (tenant_id, id);
CREATE INDEX incidents_open ON incidents (state, kind);

-- How far the watch has read the log: one row per watch, moved in the transaction that
-- records what it found, so a restart or another instance resumes where it stopped.
CREATE TABLE watch_progress (
    name        TEXT PRIMARY KEY,
    next_index  BIGINT NOT NULL
);

-- A tenant sees the incidents about it; platform-wide ones (no tenant) only the platform scope.
ALTER TABLE incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON incidents
    USING (current_setting('strongroom.tenant', true) IN ('*', tenant_id))
    WITH CHECK (current_setting('strongroom.tenant', true) IN ('*', tenant_id));
