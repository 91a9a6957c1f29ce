//! Passwords after NIST SP 800-63B rev 4: length, a blocklist, a strength estimate, no composition rules;
//! stored as Argon2id at OWASP's parameters.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{ErrorCode, ServiceError, ServiceResult};

/// NIST SP 800-63B rev 4: a password that is the only factor must be at least 15 characters; one
/// used together with a second factor may be 8. An account counts as having a second factor when it
/// has a confirmed one, or when its roles must have one (then it can do nothing before enrolling).
pub const MIN_LENGTH: usize = 15;
pub const MIN_LENGTH_WITH_SECOND_FACTOR: usize = 8;

/// The minimum length for an account with (`true`) or without a second factor.
pub fn min_length(second_factor: bool) -> usize {
    if second_factor {
        MIN_LENGTH_WITH_SECOND_FACTOR
    } else {
        MIN_LENGTH
    }
}
pub const MAX_LENGTH: usize = 64;
/// zxcvbn score a password must reach (0–4).
pub const MIN_SCORE: u8 = 3;
/// With a second factor. zxcvbn rates any 8-character password at most 2 (about 10^8 guesses), so
/// keeping 3 would make the 8-character minimum unreachable; online guessing is bounded by the
/// throttle and the second factor, and the blocklist still applies.
pub const MIN_SCORE_WITH_SECOND_FACTOR: u8 = 2;

static BLOCKLIST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

/// Why a password was refused (stable codes for `details.reasons`).
pub fn weaknesses(password: &str, username: &str) -> Vec<&'static str> {
    weaknesses_for(password, username, false)
}

/// [`weaknesses`] with the length rule for an account with or without a second factor.
pub fn weaknesses_for(password: &str, username: &str, second_factor: bool) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    let length = password.chars().count();
    if length < min_length(second_factor) {
        reasons.push("too_short");
    }
    if length > MAX_LENGTH {
        reasons.push("too_long");
    }
    // A copy of the candidate password: wiped like the original.
    let lowered = Zeroizing::new(password.to_lowercase());
    if BLOCKLIST.contains(lowered.as_str()) || BLOCKLIST.contains(lowered.trim()) {
        reasons.push("common_password");
    }
    let user = username.trim().to_lowercase();
    if !user.is_empty() && lowered.contains(&user) {
        reasons.push("contains_username");
    }
    if length <= MAX_LENGTH {
        let score = u8::from(zxcvbn::zxcvbn(password, &[username]).score());
        let min_score = if second_factor {
            MIN_SCORE_WITH_SECOND_FACTOR
        } else {
            MIN_SCORE
        };
        if score < min_score {
            reasons.push("too_guessable");
        }
    }
    reasons
}

pub fn check_policy(password: &str, username: &str) -> ServiceResult<()> {
    check_policy_for(password, username, false)
}

/// [`check_policy`] with the length rule for an account with or without a second factor.
pub fn check_policy_for(password: &str, username: &str, second_factor: bool) -> ServiceResult<()> {
    let reasons = weaknesses_for(password, username, second_factor);
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::new(
            ErrorCode::WeakPassword,
            "the password does not meet the policy",
        )
        .with_details(serde_json::json!({ "reasons": reasons })))
    }
}

fn hasher() -> ServiceResult<Argon2<'static>> {
    // OWASP: Argon2id, m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|_| ServiceError::internal("argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Bounds the Argon2 computations running at once. Login needs no credential, so without a
/// bound a flood of made-up usernames would take every core and 19 MiB a guess; past the bound a
/// request waits a little for its turn, then is told to come back (`429 too_many_attempts`).
struct ArgonSlots {
    free: Arc<Semaphore>,
    wait: Duration,
}

impl ArgonSlots {
    fn new(slots: usize, wait: Duration) -> Self {
        Self {
            free: Arc::new(Semaphore::new(slots)),
            wait,
        }
    }

