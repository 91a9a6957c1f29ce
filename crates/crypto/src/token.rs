//! Opaque bearer tokens. The server stores only their SHA-256: the token has 256 bits of
//! entropy, so a plain hash (no salt, no slow KDF) is enough to make a stolen table useless.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::{CryptoError, random_bytes};

/// Prefix of every token, so leaked tokens are greppable by secret scanners.
pub const TOKEN_PREFIX: &str = "sr_";
/// Length of a token string: prefix + base64url of 32 bytes.
pub const TOKEN_LEN: usize = 3 + 43;

/// A freshly minted bearer token; shown to the client once, then only its hash is kept.
pub struct Token(Zeroizing<String>);

impl Token {
    pub fn generate() -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(random_bytes::<32>()?);
        let mut s = Zeroizing::new(String::with_capacity(TOKEN_LEN));
        s.push_str(TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut s);
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What to store: SHA-256 of the token string.
    pub fn hash(&self) -> [u8; 32] {
        token_hash(self.as_str())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// SHA-256 of a presented token string, to look it up by hash.
pub fn token_hash(presented: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, presented.as_bytes());
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

/// Cheap shape check (prefix, length, alphabet) to reject garbage before a database lookup.
pub fn token_well_formed(presented: &str) -> bool {
    presented.len() == TOKEN_LEN
        && presented.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
