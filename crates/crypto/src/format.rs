//! The sealed-blob layout shared by field ciphertexts and wrapped tenant keys:
//! `format (1) ‖ key version (u32 BE) ‖ nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16)`.
//! The whole header is also fed into the associated data, so no header byte can be changed
//! without failing authentication.

use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use zeroize::Zeroizing;

use crate::{CryptoError, fill_random};

/// The only format this build writes and reads.
pub(crate) const FORMAT_V1: u8 = 1;
/// Format byte + key version + nonce.
pub(crate) const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// A parsed header, borrowing the rest of the blob.
pub(crate) struct Parsed<'a> {
    pub header: &'a [u8],
    pub version: u32,
    pub nonce: [u8; NONCE_LEN],
    pub body: &'a [u8],
}

/// A header for a new blob, with a fresh random nonce. Random 96-bit nonces stay safe up to
/// about 2^32 seals per key, which is why keys are versioned and rotated.
pub(crate) fn new_header(version: u32) -> Result<[u8; HEADER_LEN], CryptoError> {
    let mut h = [0u8; HEADER_LEN];
    h[0] = FORMAT_V1;
    h[1..5].copy_from_slice(&version.to_be_bytes());
    fill_random(&mut h[5..])?;
    Ok(h)
}

/// Splits a blob into header fields and body; checks format and minimum length only.
pub(crate) fn parse(blob: &[u8]) -> Result<Parsed<'_>, CryptoError> {
    let (&format, _) = blob
        .split_first()
        .ok_or(CryptoError::Malformed { reason: "empty" })?;
    if format != FORMAT_V1 {
        return Err(CryptoError::UnsupportedFormat { format });
    }
    if blob.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::Malformed {
            reason: "too short",
        });
    }
    let (header, body) = blob.split_at(HEADER_LEN);
    let mut v = [0u8; 4];
    v.copy_from_slice(&header[1..5]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[5..]);
    Ok(Parsed {
        header,
        version: u32::from_be_bytes(v),
        nonce,
        body,
    })
}

/// Appends `part` with a u32 big-endian length prefix, so that concatenated parts cannot be
/// re-split differently ("ab"‖"c" vs "a"‖"bc").
pub(crate) fn push_lp(buf: &mut Vec<u8>, part: &[u8]) -> Result<(), CryptoError> {
    let len = u32::try_from(part.len()).map_err(|_| CryptoError::InputTooLong)?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(part);
    Ok(())
}

/// Seals `plaintext` into `header ‖ ct ‖ tag` in one allocation.
pub(crate) fn seal(
    key: &LessSafeKey,
    header: &[u8; HEADER_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(header);
    out.extend_from_slice(plaintext);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[5..]);
    let body = out.get_mut(HEADER_LEN..).ok_or(CryptoError::Encrypt)?;
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| CryptoError::Encrypt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a parsed blob; the plaintext buffer is wiped on drop. `fail` is the error to report
/// on authentication failure (field decrypt vs key unwrap).
pub(crate) fn open(
    key: &LessSafeKey,
    parsed: &Parsed<'_>,
    aad: &[u8],
    fail: CryptoError,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut buf = Zeroizing::new(parsed.body.to_vec());
    let nonce = Nonce::assume_unique_for_key(parsed.nonce);
    let n = match key.open_in_place(nonce, Aad::from(aad), buf.as_mut_slice()) {
        Ok(pt) => pt.len(),
        Err(_) => return Err(fail),
    };
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = new_header(0x0102_0304).unwrap();
        assert_eq!(h[0], FORMAT_V1);
        assert_eq!(&h[1..5], &[1, 2, 3, 4]);
        let mut blob = h.to_vec();
        blob.extend_from_slice(&[0u8; TAG_LEN]);
        let p = parse(&blob).unwrap();
        assert_eq!(p.version, 0x0102_0304);
        assert_eq!(&p.nonce[..], &h[5..]);
        assert_eq!(p.body.len(), TAG_LEN);
    }

    #[test]
    fn parse_rejects_short_and_unknown() {
        assert!(matches!(parse(&[]), Err(CryptoError::Malformed { .. })));
        assert!(matches!(
            parse(&[1u8; HEADER_LEN + TAG_LEN - 1]),
            Err(CryptoError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&[2u8; 64]),
            Err(CryptoError::UnsupportedFormat { format: 2 })
        ));
    }

    #[test]
    fn length_prefix_is_unambiguous() {
        let mut a = Vec::new();
        push_lp(&mut a, b"ab").unwrap();
        push_lp(&mut a, b"c").unwrap();
        let mut b = Vec::new();
        push_lp(&mut b, b"a").unwrap();
        push_lp(&mut b, b"bc").unwrap();
        assert_ne!(a, b);
    }
}
