//! End-to-end tests: each module starts the real `strongroom` binary on a
//! temporary data dir and talks HTTPS to it, trusting the server's own
//! self-signed certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)] // a kit: not every helper is used by every test
mod kit;

mod access_rules;
mod api_keys;
mod attachment_scans;
mod attachments;
mod audit_log;
mod audit_monitor;
mod audit_recovery;
mod backup;
mod backup_root;
mod bad_input;
mod console;
mod edge_limits;
mod encryption;
mod export_approvals;
mod exports;
mod exports_lifetime;
mod governance;
mod incidents;
mod isolation;
mod justifications;
mod lifecycle_shred;
mod lockbox;
mod lockbox_notify;
mod lockbox_scans;
mod mfa;
mod migrate;
mod multi_instance;
mod passwords;
mod policy_files;
mod postgres_backend;
mod reach;
mod retention;
mod rotation;
mod session_admin;
mod sessions;
mod startup;
mod throttling;
mod users;
mod visibility;
