//! Any bytes as a capture file: read to the end or to an error, never a panic or a hang.
#![no_main]

use flowmesh_sensor::capture::CaptureReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = CaptureReader::new(data) {
        for _ in 0..10_000 {
            match reader.next_packet() {
                Ok(Some(p)) => {
                    let _ = p.data.len();
                }
                _ => break,
            }
        }
    }
});
