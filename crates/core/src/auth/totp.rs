//! The second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, what authenticator apps
//! expect) and single-use recovery codes. Pure functions; the service layer stores and audits.

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::error::{ServiceError, ServiceResult};

pub const STEP_SECS: u64 = 30;
pub const DIGITS: usize = 6;
/// Steps accepted either side of the server's current one (clock drift, slow typing).
pub const SKEW_STEPS: u64 = 1;
/// RFC 4226 recommends 160-bit seeds.
pub const SECRET_LEN: usize = 20;
pub const ISSUER: &str = "Strongroom";
/// The AD purpose the seed is sealed under.
pub const SEAL_PURPOSE: &str = "totp-seed";
pub const RECOVERY_CODES: usize = 10;
/// Bytes of entropy per recovery code (80 bits: 16 base32 characters).
const RECOVERY_BYTES: usize = 10;
const RECOVERY_CHARS: usize = 16;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh seed from the platform CSPRNG (wiped on drop).
pub fn generate_secret() -> ServiceResult<Zeroizing<[u8; SECRET_LEN]>> {
    strongroom_crypto::random_bytes::<SECRET_LEN>()
        .map(Zeroizing::new)
        .map_err(|_| ServiceError::internal("random seed"))
}

/// RFC 4648 base32 without padding, as authenticator apps take it.
pub fn base32(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(5) * 8));
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[usize::from((buffer >> bits) & 0x1f)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            BASE32[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

/// Decodes RFC 4648 base32 (no padding, case-insensitive); None for any other character.
pub fn decode_base32(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = BASE32
            .iter()
            .position(|&b| b == c.to_ascii_uppercase())
            .and_then(|v| u32::try_from(v).ok())?;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

/// `otpauth://totp/Strongroom:<username>?secret=...&issuer=Strongroom&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(username: &str, secret_b32: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "otpauth://totp/{ISSUER}:{}?secret={secret_b32}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent_encode(username)
    ))
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The enrolment QR code (the otpauth URI) as an SVG document.
pub fn qr_svg(uri: &str) -> ServiceResult<Zeroizing<String>> {
    let code =
        qrcode::QrCode::new(uri.as_bytes()).map_err(|_| ServiceError::internal("qr code"))?;
    Ok(Zeroizing::new(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build(),
    ))
}

/// Skew 0: each candidate step is checked on its own, so the caller learns which step matched.
fn totp(secret: &[u8]) -> ServiceResult<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(0)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
        .build()
        .map_err(|_| ServiceError::internal("totp parameters"))
}

/// Whether `code` looks like a TOTP code (six ASCII digits) rather than a recovery code.
pub fn is_totp_shape(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// The step `code` belongs to, if it is valid within ±[`SKEW_STEPS`] of `now_secs` and later than
/// `last_step` (a code is accepted at most once, and never an older one after a newer one).
pub fn accept(
    secret: &[u8],
    code: &str,
    now_secs: u64,
    last_step: Option<i64>,
) -> ServiceResult<Option<i64>> {
    if !is_totp_shape(code) {
        return Ok(None);
    }
    let totp = totp(secret)?;
    let current = now_secs / STEP_SECS;
    let mut accepted = None;
    // Every candidate is computed (no early exit), and the comparison is constant-time.
    for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
        let Some(time) = step.checked_mul(STEP_SECS) else {
            continue;
        };
        let Ok(step) = i64::try_from(step) else {
            continue;
        };
        let fresh = last_step.is_none_or(|last| step > last);
        if totp.check(code, time).is_some() && fresh && accepted.is_none() {
            accepted = Some(step);
        }
    }
    Ok(accepted)
}

/// The code an authenticator shows at `time_secs` (tests, diagnostics).
pub fn code_at(secret: &[u8], time_secs: u64) -> ServiceResult<String> {
    Ok(totp(secret)?.generate(time_secs).to_string())
}

/// Ten fresh recovery codes, shown once: `xxxx-xxxx-xxxx-xxxx` in lowercase base32 (80 bits each).
pub fn generate_recovery_codes() -> ServiceResult<Vec<Zeroizing<String>>> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = Zeroizing::new(
                strongroom_crypto::random_bytes::<RECOVERY_BYTES>()
                    .map_err(|_| ServiceError::internal("random recovery code"))?,
            );
            let plain = base32(bytes.as_slice());
            let mut code = Zeroizing::new(String::with_capacity(RECOVERY_CHARS + 3));
            for (i, c) in plain.chars().enumerate() {
                if i > 0 && i % 4 == 0 {
                    code.push('-');
                }
                code.push(c.to_ascii_lowercase());
            }
            Ok(code)
        })
        .collect()
}