    /// Runs `work` on a blocking thread once a slot is free. The slot goes with the work, so a
    /// caller that gives up (its client gone) does not free it before the computation ends.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        let slot =
            match tokio::time::timeout(self.wait, Arc::clone(&self.free).acquire_owned()).await {
                Ok(Ok(slot)) => slot,
                Ok(Err(_)) | Err(_) => return Err(ServiceError::too_many_attempts(1)),
            };
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|_| ServiceError::internal("password task"))?
    }
}

/// Two computations a core: enough to keep every core busy, at most a few dozen MiB.
static ARGON_SLOTS: LazyLock<ArgonSlots> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    ArgonSlots::new(cores.saturating_mul(2), Duration::from_secs(2))
});

/// Hashes on a blocking thread: Argon2 is deliberately slow.
pub async fn hash(password: Zeroizing<String>) -> ServiceResult<String> {
    ARGON_SLOTS
        .run(move || {
            let argon = hasher()?;
            argon
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|_| ServiceError::internal("password hashing failed"))
        })
        .await
}

/// Verifies on a blocking thread. A malformed stored hash (such as a service principal's
/// [`UNUSABLE_HASH`]) verifies as false, after the same work as a real one.
pub async fn verify(password: Zeroizing<String>, stored: String) -> ServiceResult<bool> {
    ARGON_SLOTS
        .run(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                let argon = hasher()?;
                if let Ok(dummy) = PasswordHash::new(DUMMY_HASH.as_str()) {
                    let _ = argon.verify_password(password.as_bytes(), &dummy);
                }
                return Ok(false);
            };
            let argon = hasher()?;
            Ok(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
}

/// The stored "hash" of a service principal: not a PHC string, so no password ever matches it.
pub const UNUSABLE_HASH: &str = "!service-principal";

/// A valid hash of a random password, verified against when the username is unknown so that an unknown
/// user costs the same time as a wrong password.
pub static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let argon = hasher().ok();
    let random: [u8; 24] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
    argon
        .and_then(|a| a.hash_password(&random).ok())
        .map(|h| h.to_string())
        .unwrap_or_default()
});

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_bound_a_computation_waits_then_is_refused() {
        let slots = Arc::new(ArgonSlots::new(1, Duration::from_millis(100)));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move {
                slots
                    .run(move || {
                        let _ = started_tx.send(());
                        let _ = release_rx.recv();
                        Ok(1)
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .unwrap();
        let refused = slots.run(|| Ok(2)).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::TooManyAttempts);
        assert_eq!(refused.retry_after, Some(1));
        release_tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        // The slot is free again.
        assert_eq!(slots.run(|| Ok(3)).await.unwrap(), 3);
    }

    #[test]
    fn policy_reasons() {
        assert_eq!(
            weaknesses("short", "bob"),
            vec!["too_short", "too_guessable"]
        );
        assert!(weaknesses(&"x".repeat(65), "bob").contains(&"too_long"));
        assert!(weaknesses("password", "bob").contains(&"common_password"));
        assert!(weaknesses("alice-correct-horse-battery", "alice").contains(&"contains_username"));
        assert!(weaknesses("aaaaaaaaaaaaaaaaaaaa", "bob").contains(&"too_guessable"));
        assert!(weaknesses("violet tundra mapleshade 1987", "bob").is_empty());
    }

    #[test]
    fn shorter_passwords_only_with_a_second_factor() {
        let eight = "q7#Vm2!x";
        assert_eq!(
            weaknesses_for(eight, "bob", false),
            vec!["too_short", "too_guessable"]
        );
        assert!(weaknesses_for(eight, "bob", true).is_empty());
        assert!(weaknesses_for("q7#Vm2!", "bob", true).contains(&"too_short"));
        assert!(weaknesses_for("password", "bob", true).contains(&"common_password"));
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash(Zeroizing::new("violet tundra mapleshade 1987".into()))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            verify(
                Zeroizing::new("violet tundra mapleshade 1987".into()),
                h.clone()
            )
            .await
            .unwrap()
        );
        assert!(
            !verify(Zeroizing::new("violet tundra mapleshade 1988".into()), h)
                .await
                .unwrap()
        );
        assert!(
            !verify(Zeroizing::new("x".into()), "garbage".into())
                .await
                .unwrap()
        );
    }
}
