-- Leases let instances sharing a database agree on who runs a periodic job or signs the audit
-- log (one SQLite database has one server, but the code path is the same).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
