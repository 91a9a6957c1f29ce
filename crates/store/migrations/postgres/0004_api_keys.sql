-- API keys of service principals (user rows whose password hash is unusable). Only the SHA-256 of a
-- key is stored: keys carry 256 bits of entropy, so a plain hash makes a stolen table useless.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    key_hash      BYTEA NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_user ON api_keys(user_id);
