-- Timestamps are Unix milliseconds. Every BLOB column named after a field holds AEAD ciphertext.
CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    instructions  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE tenant_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE users (
    id                      TEXT PRIMARY KEY,
    username                TEXT NOT NULL UNIQUE,
    display_name            TEXT NOT NULL,
    password_hash           TEXT NOT NULL,
    roles                   TEXT NOT NULL,
    tenant_id               TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    status                  TEXT NOT NULL,
    status_reason           TEXT,
    confidentiality_version TEXT,
    confidentiality_at      INTEGER,
    failed_logins           INTEGER NOT NULL DEFAULT 0,
    last_failed_login_at    INTEGER,
    locked_until            INTEGER,
    last_login_at           INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX users_tenant ON users(tenant_id);

CREATE TABLE sessions (
    token_hash    BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE contacts (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    name         BLOB NOT NULL,
    email        BLOB,
    phone        BLOB,
    address      BLOB,
    notes        BLOB,
    email_index  BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contacts_email_index ON contacts(tenant_id, email_index);

CREATE TABLE cases (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    title        BLOB NOT NULL,
    description  BLOB,
    severity     TEXT NOT NULL,
    status       TEXT NOT NULL,
    product      TEXT,
    contact_id   TEXT,
    assignee_id  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX cases_assignee ON cases(tenant_id, assignee_id);
CREATE INDEX cases_contact ON cases(tenant_id, contact_id);

CREATE TABLE comments (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    case_id     TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    body        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX comments_case ON comments(tenant_id, case_id, id);

-- The audit ledger: leaves, perfect-subtree hashes, signed checkpoints.
CREATE TABLE audit_entries (
    idx        INTEGER PRIMARY KEY,
    tenant_id  TEXT,
    entry      BLOB NOT NULL
);
CREATE INDEX audit_entries_tenant ON audit_entries(tenant_id, idx);

CREATE TABLE audit_nodes (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hash   BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE audit_checkpoints (
    size        INTEGER PRIMARY KEY,
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
