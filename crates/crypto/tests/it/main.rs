//! Integration tests for strongroom-crypto (one binary, split by topic).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod blind;
mod debug;
mod field;
mod props;
mod providers;
mod token;
mod wrap;

use strongroom_crypto::{SecretKey, TenantKeyring, TenantKeys};

/// Deterministic keys so tests can pin exact bytes.
pub fn fixed_keys(version: u32, seed: u8) -> TenantKeys {
    TenantKeys::from_secrets(
        version,
        SecretKey::from_bytes(&[seed; 32]).unwrap(),
        SecretKey::from_bytes(&[seed.wrapping_add(1); 32]).unwrap(),
        SecretKey::from_bytes(&[seed.wrapping_add(2); 32]).unwrap(),
    )
    .unwrap()
}

pub fn ring(tenant: &str, versions: &[u32]) -> TenantKeyring {
    let keys = versions
        .iter()
        .map(|&v| TenantKeys::generate(v).unwrap())
        .collect();
    TenantKeyring::new(tenant, keys).unwrap()
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TenantKeyring>();
    check::<TenantKeys>();
    check::<strongroom_crypto::RootKey>();
    check::<strongroom_crypto::Token>();
    check::<std::sync::Arc<dyn strongroom_crypto::KeyProvider>>();
    check::<strongroom_crypto::CryptoError>();
}
