//! The lookups every authorised request makes, as SQL both backends run: on SQLite stepped on
//! the request's own thread (`sqlite::point`), on PostgreSQL through the pool like any statement.
//! Columns are listed, not `*`, because SQLite's reader maps them by position.

/// A contact and whether a case referencing it is assigned to `$3`.
pub(crate) const CONTACT_WITH_REACH: &str = "SELECT c.tenant_id, c.id, c.name, c.email, \
     c.phone, c.address, c.notes, c.email_index, c.created_at, c.updated_at, \
     EXISTS (SELECT 1 FROM cases k WHERE k.tenant_id = c.tenant_id AND k.contact_id = c.id \
     AND k.assignee_id = $3) AS reachable \
     FROM contacts c WHERE c.tenant_id = $1 AND c.id = $2";

/// The grants of `$2` in tenant `$1` active at `$3`, newest first, with their case's contact.
pub(crate) const ACTIVE_GRANTS: &str = "SELECT g.id, g.case_id, c.contact_id, g.purpose, \
     g.field_classes, g.ends_at \
     FROM access_requests g JOIN cases c ON c.tenant_id = g.tenant_id AND c.id = g.case_id \
     WHERE g.tenant_id = $1 AND g.requester_id = $2 AND g.state = 'approved' \
     AND g.starts_at <= $3 AND g.ends_at > $3 ORDER BY g.id DESC";

/// A user's second factor, confirmed or pending.
pub(crate) const USER_TOTP: &str = "SELECT user_id, secret, confirmed_at, last_step, created_at \
     FROM user_totp WHERE user_id = $1";
