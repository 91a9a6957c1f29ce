//! C2SP signed-note with Ed25519, wire-compatible with Go's `golang.org/x/mod/sumdb/note`.
//!
//! ```text
//! <body lines, ending in "\n">
//! <blank line>
//! — <key name> <base64(4-byte big-endian key id ‖ 64-byte signature)>
//! ```
//! The signed message is the body, including its final newline but not the blank line.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::checkpoint::Checkpoint;
use crate::error::LedgerError;

/// Notes larger than this are refused before any parsing (bounds work on hostile input).
pub const MAX_NOTE_SIZE: usize = 1 << 20;
/// Notes with more signature lines than this are refused (C2SP requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 100;

const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

/// Key id: first 4 bytes, big-endian, of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`.
#[must_use]
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Non-empty, no Unicode white space, no `+` (same rule as Go's `isValidName`).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

fn check_name(name: &str) -> Result<(), LedgerError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(LedgerError::InvalidKeyName)
    }
}

/// Signs note bodies with one Ed25519 key. The key is zeroized on drop and never printed.
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("key", &"[redacted]")
            .finish()
    }
}

impl NoteSigner {
    /// A fresh key from the OS random source.
    pub fn generate(name: &str) -> Result<Self, LedgerError> {
        check_name(name)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|_| LedgerError::Random)?;
        Self::from_bytes(name, &seed)
    }

    /// Loads a key from its 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_bytes(name: &str, secret: &[u8; 32]) -> Result<Self, LedgerError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(secret);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// The seed, for persisting the key file.
    #[must_use]
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    #[must_use]
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `body` (which must end in a newline and contain no control characters but newlines)
    /// and returns the full signed note text.
    pub fn sign(&self, body: &str) -> Result<String, LedgerError> {
        if !body.ends_with('\n') {
            return Err(LedgerError::MalformedNote("body must end with a newline"));
        }
        check_chars(body)?;
        let sig = self
            .key
            .try_sign(body.as_bytes())
            .map_err(|_| LedgerError::Signing)?;
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        let note = format!(
            "{body}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(raw)
        );
        if note.len() > MAX_NOTE_SIZE {
            return Err(LedgerError::NoteTooLarge(note.len()));
        }
        Ok(note)
    }

    /// Signs a checkpoint after checking its body parses back to the same checkpoint.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<String, LedgerError> {
        checkpoint.validate()?;
        self.sign(&checkpoint.body())
    }
}

