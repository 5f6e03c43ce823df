//! What an instance reads from the cloud when it updates: any bytes as a release list (JSON),
//! each manifest verified against a pinned key, and as a binary whose version stamp is read and
//! rewritten. Refused with a reason or read, never a panic; a forged manifest never verifies.
#![no_main]

use flowmesh_update::service::Listing;
use flowmesh_update::{ReleaseKey, stamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ReleaseKey::from_file(&"11".repeat(32)).expect("a fixed key");
    if let Ok(listing) = serde_json::from_slice::<Listing>(data) {
        for r in &listing.releases {
            let _ = r.unverified();
            // Only the key's holder can sign; the fuzzer does not have it.
            assert!(r.verify(&key.public()).is_err());
        }
    }
    if let Ok(version) = stamp::read(data) {
        let mut copy = data.to_vec();
        stamp::write(&mut copy, &version).expect("a stamp read can be written back");
        assert_eq!(copy, data);
    }
});
