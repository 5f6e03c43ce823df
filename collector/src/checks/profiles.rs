//! Traffic profiles: BPF filters compiled once, matched against each flow record — by a matcher
//! over the record's fields for the common expressions, otherwise by libpcap against a header
//! synthesized from the record (MACs, VLAN, addresses, protocol, ports) — so a profile works on
//! records from any sensor and link type. A flow belongs to every profile it matches.

use flowmesh_bpf::{Probe, RecordFilter};
use flowmesh_record::FlowRecord;

use crate::policy::Profile;

/// Compiled profiles.
pub struct Profiles {
    filters: Vec<(String, RecordFilter)>,
}

impl Profiles {
    /// Compiles the profiles (validation already compiled each once, so this cannot fail for a
    /// validated policy; a failure leaves that profile out).
    pub fn new(profiles: &[Profile]) -> Self {
        Profiles {
            filters: profiles
                .iter()
                .filter_map(|p| RecordFilter::new(&p.bpf).ok().map(|f| (p.name.clone(), f)))
                .collect(),
        }
    }

    /// Names of the profiles `f` belongs to.
    pub fn of(&self, f: &FlowRecord) -> Vec<&str> {
        if self.filters.is_empty() {
            return Vec::new();
        }
        let mut probe = Probe::new(f);
        self.filters
            .iter()
            .filter(|(_, b)| b.matches(&mut probe))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}
