-- Access governance: inactivity warnings and periodic access reviews.

-- Reactivation restarts the inactivity clock.
ALTER TABLE users ADD COLUMN reactivated_at BIGINT;

-- One warning per stretch of inactivity: a later login moves last_activity_at on.
CREATE TABLE inactivity_warnings (
    user_id           TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    last_activity_at  BIGINT NOT NULL,
    warned_at         BIGINT NOT NULL
);

-- Every acknowledgement of a confidentiality agreement, kept with its version and time.
CREATE TABLE confidentiality_acknowledgements (
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    version          TEXT NOT NULL,
    acknowledged_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE access_reviews (
    id          TEXT PRIMARY KEY,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);

-- A snapshot of each account at review time and the reviewer's decision on it.
CREATE TABLE access_review_lines (
    review_id         TEXT NOT NULL REFERENCES access_reviews(id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    username          TEXT NOT NULL,
    roles             TEXT NOT NULL,
    tenant_id         TEXT,
    status            TEXT NOT NULL,
    last_activity_at  BIGINT NOT NULL,
    mfa_enrolled      BOOLEAN NOT NULL,
    assignments       BIGINT NOT NULL,
    active_grants     BIGINT NOT NULL,
    api_keys          BIGINT NOT NULL,
    decision          TEXT,
    decided_by        TEXT,
    decided_at        BIGINT,
    PRIMARY KEY (review_id, user_id)
);
