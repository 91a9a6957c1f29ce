//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the receiver checks
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))>`, where the
//! key is the bytes encoded after `whsec_` in the secret the tenant holds.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Prefix of a webhook secret as shown to the tenant.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// A fresh signing key: 32 bytes from the system CSPRNG.
pub fn new_webhook_key() -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    Ok(Zeroizing::new(crate::random_bytes::<32>()?))
}

/// The secret as the tenant sees it: `whsec_` + base64 of the key.
pub fn webhook_secret_text(key: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(format!("{WEBHOOK_SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-signature` header value for one message.
pub fn webhook_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn matches_the_reference_vector() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = webhook_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn any_change_changes_the_signature() {
        let key = [7u8; 32];
        let base = webhook_signature(&key, "a", 1, b"{}");
        assert_ne!(base, webhook_signature(&key, "b", 1, b"{}"));
        assert_ne!(base, webhook_signature(&key, "a", 2, b"{}"));
        assert_ne!(base, webhook_signature(&key, "a", 1, b"{ }"));
        assert_ne!(base, webhook_signature(&[8u8; 32], "a", 1, b"{}"));
    }

    #[test]
    fn secret_text_round_trips() {
        let key = new_webhook_key().unwrap();
        let text = webhook_secret_text(key.as_ref());
        let encoded = text.strip_prefix(WEBHOOK_SECRET_PREFIX).unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), key.as_ref());
    }
}
