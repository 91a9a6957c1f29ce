use proptest::prelude::*;
use strongroom_crypto::{CryptoError, FieldContext, TenantKeyring};

use crate::fixed_keys;

fn ring() -> TenantKeyring {
    TenantKeyring::new("prop-tenant", vec![fixed_keys(1, 1), fixed_keys(2, 77)]).unwrap()
}

proptest! {
    #[test]
    fn round_trip(
        pt in proptest::collection::vec(any::<u8>(), 0..2048),
        kind in ".{0,16}", rid in ".{0,40}", field in ".{0,16}",
    ) {
        let r = ring();
        let ctx = FieldContext { kind: &kind, record_id: &rid, field: &field };
        let ct = r.encrypt_field(&ctx, &pt).unwrap();
        prop_assert_eq!(TenantKeyring::ciphertext_version(&ct).unwrap(), 2);
        let back = r.decrypt_field(&ctx, &ct).unwrap();
        prop_assert_eq!(back.as_slice(), pt.as_slice());
    }

    #[test]
    fn other_record_fails(pt in proptest::collection::vec(any::<u8>(), 0..256),
                          a in "[a-z0-9]{1,12}", b in "[a-z0-9]{1,12}") {
        prop_assume!(a != b);
        let r = ring();
        let ct = r.encrypt_field(&FieldContext { kind: "c", record_id: &a, field: "f" }, &pt).unwrap();
        let other = FieldContext { kind: "c", record_id: &b, field: "f" };
        prop_assert!(matches!(r.decrypt_field(&other, &ct), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let r = ring();
        let ctx = FieldContext { kind: "c", record_id: "r", field: "f" };
        prop_assert!(r.decrypt_field(&ctx, &bytes).is_err());
    }
}
