//! Ports of fragmented datagrams, so later fragments count in their flow.

use std::collections::HashMap;
use std::net::IpAddr;

/// How long a first fragment's ports are kept (µs).
const TTL_MICROS: i64 = 30_000_000;
/// At most this many datagrams in reassembly at once; beyond it the oldest are forgotten.
const CAPACITY: usize = 4096;

type Key = (IpAddr, IpAddr, u8, u32);

/// First-fragment ports by (src, dst, protocol, identification).
#[derive(Default)]
pub struct FragmentTable {
    entries: HashMap<Key, (u16, u16, i64)>,
}

impl FragmentTable {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn remember(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        id: u32,
        sp: u16,
        dp: u16,
        ts: i64,
    ) {
        if self.entries.len() >= CAPACITY {
            self.entries.retain(|_, v| ts - v.2 < TTL_MICROS);
            if self.entries.len() >= CAPACITY {
                self.entries.clear();
            }
        }
        self.entries.insert((src, dst, proto, id), (sp, dp, ts));
    }

    pub(crate) fn lookup(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        id: u32,
        ts: i64,
    ) -> Option<(u16, u16)> {
        let &(sp, dp, t) = self.entries.get(&(src, dst, proto, id))?;
        (ts - t < TTL_MICROS).then_some((sp, dp))
    }
}
