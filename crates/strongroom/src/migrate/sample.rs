//! The decrypted sample: up to `--sample` random contacts and cases per tenant, decrypted on both
//! sides with the root key (each side's own wrapped tenant keys) and compared in memory. Findings
//! name tenants, record ids and field names only, never a value.

use anyhow::Result;
use strongroom_crypto::{FieldContext, RootKey, TenantKeyring, unwrap_tenant_keys};
use strongroom_store::{CaseFilter, CaseRow, ContactRow, Store, TenantScope};

use super::verify::{Ends, Findings};

/// The tenant's keyring in one store, unwrapped with the root key; `None` when it holds no keys.
async fn keyring(store: &dyn Store, root: &RootKey, tenant: &str) -> Result<Option<TenantKeyring>> {
    let rows = store.tenant_keys(&TenantScope::new(tenant)).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut versions = Vec::with_capacity(rows.len());
    for row in rows {
        let version = u32::try_from(row.version)?;
        versions.push(
            unwrap_tenant_keys(root, tenant, version, &row.wrapped)
                .map_err(|_| anyhow::anyhow!("tenant keys do not unwrap"))?,
        );
    }
    TenantKeyring::new(tenant, versions)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("tenant keyring"))
}

/// A uniformly random index below `n` (n > 0), from the OS generator.
fn random_below(n: usize) -> Result<usize> {
    let bytes: [u8; 8] = strongroom_crypto::random_bytes()
        .map_err(|_| anyhow::anyhow!("random number generator unavailable"))?;
    let n64 = u64::try_from(n)?;
    Ok(usize::try_from(u64::from_le_bytes(bytes) % n64)?)
}

/// Up to `k` of `ids`, chosen at random (reservoir sampling over the stream of pages).
struct Reservoir {
    k: usize,
    seen: usize,
    picked: Vec<String>,
}

impl Reservoir {
    fn offer(&mut self, id: &str) -> Result<()> {
        self.seen += 1;
        if self.picked.len() < self.k {
            self.picked.push(id.to_owned());
        } else {
            let j = random_below(self.seen)?;
            if let Some(slot) = self.picked.get_mut(j) {
                *slot = id.to_owned();
            }
        }
        Ok(())
    }
}

/// Whether two ciphertexts of the same field decrypt to the same plaintext under each side's ring.
fn same_plain(
    rings: (&TenantKeyring, &TenantKeyring),
    ctx: &FieldContext<'_>,
    a: Option<&[u8]>,
    b: Option<&[u8]>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            match (rings.0.decrypt_field(ctx, a), rings.1.decrypt_field(ctx, b)) {
                (Ok(pa), Ok(pb)) => pa.as_slice() == pb.as_slice(),
                _ => false,
            }
        }
        _ => false,
    }
}

