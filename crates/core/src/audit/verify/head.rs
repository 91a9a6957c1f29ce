//! The members of an entry that verification cross-checks with its row: version, index, tenant.
//!
//! They are the head of the canonical encoding (`entry.rs`), so they are read there directly,
//! in a fraction of what a JSON parse of the whole entry costs (a parse costs more than hashing
//! the entry, and verification hashes every one). The bytes after the head are covered by the
//! leaf hash and the signed roots, not re-parsed. Anything not in canonical form, and every
//! mismatch, goes through the full parse, which gives the precise failure.

use strongroom_ledger::{Hash, leaf_hash};
use strongroom_store::AuditEntryRef;

use super::FailureKind;
use crate::audit::entry::ENTRY_VERSION;

/// The leaf hash of `row` if its canonical head names the row's own index and tenant; `None`
/// sends it to [`check_entry`]. The store runs it where the entry is read.
pub(super) fn digest_entry(row: AuditEntryRef<'_>) -> Option<Hash> {
    let (claimed, tenant) = canonical_head(row.entry)?;
    (i64::try_from(claimed).ok() == Some(row.idx) && tenant == row.tenant_id.map(str::as_bytes))
        .then(|| leaf_hash(row.entry))
}

/// Checks that `row` holds a version-1 entry for `index` whose tenant is the row's.
pub(super) fn check_entry(row: AuditEntryRef<'_>, index: u64) -> Result<(), FailureKind> {
    match canonical_head(row.entry) {
        Some((claimed, tenant))
            if claimed == index && tenant == row.tenant_id.map(str::as_bytes) =>
        {
            Ok(())
        }
        _ => check_parsed(row, index),
    }
}

#[derive(serde::Deserialize)]
struct EntryHead {
    v: u32,
    index: u64,
    tenant_id: Option<String>,
}

fn check_parsed(row: AuditEntryRef<'_>, index: u64) -> Result<(), FailureKind> {
    let head: EntryHead = serde_json::from_slice(row.entry)
        .map_err(|e| FailureKind::Unreadable(format!("not an audit entry: {e}")))?;
    if head.v != ENTRY_VERSION {
        return Err(FailureKind::Unreadable(format!(
            "unknown version {}",
            head.v
        )));
    }
    if head.index != index {
        return Err(FailureKind::IndexMismatch {
            claimed: head.index,
        });
    }
    if head.tenant_id.as_deref() != row.tenant_id {
        return Err(FailureKind::TenantMismatch);
    }
    Ok(())
}

/// `(index, tenant_id)` of a version-1 entry whose head is in canonical form:
/// `{"v":1,"index":N,"time":"…","actor":null|{"user_id":"…","roles":["…",…]},"action":"…",
/// "tenant_id":null|"…","resource":…`. `None` for anything else, including a tenant id with
/// escapes (the full parse decodes those). The tenant id is returned as its raw bytes: equal to
/// a row's `&str`, it is that string, so it is never decoded here.
fn canonical_head(entry: &[u8]) -> Option<(u64, Option<&[u8]>)> {
    let mut at = Cursor {
        bytes: entry,
        at: 0,
    };
    at.literal(b"{\"v\":1,\"index\":")?;
    let index = at.integer()?;
    at.literal(b",\"time\":")?;
    at.string()?;
    at.literal(b",\"actor\":")?;
    if at.literal(b"null").is_none() {
        at.literal(b"{\"user_id\":")?;
        at.string()?;
        at.literal(b",\"roles\":[")?;
        if at.literal(b"]").is_none() {
            loop {
                at.string()?;
                if at.literal(b",").is_none() {
                    break;
                }
            }
            at.literal(b"]")?;
        }
        at.literal(b"}")?;
    }
    at.literal(b",\"action\":")?;
    at.string()?;
    at.literal(b",\"tenant_id\":")?;
    let tenant = match at.literal(b"null") {
        Some(()) => None,
        None => Some(at.unescaped_string()?),
    };
    at.literal(b",\"resource\":")?;
    Some((index, tenant))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at.checked_add(expected.len())?;
        if self.bytes.get(self.at..end)? != expected {
            return None;
        }
        self.at = end;
        Some(())
    }

    /// A JSON unsigned integer without leading zeros that fits in a `u64`.
    fn integer(&mut self) -> Option<u64> {
        let rest = self.bytes.get(self.at..)?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let text = rest.get(..digits)?;
        if digits == 0 || (digits > 1 && text.first() == Some(&b'0')) {
            return None;
        }
        let value = text.iter().try_fold(0u64, |value, digit| {
            value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })?;
        self.at += digits;
        Some(value)
    }

    /// A JSON string's raw contents (escapes left as they are); control characters refuse.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.literal(b"\"")?;
        let begin = self.at;
        loop {
            let stop = self
                .at
                .checked_add(find_stop(self.bytes.get(self.at..)?)?)?;
            match *self.bytes.get(stop)? {
                b'"' => {
                    let raw = self.bytes.get(begin..stop)?;
                    self.at = stop.checked_add(1)?;
                    return Some(raw);
                }
                b'\\' => self.at = stop.checked_add(2)?,
                _ => return None,
            }
        }
    }

    /// [`Cursor::string`] for a string without escapes; `None` for one with any.
    fn unescaped_string(&mut self) -> Option<&'a [u8]> {
        self.literal(b"\"")?;
        let begin = self.at;
        let stop = begin.checked_add(find_stop(self.bytes.get(begin..)?)?)?;
        if *self.bytes.get(stop)? != b'"' {
            return None;
        }
        self.at = stop.checked_add(1)?;
        self.bytes.get(begin..stop)
    }
}

