-- Access governance: inactivity warnings and periodic access reviews.

-- Reactivation restarts the inactivity clock.
ALTER TABLE users ADD COLUMN reactivated_at INTEGER;

-- One warning per stretch of inactivity: a later login moves last_activity_at on.
CREATE TABLE inactivity_warnings (
    user_id           TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    last_activity_at  INTEGER NOT NULL,
    warned_at         INTEGER NOT NULL
);

-- Every acknowledgement of a confidentiality agreement, kept with its version and time.
CREATE TABLE confidentiality_acknowledgements (
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    version          TEXT NOT NULL,
    acknowledged_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE access_reviews (
    id          TEXT PRIMARY KEY,
    created_by  TEXT,
    created_at  INTEGER NOT NULL
);

-- A snapshot of each account at review time and the reviewer's decision on it.
CREATE TABLE access_review_lines (
    review_id         TEXT NOT NULL REFERENCES access_reviews(id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    username          TEXT NOT NULL,
    roles             TEXT NOT NULL,
    tenant_id         TEXT,
    status            TEXT NOT NULL,
    last_activity_at  INTEGER NOT NULL,
    mfa_enrolled      BOOLEAN NOT NULL,
    assignments       INTEGER NOT NULL,
    active_grants     INTEGER NOT NULL,
    api_keys          INTEGER NOT NULL,
    decision          TEXT,
    decided_by        TEXT,
    decided_at        INTEGER,
    PRIMARY KEY (review_id, user_id)
);