fn contact_fields(c: &ContactRow) -> [(&'static str, Option<&[u8]>); 5] {
    [
        ("name", Some(c.name.as_slice())),
        ("email", c.email.as_deref()),
        ("phone", c.phone.as_deref()),
        ("address", c.address.as_deref()),
        ("notes", c.notes.as_deref()),
    ]
}

fn case_fields(c: &CaseRow) -> [(&'static str, Option<&[u8]>); 2] {
    [
        ("title", Some(c.title.as_slice())),
        ("description", c.description.as_deref()),
    ]
}

/// Compares one record's fields on both sides; returns the names of the fields that differ.
fn differing<'f>(
    rings: (&TenantKeyring, &TenantKeyring),
    kind: &str,
    id: &str,
    a: &[(&'f str, Option<&[u8]>)],
    b: &[(&'f str, Option<&[u8]>)],
) -> Vec<&'f str> {
    a.iter()
        .zip(b)
        .filter(|((field, x), (_, y))| {
            let ctx = FieldContext {
                kind,
                record_id: id,
                field,
            };
            !same_plain(rings, &ctx, *x, *y)
        })
        .map(|((field, _), _)| *field)
        .collect()
}

#[derive(Default)]
struct Tally {
    tenants: usize,
    without_keys: usize,
    contacts: usize,
    cases: usize,
}

pub async fn check_sample(
    ends: &Ends<'_>,
    root: &RootKey,
    k: usize,
    f: &mut Findings,
) -> Result<()> {
    let bad_before = f.bad.len();
    let mut tally = Tally::default();
    let mut after: Option<String> = None;
    loop {
        let page = ends.source_store.tenants(after.as_deref(), 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for tenant in &page {
            tally.tenants += 1;
            check_tenant(ends, root, k, &tenant.id, f, &mut tally).await?;
        }
    }
    if f.bad.len() > bad_before {
        return Ok(());
    }
    f.ok.push(format!(
        "sample: {} contacts and {} cases of {} tenants decrypt to the same plaintext on both \
         sides{}",
        tally.contacts,
        tally.cases,
        tally.tenants,
        if tally.without_keys > 0 {
            format!(
                " ({} tenants hold no keys in the source)",
                tally.without_keys
            )
        } else {
            String::new()
        }
    ));
    Ok(())
}

async fn check_tenant(
    ends: &Ends<'_>,
    root: &RootKey,
    k: usize,
    tenant: &str,
    f: &mut Findings,
    tally: &mut Tally,
) -> Result<()> {
    let scope = TenantScope::new(tenant);
    let src_ring = match keyring(ends.source_store, root, tenant).await {
        Ok(Some(ring)) => ring,
        Ok(None) => {
            tally.without_keys += 1;
            return Ok(());
        }
        Err(_) => {
            f.bad.push(format!(
                "tenant {tenant}: its keys do not unwrap in the source with this root key"
            ));
            return Ok(());
        }
    };
    let Ok(Some(dst_ring)) = keyring(ends.target_store, root, tenant).await else {
        f.bad.push(format!(
            "tenant {tenant}: its keys are missing or do not unwrap in the target"
        ));
        return Ok(());
    };
    let rings = (&src_ring, &dst_ring);

    let mut contacts = Reservoir {
        k,
        seen: 0,
        picked: Vec::new(),
    };
    let mut after: Option<String> = None;
    loop {
        let page = ends
            .source_store
            .contacts(&scope, after.as_deref(), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for c in &page {
            contacts.offer(&c.id)?;
        }
    }
    for id in &contacts.picked {
        let a = ends.source_store.contact(&scope, id).await?;
        let b = ends.target_store.contact(&scope, id).await?;
        match (a, b) {
            (Some(a), Some(b)) => {
                let diff = differing(
                    rings,
                    "contact",
                    id,
                    &contact_fields(&a),
                    &contact_fields(&b),
                );
                if !diff.is_empty() || a.email_index != b.email_index {
                    f.bad.push(format!(
                        "tenant {tenant}: contact {id} differs ({})",
                        if diff.is_empty() {
                            "email index".to_owned()
                        } else {
                            diff.join(", ")
                        }
                    ));
                }
            }
            _ => f.bad.push(format!(
                "tenant {tenant}: contact {id} missing in the target"
            )),
        }
        tally.contacts += 1;
    }

    let mut cases = Reservoir {
        k,
        seen: 0,
        picked: Vec::new(),
    };
    let filter = CaseFilter::default();
    let mut after: Option<String> = None;
    loop {
        let page = ends
            .source_store
            .cases(&scope, &filter, after.as_deref(), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for c in &page {
            cases.offer(&c.id)?;
        }
    }
    for id in &cases.picked {
        let a = ends.source_store.case(&scope, id).await?;
        let b = ends.target_store.case(&scope, id).await?;
        match (a, b) {
            (Some(a), Some(b)) => {
                let diff = differing(rings, "case", id, &case_fields(&a), &case_fields(&b));
                if !diff.is_empty() {
                    f.bad.push(format!(
                        "tenant {tenant}: case {id} differs ({})",
                        diff.join(", ")
                    ));
                }
            }
            _ => f
                .bad
                .push(format!("tenant {tenant}: case {id} missing in the target")),
        }
        tally.cases += 1;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_reservoir_keeps_at_most_k_distinct_ids() {
        for n in [0usize, 3, 20, 21, 500] {
            let mut r = Reservoir {
                k: 20,
                seen: 0,
                picked: Vec::new(),
            };
            for i in 0..n {
                r.offer(&format!("id-{i:04}")).unwrap();
            }
            assert_eq!(r.picked.len(), n.min(20));
            let mut distinct = r.picked.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), r.picked.len());
        }
    }
}
