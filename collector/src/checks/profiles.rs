//! Traffic profiles: BPF filters compiled once, matched against each flow record — by a matcher
//! over the record's fields for the common expressions, otherwise by libpcap against a header
//! synthesized from the record (MACs, VLAN, addresses, protocol, ports) — so a profile works on
//! records from any sensor and link type. A flow belongs to every profile it matches.

use flowmesh_bpf::{Probe, RecordFilter};

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

    /// Whether the flow `probe` holds belongs to the profile `name` (an unknown name: no).
    /// Asked only for the profiles a rule names, so nothing is matched, or allocated, for
    /// profiles no rule uses.
    pub fn contains(&self, name: &str, probe: &mut Probe<'_>) -> bool {
        self.filters
            .iter()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, b)| b.matches(probe))
    }
}
