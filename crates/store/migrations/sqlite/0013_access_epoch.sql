-- Counts the times a user's exports were ended because their access changed (a grant revoked, a
-- case reassigned or relinked, a role change, a suspension). An export reads it before it gathers
-- its records and is inserted only if it is unchanged: one built while its access was being
-- withdrawn would otherwise outlive the withdrawal.
ALTER TABLE users ADD COLUMN access_epoch INTEGER NOT NULL DEFAULT 0;
