-- The tree's nodes above the leaves move into the row of the entry whose leaf completes them:
-- node (level l >= 1, index i) is completed by leaf (i + 1) * 2^l - 1, and that row keeps the
-- roots it completes, levels 1, 2, ... in order, 32 bytes each (NULL if none, as for every
-- even index). An append then writes one row per entry, and reading the entries in order reads
-- the tree with them. Nodes whose completing entry is gone are dropped with the table.
ALTER TABLE audit_entries ADD COLUMN subtree_roots BLOB;
UPDATE audit_entries SET subtree_roots = completed.roots
    FROM (SELECT ((idx + 1) << level) - 1 AS leaf,
                 CAST(group_concat(hash, '' ORDER BY level) AS BLOB) AS roots
          FROM audit_nodes WHERE level >= 1 GROUP BY leaf) AS completed
    WHERE audit_entries.idx = completed.leaf;
DROP TABLE audit_nodes;
