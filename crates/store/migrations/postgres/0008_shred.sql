-- Tombstones of crypto-shredded tenants: what was destroyed, counted inside the deleting
-- transaction. Identifiers and counts only; no personal data survives the deletion.
CREATE TABLE tenant_shreds (
    tenant_id     TEXT PRIMARY KEY,
    deleted_at    BIGINT NOT NULL,
    request_ref   TEXT NOT NULL,
    -- comma-separated key versions whose wrapped keys were destroyed
    key_versions  TEXT NOT NULL,
    -- "kind=count" pairs, comma-separated, in table order
    row_counts    TEXT NOT NULL
);
