//! Flow batches as a collector receives them (after the envelope opened): any bytes decode to
//! a batch or to an error, every flow to a record or to an error, never a panic. The
//! collector's reader (`read_batch`, `FlowReader`) agrees with prost and `from_proto` on any
//! bytes, taken as a batch and as one flow; and every record that comes out is written again
//! by the sensor's writer as exactly the bytes prost writes for it, and walks back as one entry.
#![no_main]

use flowmesh_proto::v1::{Flow, FlowBatch};
use flowmesh_record::FlowRecord;
use flowmesh_record::codec::{
    FlowReader, ReadError, batch_entries, from_proto, read_batch, to_proto, write_batch_entry,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    // The batcher's walk over entries: any bytes, no panic, nothing outside the input.
    let walked: usize = batch_entries(data).map(<[u8]>::len).sum();
    assert!(walked <= data.len());
    let (mut reader, mut r) = (FlowReader::new(), FlowRecord::default());
    // The bytes as one flow: the reader and prost + from_proto agree.
    let theirs = Flow::decode(data)
        .map_err(ReadError::from)
        .and_then(|f| {
            let update = f.update;
            Ok((from_proto(f)?, update))
        });
    let ours = reader.read(data, &mut r).map(|u| (r.clone(), u));
    assert_eq!(ours, theirs);
    let view = read_batch(data);
    let Ok(batch) = FlowBatch::decode(data) else {
        // The reader may still read the batch's own fields and the flows that are well formed.
        if let Ok(view) = view {
            for f in view.flows() {
                let _ = reader.read(f, &mut r);
            }
        }
        return;
    };
    let view = view.expect("prost decodes what the reader refused");
    assert_eq!(
        (view.instance, view.sequence, view.boot_id, view.watermark_us, view.flow_count),
        (
            batch.instance.as_str(),
            batch.sequence,
            batch.boot_id.as_slice(),
            batch.watermark_us,
            batch.flows.len()
        )
    );
    for (flow, bytes) in batch.flows.into_iter().zip(view.flows()) {
        let update = flow.update;
        let theirs = from_proto(flow);
        let ours = reader.read(bytes, &mut r).map(|u| (r.clone(), u));
        assert_eq!(ours, theirs.clone().map(|t| (t, update)).map_err(ReadError::from));
        let Ok(record) = theirs else {
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
