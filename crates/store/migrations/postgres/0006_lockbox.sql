-- Customer lockbox: operator access requests and the grants they become, break-glass
-- grants, and the tenant notification outbox (delivered as signed webhooks).

-- One row per request. "expired" is never stored: a pending request past
-- request_expires_at, or an approved one past ends_at, is expired when read, so
-- expiry takes effect on the very next request without a job.
CREATE TABLE access_requests (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    case_id             TEXT NOT NULL,
    requester_id        TEXT NOT NULL,
    requester_roles     TEXT NOT NULL,
    purpose             TEXT NOT NULL,
    -- staff free text, sealed with the tenant's keys
    justification       BYTEA NOT NULL,
    field_classes       TEXT NOT NULL,
    duration_minutes    BIGINT NOT NULL,
    break_glass         BOOLEAN NOT NULL DEFAULT FALSE,
    state               TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    request_expires_at  BIGINT NOT NULL,
    decided_by          TEXT,
    decided_at          BIGINT,
    -- customer free text, sealed with the tenant's keys
    decision_comment    BYTEA,
    starts_at           BIGINT,
    ends_at             BIGINT,
    revoked_by          TEXT,
    revoked_at          BIGINT,
    reviewed_by         TEXT,
    reviewed_at         BIGINT,
    expiry_notified_at  BIGINT
);
CREATE INDEX access_requests_tenant ON access_requests (tenant_id, id);
CREATE INDEX access_requests_requester ON access_requests (requester_id, state);

-- The per-tenant webhook signing secret, sealed with the tenant's keys.
CREATE TABLE webhook_secrets (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    secret      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The outbox: written in the same transaction as the change it reports.
-- body is the exact JSON sent (ids and codes only).
CREATE TABLE notifications (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    kind             TEXT NOT NULL,
    access_request_id TEXT,
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    delivery         TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_attempt_at  BIGINT,
    last_status      BIGINT,
    delivered_at     BIGINT
);
CREATE INDEX notifications_tenant ON notifications (tenant_id, id);
CREATE INDEX notifications_due ON notifications (delivery, next_attempt_at);
