-- The tree's nodes above the leaves move into the row of the entry whose leaf completes them:
-- node (level l >= 1, index i) is completed by leaf (i + 1) * 2^l - 1, and that row keeps the
-- roots it completes, levels 1, 2, ... in order, 32 bytes each (NULL if none, as for every
-- even index). An append then writes one row per entry, and reading the entries in order reads
-- the tree with them. Nodes whose completing entry is gone are dropped with the table.
-- Row-level security binds the owner too: the move is platform-wide work.
SELECT set_config('strongroom.tenant', '*', true);
ALTER TABLE audit_entries ADD COLUMN subtree_roots BYTEA;
UPDATE audit_entries e SET subtree_roots = completed.roots
    FROM (SELECT ((idx + 1) << level::integer) - 1 AS leaf,
                 string_agg(hash, ''::bytea ORDER BY level) AS roots
          FROM audit_nodes WHERE level >= 1 GROUP BY 1) AS completed
    WHERE e.idx = completed.leaf;
DROP TABLE audit_nodes;
