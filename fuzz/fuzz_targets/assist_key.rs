//! Any text as an assistance key (`flowmesh assist connect KEY`): refused with a reason or
//! read, never a panic; a key that reads encodes back to one that reads the same.
#![no_main]

use flowmesh_link::assist::AssistKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Both as given and behind the prefix, so the decoder and the JSON reader are reached.
    for candidate in [text.to_string(), format!("fmassist1_{text}")] {
        if let Ok(key) = AssistKey::parse(&candidate, 0) {
            let again = AssistKey::parse(&key.encode(), 0).expect("a key read encodes to a key");
            assert_eq!(again.session, key.session);
            let _ = key.secret();
        }
    }
});
