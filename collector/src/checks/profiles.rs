//! Traffic profiles: BPF filters compiled once by libpcap, matched against a header synthesized
//! from each flow record (MACs, VLAN, addresses, protocol, ports), so a profile works on records
//! from any sensor and link type. A flow belongs to every profile it matches.

use flowmesh_bpf::{BpfFilter, frame_of};
use flowmesh_record::FlowRecord;

use crate::policy::Profile;

/// Compiled profiles.
pub struct Profiles {
    filters: Vec<(String, BpfFilter)>,
}

impl Profiles {
    /// Compiles the profiles (validation already compiled each once, so this cannot fail for a
    /// validated policy; a failure leaves that profile out).
    pub fn new(profiles: &[Profile]) -> Self {
        Profiles {
            filters: profiles
                .iter()
                .filter_map(|p| BpfFilter::new(&p.bpf).ok().map(|f| (p.name.clone(), f)))
                .collect(),
        }
    }

    /// Names of the profiles `f` belongs to.
    pub fn of(&self, f: &FlowRecord) -> Vec<&str> {
        if self.filters.is_empty() {
            return Vec::new();
        }
        let frame = frame_of(f);
        self.filters
            .iter()
            .filter(|(_, b)| b.matches(&frame))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}
