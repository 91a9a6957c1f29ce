-- Timestamps are Unix milliseconds. Every BYTEA column named after a field holds AEAD ciphertext.
CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    instructions  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE tenant_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    wrapped     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
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
    confidentiality_at      BIGINT,
    failed_logins           BIGINT NOT NULL DEFAULT 0,
    last_failed_login_at    BIGINT,
    locked_until            BIGINT,
    last_login_at           BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX users_tenant ON users(tenant_id);

CREATE TABLE sessions (
    token_hash    BYTEA PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE contacts (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    name         BYTEA NOT NULL,
    email        BYTEA,
    phone        BYTEA,
    address      BYTEA,
    notes        BYTEA,
    email_index  BYTEA,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contacts_email_index ON contacts(tenant_id, email_index);

CREATE TABLE cases (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    title        BYTEA NOT NULL,
    description  BYTEA,
    severity     TEXT NOT NULL,
    status       TEXT NOT NULL,
    product      TEXT,
    contact_id   TEXT,
    assignee_id  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX cases_assignee ON cases(tenant_id, assignee_id);
CREATE INDEX cases_contact ON cases(tenant_id, contact_id);

CREATE TABLE comments (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    case_id     TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    body        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX comments_case ON comments(tenant_id, case_id, id);

-- The audit ledger: leaves, perfect-subtree hashes, signed checkpoints.
CREATE TABLE audit_entries (
    idx        BIGINT PRIMARY KEY,
    tenant_id  TEXT,
    entry      BYTEA NOT NULL
);
CREATE INDEX audit_entries_tenant ON audit_entries(tenant_id, idx);

CREATE TABLE audit_nodes (
    level  BIGINT NOT NULL,
    idx    BIGINT NOT NULL,
    hash   BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    size        BIGINT PRIMARY KEY,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