/// A presented recovery code in canonical form (case and separators ignored), or None when it
/// cannot be one.
pub fn normalise_recovery_code(presented: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(RECOVERY_CHARS));
    for c in presented.chars() {
        match c {
            '-' | ' ' => {}
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_uppercase()),
            _ => return None,
        }
        if out.len() > RECOVERY_CHARS {
            return None;
        }
    }
    (out.len() == RECOVERY_CHARS && out.bytes().all(|b| BASE32.contains(&b))).then_some(out)
}

/// What is stored of a recovery code: SHA-256 over a label, the user id and the canonical code. The
/// codes carry 80 random bits, so a fast hash suffices (they are not passwords).
pub fn recovery_code_hash(user_id: &str, canonical: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"strongroom/recovery-code/v1\0");
    h.update(user_id.as_bytes());
    h.update([0]);
    h.update(canonical.as_bytes());
    h.finalize().to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 seed.
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        // The RFC's 8-digit values, last six digits.
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(RFC_SEED, t).unwrap(), code);
        }
    }

    #[test]
    fn accepts_within_skew_and_never_twice() {
        let now = 1_234_567_890u64;
        let step = i64::try_from(now / STEP_SECS).unwrap();
        let code = code_at(RFC_SEED, now).unwrap();
        assert_eq!(accept(RFC_SEED, &code, now, None).unwrap(), Some(step));
        // Replay: the same step (or an older one) is refused.
        assert_eq!(accept(RFC_SEED, &code, now, Some(step)).unwrap(), None);
        assert_eq!(accept(RFC_SEED, &code, now, Some(step + 1)).unwrap(), None);
        // ±1 step of drift.
        let prev = code_at(RFC_SEED, now - STEP_SECS).unwrap();
        let next = code_at(RFC_SEED, now + STEP_SECS).unwrap();
        assert_eq!(accept(RFC_SEED, &prev, now, None).unwrap(), Some(step - 1));
        assert_eq!(
            accept(RFC_SEED, &next, now, Some(step)).unwrap(),
            Some(step + 1)
        );
        // Two steps away, wrong shapes, wrong code.
        let old = code_at(RFC_SEED, now - 2 * STEP_SECS).unwrap();
        assert_eq!(accept(RFC_SEED, &old, now, None).unwrap(), None);
        for bad in ["", "12345", "1234567", "+12345", "abcdef", " 12345"] {
            assert_eq!(accept(RFC_SEED, bad, now, None).unwrap(), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(base32(b"").as_str(), "");
        assert_eq!(base32(b"f").as_str(), "MY");
        assert_eq!(base32(b"foobar").as_str(), "MZXW6YTBOI");
        assert_eq!(
            base32(RFC_SEED).as_str(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(
            decode_base32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq")
                .unwrap()
                .as_slice(),
            RFC_SEED
        );
        assert!(decode_base32("MZ1W").is_none());
        let uri = otpauth_uri("pat.o'neil@x", "ABC");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Strongroom:pat.o%27neil%40x?secret=ABC&issuer=Strongroom&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg"));
    }

    #[test]
    fn recovery_codes() {
        let codes = generate_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut canon: Vec<String> = codes
            .iter()
            .map(|c| {
                assert_eq!(c.len(), 19, "{}", c.as_str());
                assert!(!is_totp_shape(c));
                normalise_recovery_code(c).unwrap().to_string()
            })
            .collect();
        canon.sort();
        canon.dedup();
        assert_eq!(canon.len(), RECOVERY_CODES);
        let c = codes[0].as_str();
        let upper = c.to_uppercase().replace('-', " ");
        assert_eq!(
            normalise_recovery_code(&upper).unwrap().as_str(),
            normalise_recovery_code(c).unwrap().as_str()
        );
        for bad in [
            "",
            "123456",
            "abcd-efgh",
            "abcd-efgh-ijkl-mnop-q",
            "abcd-efgh-ijkl-mn0p",
            "abcd_efgh_ijkl_mnop",
        ] {
            assert!(normalise_recovery_code(bad).is_none(), "{bad:?}");
        }
        let canon0 = normalise_recovery_code(c).unwrap();
        assert_eq!(
            recovery_code_hash("u1", &canon0),
            recovery_code_hash("u1", &canon0)
        );
        assert_ne!(
            recovery_code_hash("u1", &canon0),
            recovery_code_hash("u2", &canon0)
        );
        assert_eq!(recovery_code_hash("u1", &canon0).len(), 32);
    }

    #[test]
    fn secrets_are_random() {
        assert_ne!(*generate_secret().unwrap(), *generate_secret().unwrap());
    }
}
