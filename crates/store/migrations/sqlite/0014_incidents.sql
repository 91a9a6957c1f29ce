-- Suspected breaches the watch raised from the audit log (DESIGN.md "breach handling"), and how
-- each was closed. Identifiers and codes only: the evidence is the range of log entries.
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    tenant_id    TEXT,
    subject_id   TEXT,
    first_index  INTEGER NOT NULL,
    last_index   INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    opened_at    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    state        TEXT NOT NULL,
    closed_by    TEXT,
    closed_at    INTEGER,
    resolution   TEXT
);
CREATE INDEX incidents_tenant ON incidents (tenant_id, id);
CREATE INDEX incidents_open ON incidents (state, kind);

-- How far the watch has read the log: one row per watch, moved in the transaction that
-- records what it found, so a restart or another instance resumes where it stopped.
CREATE TABLE watch_progress (
    name        TEXT PRIMARY KEY,
    next_index  INTEGER NOT NULL
);
