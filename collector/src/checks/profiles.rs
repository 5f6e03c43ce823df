//! Traffic profiles: BPF filters compiled once, matched against each flow record — by a matcher
//! over the record's fields for the common expressions, otherwise by libpcap against a header
//! synthesized from the record (MACs, VLAN, addresses, protocol, ports) — so a profile works on
//! records from any sensor and link type. A flow belongs to every profile it matches.
//! Profiles whose expression needs a port (`tcp port 443`, `portrange 6881-6889 or port 51413`)
//! are indexed by it, so a flow costs a lookup plus the profiles that can match it, not one
//! evaluation per profile.

use flowmesh_bpf::{Probe, RecordFilter};

use crate::policy::Profile;

/// Compiled profiles, indexed by port: a flow is tested only against the profiles that can
/// match it (those whose expression needs one of its ports, and those that need none).
pub struct Profiles {
    filters: Vec<(&'static str, RecordFilter)>,
    /// Port → the profiles (indices, ascending) whose every match has that port at one end.
    by_port: rustc_hash::FxHashMap<u16, Vec<u32>>,
    /// Profiles any flow may match (no port guard, or one too wide to index).
    unguarded: Vec<u32>,
}

/// Guards covering more ports than this are not indexed (the profile is tested on every flow).
const MAX_INDEXED_PORTS: u32 = 1024;

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
        let filters: Vec<(&'static str, RecordFilter)> = profiles
            .iter()
            .filter_map(|p| RecordFilter::new(&p.bpf).ok().map(|f| (intern(&p.name), f)))
            .collect();
        let mut by_port: rustc_hash::FxHashMap<u16, Vec<u32>> = Default::default();
        let mut unguarded = Vec::new();
        for (i, (_, f)) in filters.iter().enumerate() {
            let i = i as u32;
            let guard = f.port_guard().filter(|g| {
                g.iter().map(|(lo, hi)| u32::from(hi - lo) + 1).sum::<u32>() <= MAX_INDEXED_PORTS
            });
            match guard {
                Some(ranges) => {
                    for (lo, hi) in ranges {
                        for port in lo..=hi {
                            let at = by_port.entry(port).or_default();
                            if at.last() != Some(&i) {
                                at.push(i);
                            }
                        }
                    }
                }
                None => unguarded.push(i),
            }
        }
        Profiles {
            filters,
            by_port,
            unguarded,
        }
    }

    /// Whether there are no profiles.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Hands the name of every profile the flow in `probe` belongs to to `out`, in the
    /// policy's order.
    pub fn each_match(&self, probe: &mut Probe<'_>, out: &mut impl FnMut(&'static str)) {
        let Some((client, server)) = probe.ports() else {
            // libpcap judges this record: no guard applies.
            for (name, f) in &self.filters {
                if f.matches(probe) {
                    out(name);
                }
            }
            return;
        };
        let none: &[u32] = &[];
        let at = |p: u16| self.by_port.get(&p).map_or(none, Vec::as_slice);
        let server = if server == client { none } else { at(server) };
        // Three ascending lists merged: each candidate once, in order.
        let lists = [self.unguarded.as_slice(), at(client), server];
        let mut pos = [0usize; 3];
        loop {
            let next = (0..3).filter_map(|k| lists[k].get(pos[k]).copied()).min();
            let Some(i) = next else { break };
            for k in 0..3 {
                if lists[k].get(pos[k]) == Some(&i) {
                    pos[k] += 1;
                }
            }
            let (name, f) = &self.filters[i as usize];
            if f.matches(probe) {
                out(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmesh_record::FlowRecord;

    #[test]
    fn the_port_index_finds_exactly_what_testing_every_profile_finds() {
        let exprs = [
            "tcp port 443",
            "udp port 53 or tcp port 53",
            "portrange 6881-6889 or port 51413",
            "host 10.0.0.1",
            "not port 22",
            "tcp and dst port 80",
            "src port 5000",
            "net 192.168.0.0/16 and port 8080",
            "portrange 1-65535",
            "tcp port 443 and not vlan",
            "port 53 or host 10.0.0.2",
            "icmp",
        ];
        let policy: Vec<Profile> = exprs
            .iter()
            .enumerate()
            .map(|(i, e)| Profile {
                name: format!("p{i}"),
                bpf: e.to_string(),
            })
            .collect();
        let profiles = Profiles::new(&policy);
        assert_eq!(profiles.filters.len(), exprs.len());
        let unguarded: Vec<&str> = profiles
            .unguarded
            .iter()
            .map(|i| exprs[*i as usize])
            .collect();
        // What needs no port, what is too wide to index, and what libpcap judges: tested on
        // every flow; the rest only on flows with one of their ports.
        assert_eq!(
            unguarded,
            [
                "host 10.0.0.1",
                "not port 22",
                "portrange 1-65535",
                "tcp port 443 and not vlan",
                "port 53 or host 10.0.0.2",
                "icmp"
            ]
        );
        let mut checked = 0;
        for (l4, ports) in [
            (
                "TCP",
                [443u16, 80, 53, 22, 6885, 51413, 5000, 8080, 1, 40000],
            ),
            ("UDP", [53, 443, 6881, 51413, 5000, 123, 8080, 22, 0, 65535]),
            ("ICMP", [0; 10]),
        ] {
            for (k, &sp) in ports.iter().enumerate() {
                for &dp in &ports {
                    for vlan in [None, Some(7)] {
                        let f = FlowRecord {
                            l4,
                            client_ip: [10, 0, 0, (k % 3) as u8].into(),
                            server_ip: [192, 168, 1, 1].into(),
                            client_port: sp,
                            server_port: dp,
                            vlan,
                            ..FlowRecord::default()
                        };
                        let mut indexed = Vec::new();
                        profiles.each_match(&mut Probe::new(&f), &mut |n| indexed.push(n));
                        let mut probe = Probe::new(&f);
                        let every: Vec<&str> = profiles
                            .filters
                            .iter()
                            .filter(|(_, r)| r.matches(&mut probe))
                            .map(|(n, _)| *n)
                            .collect();
                        assert_eq!(indexed, every, "{f:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 600);
    }
}
