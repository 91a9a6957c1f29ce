//! Authentication: password policy and hashing, login throttling, sessions.

pub mod password;
pub mod session;
pub mod throttle;
pub mod totp;