/// Bytes tested at once by [`find_stop`].
const LANES: usize = 16;

/// The position of the first `"`, `\` or control character in `bytes`.
///
/// Tests [`LANES`] bytes at a time with no branch per byte (the compiler turns the fold into
/// vector compares): a head's strings are a few dozen bytes each, and a byte-at-a-time loop
/// spent most of its time on the branch that ends it.
fn find_stop(bytes: &[u8]) -> Option<usize> {
    let is_stop = |b: u8| (b == b'"') | (b == b'\\') | (b < 0x20);
    let mut chunks = bytes.chunks_exact(LANES);
    let mut offset = 0;
    for chunk in &mut chunks {
        let lanes: &[u8; LANES] = chunk.try_into().ok()?;
        if lanes.iter().fold(false, |any, &b| any | is_stop(b)) {
            return lanes.iter().position(|&b| is_stop(b)).map(|at| offset + at);
        }
        offset += LANES;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| is_stop(b))
        .map(|at| offset + at)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use strongroom_store::AuditEntryRow;

    use super::*;
    use crate::audit::entry::{Actor, AuditRecord, encode};

    fn row(record: &AuditRecord, index: u64) -> AuditEntryRow {
        AuditEntryRow {
            idx: i64::try_from(index).unwrap_or(i64::MAX),
            tenant_id: record.tenant_id.clone(),
            entry: encode(record, index, "2026-01-01T00:00:00.000Z").unwrap(),
        }
    }

    fn records() -> Vec<AuditRecord> {
        let mut plain = AuditRecord::new("contact.read", "req-1");
        plain.tenant_id = Some("0193a5b2-7c1d-7e2f-9a3b-4c5d6e7f8092".into());
        let mut with_actor = plain.clone();
        with_actor.actor = Some(Actor {
            user_id: "u\"1\\".into(),
            roles: vec!["tenant_admin".into(), "auditor".into()],
        });
        let mut no_roles = plain.clone();
        no_roles.actor = Some(Actor {
            user_id: "u2".into(),
            roles: Vec::new(),
        });
        let mut no_tenant = with_actor.clone();
        no_tenant.tenant_id = None;
        let mut escaped_tenant = plain.clone();
        escaped_tenant.tenant_id = Some("t\"x".into());
        vec![plain, with_actor, no_roles, no_tenant, escaped_tenant]
    }

    /// The fast read and the full parse agree on every entry the encoder writes.
    #[test]
    fn canonical_head_matches_the_full_parse() {
        for record in records() {
            for index in [0, 7, 10, 4_294_967_296, u64::MAX] {
                let row = row(&record, index);
                let parsed: EntryHead = serde_json::from_slice(&row.entry).unwrap();
                match canonical_head(&row.entry) {
                    Some((claimed, tenant)) => {
                        assert_eq!(claimed, parsed.index);
                        assert_eq!(tenant, parsed.tenant_id.as_deref().map(str::as_bytes));
                    }
                    // Only an escaped tenant id is left to the full parse.
                    None => assert!(parsed.tenant_id.unwrap().contains('"')),
                }
                assert_eq!(check_entry(row.as_entry_ref(), index), Ok(()));
            }
        }
    }

    /// The store-side digest is the leaf hash exactly when the fast read accepts the row as it
    /// stands; everything else is left to `check_entry`.
    #[test]
    fn digest_is_taken_only_of_entries_in_place() {
        for record in records() {
            let good = row(&record, 12);
            let in_place = canonical_head(&good.entry).is_some();
            assert_eq!(
                digest_entry(good.as_entry_ref()),
                in_place.then(|| leaf_hash(&good.entry))
            );
            let mut moved = good.clone();
            moved.idx = 13;
            assert_eq!(digest_entry(moved.as_entry_ref()), None);
            let mut retenanted = good.clone();
            retenanted.tenant_id = Some("other".into());
            assert_eq!(digest_entry(retenanted.as_entry_ref()), None);
        }
    }

    #[test]
    fn mismatches_get_the_full_parse_verdict() {
        let record = &records()[1];
        let good = row(record, 12);
        assert_eq!(
            check_entry(good.as_entry_ref(), 13),
            Err(FailureKind::IndexMismatch { claimed: 12 })
        );
        let mut moved = good.clone();
        moved.tenant_id = Some("other".into());
        assert_eq!(
            check_entry(moved.as_entry_ref(), 12),
            Err(FailureKind::TenantMismatch)
        );
        moved.tenant_id = None;
        assert_eq!(
            check_entry(moved.as_entry_ref(), 12),
            Err(FailureKind::TenantMismatch)
        );
        let mut version = good.clone();
        version.entry = String::from_utf8(good.entry.clone())
            .unwrap()
            .replacen("{\"v\":1,", "{\"v\":2,", 1)
            .into_bytes();
        assert!(matches!(
            check_entry(version.as_entry_ref(), 12),
            Err(FailureKind::Unreadable(_))
        ));
        let mut garbage = good.clone();
        garbage.entry = b"{\"v\":1,\"index\":12,\"time\":".to_vec();
        assert!(matches!(
            check_entry(garbage.as_entry_ref(), 12),
            Err(FailureKind::Unreadable(_))
        ));
    }

    /// A non-canonical but valid head (leading zeros are not JSON; spacing is) still parses.
    #[test]
    fn non_canonical_heads_fall_back() {
        let record = &records()[0];
        let good = row(record, 5);
        let spaced = String::from_utf8(good.entry.clone()).unwrap().replacen(
            "\"index\":5",
            "\"index\": 5",
            1,
        );
        assert_eq!(canonical_head(spaced.as_bytes()), None);
        let spaced = AuditEntryRow {
            entry: spaced.into_bytes(),
            ..good.clone()
        };
        assert_eq!(check_entry(spaced.as_entry_ref(), 5), Ok(()));
        assert_eq!(canonical_head(b"{\"v\":1,\"index\":05,"), None);
        assert_eq!(
            canonical_head(b"{\"v\":1,\"index\":99999999999999999999,"),
            None
        );
    }

    /// The chunked search finds what a byte-at-a-time search finds, at every length and
    /// position around the chunk edges, among fillers at the edges of the stop set.
    #[test]
    fn find_stop_agrees_with_a_plain_search() {
        for filler in [b' ', b'!', b'#', b'[', b']', 0x7f, 0xff] {
            for len in 0..(3 * LANES + 2) {
                for at in 0..=len {
                    for stop in [b'"', b'\\', 0x00, 0x1f] {
                        let mut bytes = vec![filler; len];
                        if let Some(byte) = bytes.get_mut(at) {
                            *byte = stop;
                        }
                        let want = bytes
                            .iter()
                            .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
                        assert_eq!(find_stop(&bytes), want, "len {len}, at {at}");
                    }
                }
            }
        }
    }

    /// Panic-free on every prefix of a real entry and on arbitrary bytes.
    #[test]
    fn any_prefix_is_handled() {
        let entry = row(&records()[1], 3).entry;
        let marker = b",\"resource\":";
        let head_len = entry
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap()
            + marker.len();
        for end in 0..=entry.len() {
            assert_eq!(canonical_head(&entry[..end]).is_some(), end >= head_len);
        }
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..10_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = entry.clone();
            let at = usize::try_from(state % entry.len() as u64).unwrap();
            bytes[at] = (state >> 32) as u8;
            let _ = canonical_head(&bytes);
        }
    }
}
