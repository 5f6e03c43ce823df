//! Opening arbitrary bytes never panics: it opens (only for a genuine envelope) or errs.
//!
//! The input's first byte picks how much of a genuine envelope is kept before the fuzzer's bytes
//! take over, so the fuzzer reaches the checks past the header too.
#![no_main]

use std::sync::OnceLock;

use flowmesh_link::envelope::peek_header;
use flowmesh_link::{Identity, IdentityKind, Opener, Sealer};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    opener: Opener,
    genuine: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let id = Identity::from_secret_bytes(IdentityKind::User, [7; 32]);
        let genuine = Sealer::new(&id, id.public()).seal("fuzz", b"payload").unwrap();
        Fixture {
            opener: Opener::with_window(&id, u64::MAX / 4, 1024),
            genuine,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let _ = peek_header(data);
    let _ = f.opener.open("fuzz", data);
    if let Some((&keep, rest)) = data.split_first() {
        let keep = (keep as usize).min(f.genuine.len());
        let mut mixed = f.genuine[..keep].to_vec();
        mixed.extend_from_slice(rest);
        if mixed != f.genuine {
            assert!(f.opener.open("fuzz", &mixed).is_err(), "a modified envelope opened");
        }
    }
});
