-- Each entry's leaf hash (level 0 of the tree) moves into the entry's own row: one row per
-- append instead of two, and a verifier reads entry and leaf hash together. Nullable because
-- SQLite cannot add a NOT NULL column to a filled table; a missing leaf hash is reported by
-- `audit verify` as a missing level-0 node, as before.
ALTER TABLE audit_entries ADD COLUMN leaf_hash BLOB;
UPDATE audit_entries SET leaf_hash =
    (SELECT hash FROM audit_nodes n WHERE n.level = 0 AND n.idx = audit_entries.idx);
DELETE FROM audit_nodes WHERE level = 0;
