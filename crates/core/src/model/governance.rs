//! Access governance as the API shows it: the inactivity sweep and access reviews.
//!
//! Lines name accounts by id and username only; reviews and reports carry no customer data.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// Report what would happen, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// RFC 3339; defaults to now. Later than now only with `dry_run` ("who will be suspended").
    #[serde(default)]
    pub as_of: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct SweepReport {
    pub as_of: String,
    pub dry_run: bool,
    pub suspended: Vec<SweepLine>,
    pub warned: Vec<SweepLine>,
    /// Inactive, but the last active platform administrator: never suspended.
    pub kept_last_admin: Vec<SweepLine>,
}

/// No `Debug`, nor on what holds it: it names a person.
#[derive(Clone, Serialize)]
pub struct SweepLine {
    pub user_id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
    pub last_activity_at: String,
    pub inactive_days: i64,
    pub limit_days: u32,
}

#[derive(Clone, Serialize)]
pub struct AccessReview {
    pub id: String,
    pub created_at: String,
    /// None when an operator ran it from the command line.
    pub created_by: Option<String>,
    pub total: usize,
    pub pending: usize,
    pub lines: Vec<AccessReviewLine>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AccessReviewSummary {
    pub id: String,
    pub created_at: String,
    pub created_by: Option<String>,
}

/// No `Debug`, nor on what holds it: it names a person.
#[derive(Clone, Serialize)]
pub struct AccessReviewLine {
    pub user_id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
    pub status: String,
    pub last_activity_at: String,
    pub mfa_enrolled: bool,
    pub assignments: i64,
    pub active_grants: i64,
    pub api_keys: i64,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    /// The access is still needed as it is.
    Certify,
    /// The access is no longer justified: the account is suspended.
    Revoke,
}

impl ReviewVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certify => "certify",
            Self::Revoke => "revoke",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    pub user_id: String,
    pub decision: ReviewVerdict,
}

const CSV_HEADER: &str = "user_id,username,roles,tenant_id,status,last_activity_at,mfa_enrolled,\
assignments,active_grants,api_keys,decision,decided_by,decided_at";

impl AccessReview {
    /// RFC 4180 CSV, one line per account, with formula-like cells defused for spreadsheets.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(64 * (self.lines.len() + 1));
        out.push_str(CSV_HEADER);
        out.push_str("\r\n");
        for l in &self.lines {
            let cells = [
                l.user_id.clone(),
                l.username.clone(),
                l.roles.join(" "),
                l.tenant_id.clone().unwrap_or_default(),
                l.status.clone(),
                l.last_activity_at.clone(),
                l.mfa_enrolled.to_string(),
                l.assignments.to_string(),
                l.active_grants.to_string(),
                l.api_keys.to_string(),
                l.decision.clone().unwrap_or_default(),
                l.decided_by.clone().unwrap_or_default(),
                l.decided_at.clone().unwrap_or_default(),
            ];
            let row: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

fn csv_cell(value: &str) -> String {
    // A leading = + - @ makes spreadsheets evaluate the cell (CSV injection).
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("@x,y"), "\"'@x,y\"");
    }
}