/// Verifies notes against one trusted Ed25519 key; signatures by other keys are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<8 hex digits key id>+<base64(0x01 ‖ 32-byte key)>`.
    pub fn parse(vkey: &str) -> Result<Self, LedgerError> {
        let malformed = LedgerError::MalformedVerifierKey;
        let (name, rest) = vkey
            .split_once('+')
            .ok_or(malformed("missing '+' separators"))?;
        let (hex, key64) = rest
            .split_once('+')
            .ok_or(malformed("missing '+' separators"))?;
        check_name(name)?;
        if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("key id must be 8 hex digits"));
        }
        let id =
            u32::from_str_radix(hex, 16).map_err(|_| malformed("key id must be 8 hex digits"))?;
        let raw = STANDARD
            .decode(key64)
            .map_err(|_| malformed("key is not canonical base64"))?;
        let (&alg, key) = raw.split_first().ok_or(malformed("empty key"))?;
        if alg != ALG_ED25519 {
            return Err(LedgerError::UnsupportedAlgorithm(alg));
        }
        let key: &[u8; 32] = key
            .try_into()
            .map_err(|_| malformed("Ed25519 key must be 32 bytes"))?;
        if key_id(name, key) != id {
            return Err(LedgerError::KeyIdMismatch);
        }
        Self::from_public_key(name, key)
    }

    /// A verifier for a raw Ed25519 public key. Small-order ("weak") keys are refused: any
    /// signature would verify under them.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<Self, LedgerError> {
        check_name(name)?;
        let key =
            VerifyingKey::from_bytes(public_key).map_err(|_| LedgerError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(LedgerError::InvalidPublicKey);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, public_key),
            key,
        })
    }

    /// The verifier key string, as Go's `note.NewEd25519VerifierKey` writes it.
    #[must_use]
    pub fn to_vkey(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(raw))
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Verifies a signed note and returns its body. Needs at least one signature line from this
    /// key; every line from this key must verify; lines from other keys are ignored.
    pub fn verify(&self, note: &str) -> Result<String, LedgerError> {
        self.verify_bytes(note.as_bytes())
    }

    /// Like [`NoteVerifier::verify`], for raw bytes off the wire (refuses non-UTF-8).
    pub fn verify_bytes(&self, note: &[u8]) -> Result<String, LedgerError> {
        if note.len() > MAX_NOTE_SIZE {
            return Err(LedgerError::NoteTooLarge(note.len()));
        }
        let text =
            std::str::from_utf8(note).map_err(|_| LedgerError::MalformedNote("not UTF-8"))?;
        let (body, sigs) = parse_note(text)?;
        let mut verified = 0usize;
        for line in sigs {
            if line.name != self.name || line.key_id != self.key_id {
                continue;
            }
            let sig = Signature::from_slice(&line.sig).map_err(|_| LedgerError::BadSignature)?;
            self.key
                .verify_strict(body.as_bytes(), &sig)
                .map_err(|_| LedgerError::BadSignature)?;
            verified += 1;
        }
        if verified == 0 {
            return Err(LedgerError::NoSignatureFromKey {
                name: self.name.clone(),
                key_id: self.key_id,
            });
        }
        Ok(body.to_owned())
    }

    /// Verifies a signed checkpoint and parses its body. The caller still checks the origin.
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, LedgerError> {
        Checkpoint::parse_body(&self.verify(note)?)
    }
}

/// One parsed signature line.
struct SigLine<'a> {
    name: &'a str,
    key_id: u32,
    /// Decoded bytes after the key id (the raw signature for our algorithm).
    sig: Vec<u8>,
}

fn check_chars(text: &str) -> Result<(), LedgerError> {
    if text.chars().any(|c| c < '\u{20}' && c != '\n') {
        return Err(LedgerError::MalformedNote("control character"));
    }
    Ok(())
}

/// Splits a note into body and signature lines, decoding every line (as Go's `note.Open` does).
fn parse_note(note: &str) -> Result<(&str, Vec<SigLine<'_>>), LedgerError> {
    check_chars(note)?;
    // The body ends at the *last* blank line; it may contain blank lines itself.
    let split = note.rfind("\n\n").ok_or(LedgerError::MalformedNote(
        "no blank line before the signatures",
    ))?;
    let body = note
        .get(..=split)
        .ok_or(LedgerError::MalformedNote("bad split"))?;
    let block = note
        .get(split + 2..)
        .ok_or(LedgerError::MalformedNote("bad split"))?;
    let Some(block) = block.strip_suffix('\n') else {
        return Err(LedgerError::MalformedNote(
            "signature block must end with a newline",
        ));
    };
    if block.is_empty() {
        return Err(LedgerError::MalformedNote("no signature lines"));
    }
    let mut lines = Vec::new();
    for (count, line) in block.split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(LedgerError::TooManySignatures);
        }
        lines.push(parse_sig_line(line)?);
    }
    Ok((body, lines))
}

fn parse_sig_line(line: &str) -> Result<SigLine<'_>, LedgerError> {
    let malformed = LedgerError::MalformedNote;
    let rest = line.strip_prefix(SIG_PREFIX).ok_or(malformed(
        "signature line must start with an em dash and a space",
    ))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(malformed("signature line has no signature"))?;
    if !valid_name(name) {
        return Err(malformed("invalid key name in signature line"));
    }
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| malformed("signature is not canonical base64"))?;
    if raw.len() < 5 {
        return Err(malformed("signature too short"));
    }
    let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let sig = raw.get(4..).unwrap_or_default().to_vec();
    Ok(SigLine { name, key_id, sig })
}
