//! A stored flow block (the collector's flow store): any bytes decode to flows or to an error,
//! never a panic, and never an allocation a damaged length asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = flowmesh_collector::store::flows::decode_block("fuzz", data);
});
