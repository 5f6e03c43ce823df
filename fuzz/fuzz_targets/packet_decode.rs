//! Any bytes, as a packet of any supported link type, through decoding, the flow table and the
//! dissectors: never a panic.
#![no_main]

use flowmesh_sensor::capture::LinkType;
use flowmesh_sensor::decode::{self, Decoded, FragmentTable};
use flowmesh_sensor::flow::{FlowTable, TableConfig};
use libfuzzer_sys::fuzz_target;

const LINKS: [u16; 12] = [1, 0, 9, 12, 101, 104, 105, 108, 113, 127, 192, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let link = LinkType(LINKS[usize::from(sel) % LINKS.len()]);
    let mut frags = FragmentTable::default();
    let mut table = FlowTable::new(TableConfig::default());
    // The same bytes twice (and their halves) so flows see several packets.
    for (i, p) in [rest, rest, &rest[..rest.len() / 2]].into_iter().enumerate() {
        if let Ok(Decoded::Ip(ip)) = decode::decode(link, p, &mut frags, i as i64) {
            table.add(&ip, p.len() as u32, i as i64, &mut |_| {});
        }
    }
    table.drain(&mut |r| {
        let _ = serde_json_free(&r);
    });
});

/// Touches every field of the record, as serialising it would.
fn serde_json_free(r: &flowmesh_sensor::flow::FlowRecord) -> usize {
    r.l7.len() + r.server_name.as_ref().map_or(0, |s| s.len()) + (r.first_seen & 1) as usize
}
