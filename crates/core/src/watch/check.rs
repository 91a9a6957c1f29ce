//! An entry as the watch reads it, and the checks that it is the entry its row says it is.

use std::borrow::Cow;
use std::fmt;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use strongroom_ledger::{Hash, leaf_hash};
use strongroom_policy::Role;

use crate::clock::parse_rfc3339;

/// One stored entry as the watch reads it.
#[derive(Clone, Copy, Debug)]
pub struct WatchedEntry<'a> {
    pub index: u64,
    pub tenant_id: Option<&'a str>,
    pub entry: &'a [u8],
    /// The stored leaf hash (every row has one: migration 0011 filled in the older rows).
    pub leaf_hash: Option<&'a [u8]>,
}

/// Why an entry is not what its row says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrityFault {
    /// Entries missing before this one.
    Gap,
    /// The row's index goes backwards.
    Index,
    /// No stored leaf hash.
    MissingLeafHash,
    /// The bytes do not hash to the stored leaf hash.
    LeafHash,
    /// Not an entry of the documented encoding, or not at its own index or tenant.
    Encoding,
    /// The entries as stored do not hash to the root of a signed checkpoint.
    Checkpoint,
}

impl IntegrityFault {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrityFault::Gap => "gap",
            IntegrityFault::Index => "index",
            IntegrityFault::MissingLeafHash => "missing_leaf_hash",
            IntegrityFault::LeafHash => "leaf_hash",
            IntegrityFault::Encoding => "encoding",
            IntegrityFault::Checkpoint => "checkpoint",
        }
    }
}

/// The fields of an entry the rules read (see `crate::audit::entry` for the encoding).
#[derive(Deserialize)]
pub(super) struct Seen<'a> {
    index: u64,
    #[serde(borrow)]
    time: &'a str,
    #[serde(borrow)]
    pub(super) actor: Option<SeenActor<'a>>,
    #[serde(borrow)]
    pub(super) action: &'a str,
    #[serde(borrow)]
    pub(super) tenant_id: Option<&'a str>,
    pub(super) records: Vec<IgnoredAny>,
    #[serde(borrow)]
    pub(super) decision: &'a str,
    #[serde(borrow)]
    pub(super) reason: Option<&'a str>,
    /// Unix milliseconds, from `time`.
    #[serde(skip)]
    pub(super) at_ms: i64,
}

#[derive(Deserialize)]
pub(super) struct SeenActor<'a> {
    #[serde(borrow)]
    pub(super) user_id: &'a str,
    /// Every role of the actor is a customer's (and it has one); without roles, staff's rules.
    #[serde(rename = "roles", default, deserialize_with = "only_customer_roles")]
    pub(super) customer: bool,
}

/// Reads the actor's roles without keeping them: whether all are customer roles.
fn only_customer_roles<'de, D: Deserializer<'de>>(roles: D) -> Result<bool, D::Error> {
    struct Roles;
    impl<'de> Visitor<'de> for Roles {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of role names")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let (mut any, mut all_customer) = (false, true);
            // Borrowed where the text has no escapes, owned where it has: any role name reads.
            #[derive(Deserialize)]
            struct Name<'a>(#[serde(borrow)] Cow<'a, str>);
            while let Some(Name(role)) = seq.next_element::<Name<'de>>()? {
                any = true;
                all_customer &= role.parse::<Role>().is_ok_and(|r| r.is_customer());
            }
            Ok(any && all_customer)
        }
    }
    roles.deserialize_seq(Roles)
}

/// The leaf hash of the entry's bytes, and the entry decoded if it is the entry its row and its
/// stored leaf hash say it is. The index is the caller's to check (a gap still leaves this entry
/// to judge).
pub(super) fn check(row: WatchedEntry<'_>) -> (Hash, Result<Seen<'_>, IntegrityFault>) {
    let leaf = leaf_hash(row.entry);
    (leaf, decode(row, &leaf))
}

fn decode<'e>(row: WatchedEntry<'e>, leaf: &Hash) -> Result<Seen<'e>, IntegrityFault> {
    let stored = row.leaf_hash.ok_or(IntegrityFault::MissingLeafHash)?;
    if leaf.as_slice() != stored {
        return Err(IntegrityFault::LeafHash);
    }
    let mut seen: Seen<'e> =
        serde_json::from_slice(row.entry).map_err(|_| IntegrityFault::Encoding)?;
    if seen.index != row.index || seen.tenant_id != row.tenant_id {
        return Err(IntegrityFault::Encoding);
    }
    seen.at_ms = parse_rfc3339(seen.time).ok_or(IntegrityFault::Encoding)?;
    Ok(seen)
}

/// The time of an entry, in Unix milliseconds, without judging it (to find where to prime from).
pub fn entry_time_ms(entry: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Time<'a> {
        #[serde(borrow)]
        time: &'a str,
    }
    let time: Time<'_> = serde_json::from_slice(entry).ok()?;
    parse_rfc3339(time.time)
}
