//! Test helpers: the packet builders of `flowmesh_sensor::synth`, and running the sensor over
//! capture bytes held in memory.
#![allow(dead_code, unused_imports)]

pub use flowmesh_sensor::synth::*;

use flowmesh_sensor::capture::CaptureReader;
use flowmesh_sensor::flow::FlowRecord;
use flowmesh_sensor::offline::{self, RunStats};

/// Runs the whole sensor over capture bytes.
pub fn flows(capture: &[u8]) -> (Vec<FlowRecord>, Result<RunStats, String>) {
    let mut out = Vec::new();
    let r = CaptureReader::new(capture).map_err(|e| e.to_string());
    let result = match r {
        Ok(reader) => {
            offline::run_reader(reader, &mut |rec| out.push(rec)).map_err(|(_, e)| e.to_string())
        }
        Err(e) => Err(e),
    };
    (out, result)
}

/// The only flow of a capture that must yield exactly one.
pub fn one_flow(capture: &[u8]) -> FlowRecord {
    let (mut f, r) = flows(capture);
    r.expect("capture reads");
    assert_eq!(f.len(), 1, "expected one flow, got {f:#?}");
    f.remove(0)
}
