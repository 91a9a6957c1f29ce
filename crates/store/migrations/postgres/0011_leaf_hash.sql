-- Each entry's leaf hash (level 0 of the tree) moves into the entry's own row: one row per
-- append instead of two, and a verifier reads entry and leaf hash together. Nullable, as on
-- SQLite; a missing leaf hash is reported by `audit verify` as a missing level-0 node.
-- Row-level security binds the owner too: the move is platform-wide work.
SELECT set_config('strongroom.tenant', '*', true);
ALTER TABLE audit_entries ADD COLUMN leaf_hash BYTEA;
UPDATE audit_entries e SET leaf_hash = n.hash
    FROM audit_nodes n WHERE n.level = 0 AND n.idx = e.idx;
DELETE FROM audit_nodes WHERE level = 0;
