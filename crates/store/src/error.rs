use thiserror::Error;

/// The [`StoreError::Conflict`] of `Mutation::KeepAnotherPlatformAdmin`: callers record it as
/// the last admin's refusal, not as a change that lost a race.
pub const LAST_PLATFORM_ADMIN: &str =
    "the last active platform administrator cannot be suspended or demoted";

/// Storage failures. Messages name tables and constraints, never values.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint was violated (e.g. a duplicate username).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A referenced row does not exist (foreign key).
    #[error("a referenced record does not exist")]
    MissingReference,
    /// A text value holds a character the database cannot keep (PostgreSQL refuses NUL in
    /// text): the change that carries it fails alone, not the batch it was committed with.
    #[error("a text value holds a character the store cannot keep")]
    UnstorableText,
    /// The database could not be reached, was locked too long, or an I/O error occurred.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database holds something this version cannot read.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("store migration failed: {0}")]
    Migration(String),
    /// The database is not fit for use (wrong version, unsafe role, missing schema).
    #[error("store misconfigured: {0}")]
    Misconfigured(String),
    /// Another writer appended to the audit log first; the batch must be re-planned at this size.
    #[error("the audit log grew under another writer (now {0} entries)")]
    AuditHeadMoved(u64),
    /// A change sealed under a root key that is no longer the database's: another instance
    /// rotated it. Sealing under the old one would leave what this change seals unopenable.
    #[error(
        "the database's keys are sealed under another root key (rotated by another instance): \
         restart this instance with the current keys/root.key"
    )]
    RootKeyRotated,
}

impl StoreError {
    /// Whether this refuses one unit of a group commit alone (the others commit), rather than
    /// the whole batch.
    pub fn refuses_unit_only(&self) -> bool {
        matches!(
            self,
            Self::Conflict(_)
                | Self::MissingReference
                | Self::UnstorableText
                | Self::RootKeyRotated
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return Self::Conflict("unique constraint");
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => return Self::MissingReference,
                _ => {}
            }
            // character_not_in_repertoire: NUL in a text value, on PostgreSQL.
            if db.code().as_deref() == Some("22021") {
                return Self::UnstorableText;
            }
        }
        match err {
            sqlx::Error::ColumnDecode { index, .. } => Self::Corrupt(format!("column {index}")),
            sqlx::Error::Decode(_) => Self::Corrupt("undecodable value".into()),
            // Database messages may quote values; keep only the driver's error code.
            sqlx::Error::Database(db) => Self::Unavailable(format!(
                "database error {}",
                db.code().map(|c| c.into_owned()).unwrap_or_default()
            )),
            other => Self::Unavailable(other.to_string()),
        }
    }
}
