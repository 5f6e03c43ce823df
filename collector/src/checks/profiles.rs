//! Traffic profiles: BPF filters compiled once by libpcap, matched against a header synthesized
//! from each flow record (MACs, VLAN, addresses, protocol, ports), so a profile works on records
//! from any sensor and link type. A flow belongs to every profile it matches.

use flowmesh_sensor::capture::BpfFilter;
use flowmesh_sensor::flow::FlowRecord;
use flowmesh_sensor::synth;

use crate::policy::Profile;

/// Compiled profiles.
pub struct Profiles {
    filters: Vec<(String, BpfFilter)>,
}

/// The Ethernet frame a flow's first client packet would have been, headers only.
pub fn frame_of(f: &FlowRecord) -> Vec<u8> {
    let proto = flowmesh_sensor::flow::l4_number(f.l4).unwrap_or(0);
    let l4 = match proto {
        6 => synth::tcp(f.client_port, f.server_port, 0, synth::SYN, &[]),
        17 => synth::udp(f.client_port, f.server_port, &[]),
        1 | 58 => vec![8, 0, 0, 0],
        _ => Vec::new(),
    };
    let (ethertype, ip) = match (f.client_ip, f.server_ip) {
        (std::net::IpAddr::V4(c), std::net::IpAddr::V4(s)) => {
            (0x0800, synth::ipv4(c.octets(), s.octets(), proto, &l4))
        }
        (std::net::IpAddr::V6(c), std::net::IpAddr::V6(s)) => {
            (0x86dd, synth::ipv6(c.octets(), s.octets(), proto, &l4))
        }
        _ => (0x0800, Vec::new()),
    };
    let (src, dst) = (
        f.client_mac.unwrap_or_default(),
        f.server_mac.unwrap_or_default(),
    );
    match f.vlan {
        Some(id) => synth::eth(src, dst, 0x8100, &synth::vlan(id, ethertype, &ip)),
        None => synth::eth(src, dst, ethertype, &ip),
    }
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
