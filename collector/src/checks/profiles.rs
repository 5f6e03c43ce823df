//! Traffic profiles: BPF filters compiled once, matched against each flow record — by a matcher
//! over the record's fields for the common expressions, otherwise by libpcap against a header
//! synthesized from the record (MACs, VLAN, addresses, protocol, ports) — so a profile works on
//! records from any sensor and link type. A flow belongs to every profile it matches.

use flowmesh_bpf::{Probe, RecordFilter};

use crate::policy::Profile;

/// Compiled profiles.
pub struct Profiles {
    filters: Vec<(&'static str, RecordFilter)>,
}

/// A profile's name as a static string, one per distinct name ever configured (policies name
/// a handful; edits are rare): series and stored flows then carry names without allocating.
pub fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.into());
    names.insert(n);
    n
}

impl Profiles {
    /// Compiles the profiles (validation already compiled each once, so this cannot fail for a
    /// validated policy; a failure leaves that profile out).
    pub fn new(profiles: &[Profile]) -> Self {
        Profiles {
            filters: profiles
                .iter()
                .filter_map(|p| RecordFilter::new(&p.bpf).ok().map(|f| (intern(&p.name), f)))
                .collect(),
        }
    }

    /// Whether there are no profiles.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Hands the name of every profile the flow in `probe` belongs to to `out`.
    pub fn each_match(&self, probe: &mut Probe<'_>, out: &mut impl FnMut(&'static str)) {
        for (name, f) in &self.filters {
            if f.matches(probe) {
                out(name);
            }
        }
    }
}
