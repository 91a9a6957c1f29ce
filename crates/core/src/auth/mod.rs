//! Authentication: password policy and hashing, login throttling, sessions.

pub mod api_key;
pub mod password;
pub mod refusals;
pub mod session;
pub mod source_throttle;
pub mod throttle;
pub mod totp;
