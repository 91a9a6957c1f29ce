-- Second factor (TOTP). `secret` is AEAD ciphertext under the platform key, bound to the user id;
-- `last_step` is the last accepted 30-second step (replay protection). Unconfirmed rows are pending
-- enrolments and do not count as a second factor.
CREATE TABLE user_totp (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret        BYTEA NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT,
    created_at    BIGINT NOT NULL
);

-- Recovery codes: SHA-256 of random codes (not passwords, so no slow hash), each usable once.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- A session opened by a user who must enrol a second factor first: it may only enrol.
ALTER TABLE sessions ADD COLUMN enrolment_only BOOLEAN NOT NULL DEFAULT FALSE;
