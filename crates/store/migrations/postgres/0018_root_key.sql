-- The fingerprint of the root key that everything sealed under a root key is sealed under (the
-- tenant keys' wrapping, the platform secrets). Every commit that seals under the root checks it,
-- so an instance of a shared database still holding the key a rotation replaced fails instead
-- of sealing a tenant key or a second factor that the current root key could never open.
CREATE TABLE root_key (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT NOT NULL
);
