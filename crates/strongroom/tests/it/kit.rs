//! The test kit: a real server process per test (or per module) and a thin,
//! typed HTTP client on top of reqwest.

mod client;
mod db;
mod server;

pub use client::*;
pub use db::*;
pub use server::*;

use std::io::Read;

/// Password of the built-in `admin` account in every test server.
pub const ADMIN_PASSWORD: &str = "Tangerine koala vault 3819 drift!";
/// Password given to every user the kit creates: passes the policy (long,
/// not common, not containing the username).
pub const PASSWORD: &str = "Umbrella quartz lantern 7 ridge!";

/// `n` random bytes as lowercase hex, from the OS.
pub fn rand_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    hex::encode(buf)
}

/// A name unique across tests and servers: `prefix-<16 hex>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", rand_hex(8))
}

/// Percent-encodes a query-string value (everything but RFC 3986 unreserved).
pub fn urlencode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// True for staff roles (no tenant, confidentiality acknowledgement needed).
pub fn is_staff(role: &str) -> bool {
    !matches!(role, "tenant_admin" | "tenant_user")
}

/// The purpose a role normally states for customer-data requests.
pub fn default_purpose(role: &str) -> &'static str {
    if is_staff(role) {
        "case-resolution"
    } else {
        "customer-self-service"
    }
}

/// Writes straight to the process's stderr, past the test harness's capture (which only takes
/// `print!`/`eprint!`), so the line shows in `cargo test` output even for a passing test.
pub fn tell(line: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// On PostgreSQL, says why this test (or part) is skipped and returns true; false on SQLite.
/// Every use is listed in `kit/db.rs`.
pub fn skip_on_postgres(why: &str) -> bool {
    if !on_postgres() {
        return false;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    tell(&format!("skipped on PostgreSQL: {test}: {why}"));
    true
}
