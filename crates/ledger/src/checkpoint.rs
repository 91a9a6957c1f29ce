//! C2SP tlog-checkpoint bodies: `<origin>\n<size>\n<base64 root>\n`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::LedgerError;
use crate::hash::{Hash, empty_root};
use crate::verify::verify_consistency;

/// A log's signed statement "my tree has `size` leaves and this `root`".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note body. Only meaningful for a valid origin: use [`Checkpoint::validate`] or
    /// `NoteSigner::sign_checkpoint`, which refuses bodies that would not parse back.
    #[must_use]
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Checks that [`Checkpoint::body`] parses back to `self`.
    pub fn validate(&self) -> Result<(), LedgerError> {
        check_origin(&self.origin)
    }

    /// Parses a note body. Extension lines (allowed but NOT RECOMMENDED by C2SP) are refused:
    /// our logs never write them and `Checkpoint` could not carry them.
    pub fn parse_body(text: &str) -> Result<Self, LedgerError> {
        let malformed = LedgerError::MalformedCheckpoint;
        let Some(content) = text.strip_suffix('\n') else {
            return Err(malformed("body must end with a newline"));
        };
        let mut lines = content.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(malformed("body must have origin, size and root lines"));
        };
        if lines.next().is_some() {
            return Err(malformed("extension lines are not supported"));
        }
        check_origin(origin)?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn check_origin(origin: &str) -> Result<(), LedgerError> {
    if origin.is_empty() {
        return Err(LedgerError::MalformedCheckpoint("empty origin"));
    }
    if origin.chars().any(char::is_control) {
        return Err(LedgerError::MalformedCheckpoint(
            "control character in origin",
        ));
    }
    Ok(())
}

fn parse_size(s: &str) -> Result<u64, LedgerError> {
    let malformed = LedgerError::MalformedCheckpoint;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("size must be ASCII decimal digits"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(malformed("size has a leading zero"));
    }
    s.parse::<u64>()
        .map_err(|_| malformed("size does not fit in 64 bits"))
}

fn parse_root(s: &str) -> Result<Hash, LedgerError> {
    let malformed = LedgerError::MalformedCheckpoint;
    // 44 chars of padded base64 encode 32 bytes; refusing longer input bounds the work.
    if s.len() != 44 {
        return Err(malformed("root must be 32 bytes of padded base64"));
    }
    let bytes = STANDARD
        .decode(s)
        .map_err(|_| malformed("root is not canonical base64"))?;
    Hash::try_from(bytes.as_slice()).map_err(|_| malformed("root must be 32 bytes"))
}

/// Accepts `new` as a valid successor of `old`: same origin, no shrinking, and `proof`
/// (RFC 9162 consistency proof from `old.size` to `new.size`) verifies. Equal sizes need equal
/// roots and an empty proof. An `old` of size 0 must carry the empty root; every tree extends
/// it, so the proof must be empty.
pub fn check_checkpoint_consistency(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &[Hash],
) -> Result<(), LedgerError> {
    if old.origin != new.origin {
        return Err(LedgerError::OriginMismatch);
    }
    if new.size < old.size {
        return Err(LedgerError::SizeRegression {
            old: old.size,
            new: new.size,
        });
    }
    if old.size == 0 {
        if old.root != empty_root() {
            return Err(LedgerError::OldRootMismatch);
        }
        if new.size == 0 && new.root != empty_root() {
            return Err(LedgerError::RootMismatch);
        }
        if !proof.is_empty() {
            return Err(LedgerError::ProofTooLong);
        }
        return Ok(());
    }
    verify_consistency(old.size, new.size, &old.root, &new.root, proof)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trip() {
        let c = Checkpoint {
            origin: "example.com/log".into(),
            size: 20852163,
            root: [7; 32],
        };
        let body = c.body();
        assert_eq!(
            body,
            "example.com/log\n20852163\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), c);
        let zero = Checkpoint {
            origin: "o".into(),
            size: 0,
            root: empty_root(),
        };
        assert_eq!(Checkpoint::parse_body(&zero.body()).unwrap(), zero);
    }

    #[test]
    fn c2sp_example_parses() {
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let c = Checkpoint::parse_body(body).unwrap();
        assert_eq!(c.origin, "example.com/behind-the-sofa");
        assert_eq!(c.size, 20852163);
        assert_eq!(c.body(), body);
    }

    #[test]
    fn rejects_malformed_bodies() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let bad = [
            format!("o\n1\n{root}"),        // no final newline
            format!("o\n1\n{root}\n\n"),    // trailing blank line
            format!("o\n1\n{root}\next\n"), // extension line
            format!("\n1\n{root}\n"),       // empty origin
            format!("o\t\n1\n{root}\n"),    // control char
            format!("o\n01\n{root}\n"),     // leading zero
            format!("o\n+1\n{root}\n"),     // sign
            format!("o\n-1\n{root}\n"),
            format!("o\n 1\n{root}\n"),
            format!("o\n\n{root}\n"),                     // empty size
            format!("o\n18446744073709551616\n{root}\n"), // u64::MAX + 1
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".to_owned(), // no padding
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_owned(), // non-canonical
            "o\n1\nAAAA\n".to_owned(),
            "o\n1\n".to_owned(),
            String::new(),
            "\n".to_owned(),
        ];
        for b in &bad {
            assert!(Checkpoint::parse_body(b).is_err(), "accepted {b:?}");
        }
        assert_eq!(
            Checkpoint::parse_body(&format!("o\n18446744073709551615\n{root}\n"))
                .unwrap()
                .size,
            u64::MAX
        );
    }

    #[test]
    fn consistency_rules() {
        let e = Checkpoint {
            origin: "o".into(),
            size: 0,
            root: empty_root(),
        };
        let one = Checkpoint {
            origin: "o".into(),
            size: 1,
            root: [1; 32],
        };
        assert!(check_checkpoint_consistency(&e, &one, &[]).is_ok());
        assert!(check_checkpoint_consistency(&e, &e, &[]).is_ok());
        assert!(check_checkpoint_consistency(&e, &one, &[[0; 32]]).is_err());
        assert!(check_checkpoint_consistency(&one, &e, &[]).is_err());
        assert!(check_checkpoint_consistency(&one, &one, &[]).is_ok());
        let other = Checkpoint {
            origin: "p".into(),
            ..one.clone()
        };
        assert_eq!(
            check_checkpoint_consistency(&one, &other, &[]),
            Err(LedgerError::OriginMismatch)
        );
        let fork = Checkpoint {
            root: [2; 32],
            ..one.clone()
        };
        assert!(check_checkpoint_consistency(&one, &fork, &[]).is_err());
        let bad_empty = Checkpoint {
            root: [1; 32],
            ..e.clone()
        };
        assert!(check_checkpoint_consistency(&bad_empty, &one, &[]).is_err());
        assert!(check_checkpoint_consistency(&e, &bad_empty, &[]).is_err());
    }
}
