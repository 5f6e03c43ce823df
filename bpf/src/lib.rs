//! BPF filters (tcpdump syntax) compiled by libpcap, matched against Ethernet frames — or
//! against a flow record, through the frame its first client packet would have been. Below
//! both sensor (capture filters) and collector (traffic profiles).

#![forbid(unsafe_code)]

pub mod frame;
pub mod matcher;

use flowmesh_record::FlowRecord;

/// Compiles a tcpdump/BPF filter with libpcap for Ethernet, returning libpcap's message if it
/// refuses it (policy profiles are checked with this).
pub fn compile_bpf(expr: &str) -> Result<(), String> {
    BpfFilter::new(expr).map(|_| ())
}

/// A compiled BPF filter for Ethernet frames.
pub struct BpfFilter(pcap::BpfProgram);

impl BpfFilter {
    /// Compiles `expr` with libpcap.
    pub fn new(expr: &str) -> Result<Self, String> {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(|e| e.to_string())?;
        dead.compile(expr, true)
            .map(BpfFilter)
            .map_err(|e| e.to_string())
    }

    /// Whether the filter accepts this Ethernet frame.
    pub fn matches(&self, frame: &[u8]) -> bool {
        self.0.filter(frame)
    }
}

/// The Ethernet frame a flow's first client packet would have been, headers only.
pub fn frame_of(f: &FlowRecord) -> Vec<u8> {
    let proto = flowmesh_record::l4_number(f.l4).unwrap_or(0);
    let l4 = match proto {
        6 => frame::tcp(f.client_port, f.server_port, 0, frame::SYN, &[]),
        17 => frame::udp(f.client_port, f.server_port, &[]),
        1 | 58 => vec![8, 0, 0, 0],
        _ => Vec::new(),
    };
    let (ethertype, ip) = match (f.client_ip, f.server_ip) {
        (std::net::IpAddr::V4(c), std::net::IpAddr::V4(s)) => {
            (0x0800, frame::ipv4(c.octets(), s.octets(), proto, &l4))
        }
        (std::net::IpAddr::V6(c), std::net::IpAddr::V6(s)) => {
            (0x86dd, frame::ipv6(c.octets(), s.octets(), proto, &l4))
        }
        _ => (0x0800, Vec::new()),
    };
    let (src, dst) = (
        f.client_mac.unwrap_or_default(),
        f.server_mac.unwrap_or_default(),
    );
    match f.vlan {
        Some(id) => frame::eth(src, dst, 0x8100, &frame::vlan(id, ethertype, &ip)),
        None => frame::eth(src, dst, ethertype, &ip),
    }
}

/// A profile's filter on flow records: the record matcher where it understands the expression
/// and the record, libpcap on the record's frame otherwise.
pub struct RecordFilter {
    bpf: BpfFilter,
    matcher: Option<matcher::Matcher>,
}

impl RecordFilter {
    /// Compiles `expr` with libpcap (which decides what is valid) and, if it can, as a matcher.
    pub fn new(expr: &str) -> Result<Self, String> {
        Ok(RecordFilter {
            bpf: BpfFilter::new(expr)?,
            matcher: matcher::compile(expr),
        })
    }

    /// Whether the matcher handles this expression (no frame, no libpcap per record).
    pub fn is_fast(&self) -> bool {
        self.matcher.is_some()
    }

    /// Port ranges one of which every matching record has at one end, when the matcher can
    /// tell (see [`matcher::Matcher::port_guard`]); `None`: any record may match.
    pub fn port_guard(&self) -> Option<Vec<(u16, u16)>> {
        self.matcher.as_ref()?.port_guard()
    }

    /// Whether the probed record matches.
    pub fn matches(&self, probe: &mut Probe<'_>) -> bool {
        if let (Some(m), Some(v)) = (&self.matcher, &probe.view) {
            return m.eval(v);
        }
        let record = probe.record;
        self.bpf
            .matches(probe.frame.get_or_insert_with(|| frame_of(record)))
    }
}

/// One record as the filters see it: its fields taken once for the matcher, its frame built
/// only if libpcap has to judge, then shared by every filter.
pub struct Probe<'a> {
    record: &'a FlowRecord,
    view: Option<matcher::View>,
    frame: Option<Vec<u8>>,
}

impl<'a> Probe<'a> {
    /// The record's client and server ports, when the matcher judges it (a record libpcap must
    /// judge gets `None`: no port guard applies to it).
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.view.as_ref().map(matcher::View::ports)
    }

    /// Prepares `record` for the filters.
    pub fn new(record: &'a FlowRecord) -> Self {
        Probe {
            record,
            view: matcher::View::of(record),
            frame: None,
        }
    }
}
