-- Set when an export that waited for a second person's approval expired without it: it never
-- left, so it does not count among the records exported without approval. 0 for exports made
-- before this column (counted, as before: the safe side).
ALTER TABLE exports ADD COLUMN approval_lapsed INTEGER NOT NULL DEFAULT 0;
