//! Rough hot-path timing: `cargo run --release -p strongroom-crypto --example field_bench`.
//! Target from the brief: < 2 µs per 100-byte field encrypt/decrypt.

use std::hint::black_box;
use std::time::Instant;

use strongroom_crypto::{CryptoError, FieldContext, TenantKeyring, TenantKeys};

fn per_op(n: u32, mut f: impl FnMut() -> Result<(), CryptoError>) -> Result<f64, CryptoError> {
    for _ in 0..n / 10 {
        f()?;
    }
    let start = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e9 / f64::from(n))
}

fn main() -> Result<(), CryptoError> {
    let ring = TenantKeyring::new("tenant-0001", vec![TenantKeys::generate(1)?])?;
    let ctx = FieldContext {
        kind: "contact",
        record_id: "0190f1c2-7a3b-7c00-8000-000000000001",
        field: "email",
    };
    let pt = [0x61u8; 100];
    let ct = ring.encrypt_field(&ctx, &pt)?;
    let n = 200_000;
    let enc = per_op(n, || {
        ring.encrypt_field(&ctx, black_box(&pt))
            .map(|c| drop(black_box(c)))
    })?;
    let dec = per_op(n, || {
        ring.decrypt_field(&ctx, black_box(&ct))
            .map(|p| drop(black_box(p)))
    })?;
    let idx = per_op(n, || {
        ring.blind_index("contact", "email", black_box(b"alice@example.com"))
            .map(|i| drop(black_box(i)))
    })?;
    println!("encrypt_field 100 B: {enc:.0} ns/op");
    println!("decrypt_field 100 B: {dec:.0} ns/op");
    println!("blind_index:         {idx:.0} ns/op");
    Ok(())
}
