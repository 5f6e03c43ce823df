//! Flow batches as a collector receives them (after the envelope opened): any bytes decode to
//! a batch or to an error, every flow to a record or to an error, never a panic; and every
//! record that comes out is written again by the sensor's writer as exactly the bytes prost
//! writes for it, and walks back as one entry.
#![no_main]

use flowmesh_proto::v1::FlowBatch;
use flowmesh_record::codec::{batch_entries, from_proto, to_proto, write_batch_entry};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    // The batcher's walk over entries: any bytes, no panic, nothing outside the input.
    let walked: usize = batch_entries(data).map(<[u8]>::len).sum();
    assert!(walked <= data.len());
    let Ok(batch) = FlowBatch::decode(data) else {
        return;
    };
    for flow in batch.flows {
        let update = flow.update;
        let Ok(record) = from_proto(flow) else {
            continue;
        };
        let mut ours = Vec::new();
        write_batch_entry(&record, update, &mut ours);
        let prost = FlowBatch {
            flows: vec![to_proto(&record, update)],
            ..FlowBatch::default()
        }
        .encode_to_vec();
        assert_eq!(ours, prost);
        assert_eq!(batch_entries(&ours).count(), 1);
    }
});
