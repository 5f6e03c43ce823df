//! One direction of a flow as an exporter reported it, from a NetFlow v5 record or a v9/IPFIX
//! data record (fields by their IANA numbers, which v9 shares for 1–127).

use std::net::IpAddr;

use netflow_parser::variable_versions::ipfix::lookup::{IANAIPFixField, ReverseInformationElement};
use netflow_parser::{DataNumber, FieldValue, IpfixField, V9Field};

/// What one exported record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneWay {
    /// Source address and port.
    pub src: (IpAddr, u16),
    /// Destination address and port.
    pub dst: (IpAddr, u16),
    /// IP protocol number.
    pub proto: u8,
    /// Packets and bytes (IP bytes, as exporters count them), before sampling is applied.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Reverse-direction packets and bytes of a biflow record (RFC 5103), if any.
    pub reverse: Option<(u64, u64)>,
    /// First and last packet, µs since the epoch.
    pub first_us: i64,
    /// Last packet.
    pub last_us: i64,
    /// Input and output SNMP interface indexes.
    pub in_if: u32,
    /// Output interface.
    pub out_if: u32,
    /// TCP flags seen (OR).
    pub tcp_flags: u8,
    /// Source and destination MACs, when exported.
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC.
    pub dst_mac: Option<[u8; 6]>,
    /// VLAN id.
    pub vlan: Option<u16>,
    /// The sampling interval the record states (0: none stated).
    pub sampling: u32,
    /// The application the exporter named (`applicationName`), as nDPI names a protocol.
    pub l7: Option<&'static str>,
    /// Or as flowmesh names an application.
    pub app: Option<&'static str>,
}

/// The clock of an export packet, to turn the exporter's uptime-relative times into absolute
/// ones: its export time (ms since the epoch) and its uptime then (ms).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Export time, ms since the epoch.
    pub unix_ms: i64,
    /// The exporter's uptime at export, ms (v5, v9).
    pub uptime_ms: i64,
}

impl Clock {
    /// The absolute time (µs) of an uptime-relative time (ms).
    pub fn at_uptime(&self, ms: i64) -> i64 {
        // Saturating: the numbers come from the network.
        self.unix_ms
            .saturating_sub(self.uptime_ms.saturating_sub(ms))
            .saturating_mul(1000)
    }
}

/// A NetFlow v5 record.
pub fn from_v5(
    r: &netflow_parser::static_versions::v5::FlowSet,
    clock: Clock,
    sampling: u32,
) -> OneWay {
    OneWay {
        src: (IpAddr::V4(r.src_addr), r.src_port),
        dst: (IpAddr::V4(r.dst_addr), r.dst_port),
        proto: r.protocol_number,
        packets: u64::from(r.d_pkts),
        bytes: u64::from(r.d_octets),
        reverse: None,
        first_us: clock.at_uptime(i64::from(r.first)),
        last_us: clock.at_uptime(i64::from(r.last)),
        in_if: u32::from(r.input),
        out_if: u32::from(r.output),
        tcp_flags: r.tcp_flags,
        src_mac: None,
        dst_mac: None,
        vlan: None,
        sampling,
        l7: None,
        app: None,
    }
}

/// A field's number as v9 and IANA's IPFIX registry give it; reverse (RFC 5103) elements
/// have the high bit set.
pub const REVERSE: u16 = 0x8000;

/// The number of an IPFIX field this reader uses (others: `None`).
pub fn ipfix_number(f: &IpfixField) -> Option<u16> {
    use IANAIPFixField as F;
    match f {
        IpfixField::IANA(f) => Some(match f {
            F::OctetDeltaCount => 1,
            F::PacketDeltaCount => 2,
            F::ProtocolIdentifier => 4,
            F::TcpControlBits => 6,
            F::SourceTransportPort => 7,
            F::SourceIpv4address => 8,
            F::IngressInterface => 10,
            F::DestinationTransportPort => 11,
            F::DestinationIpv4address => 12,
            F::EgressInterface => 14,
            F::FlowEndSysUpTime => 21,
            F::FlowStartSysUpTime => 22,
            F::SourceIpv6address => 27,
            F::DestinationIpv6address => 28,
            F::SamplingInterval => 34,
            F::SamplerRandomInterval => 50,
            F::SourceMacaddress => 56,
            F::VlanId => 58,
            F::DestinationMacaddress => 80,
            F::OctetTotalCount => 85,
            F::PacketTotalCount => 86,
            F::ApplicationName => 96,
            F::FlowStartSeconds => 150,
            F::FlowEndSeconds => 151,
            F::FlowStartMilliseconds => 152,
            F::FlowEndMilliseconds => 153,
            F::FlowStartMicroseconds => 154,
            F::FlowEndMicroseconds => 155,
            F::SystemInitTimeMilliseconds => 160,
            F::SamplingPacketInterval => 305,
            _ => return None,
        }),
        IpfixField::ReverseInformationElement(r) => Some(
            REVERSE
                | match r {
                    ReverseInformationElement::ReverseOctetDeltaCount => 1,
                    ReverseInformationElement::ReversePacketDeltaCount => 2,
                    _ => return None,
                },
        ),
        _ => None,
    }
}

/// The number of a v9 field.
pub fn v9_number(f: &V9Field) -> u16 {
    u16::from(*f)
}

fn number(v: &FieldValue) -> Option<u64> {
    Some(match v {
        FieldValue::DataNumber(d) => match d {
            DataNumber::U8(n) => u64::from(*n),
            DataNumber::U16(n) => u64::from(*n),
            DataNumber::U24(n) | DataNumber::U32(n) => u64::from(*n),
            DataNumber::U64(n) => *n,
            DataNumber::U128(n) => u64::try_from(*n).ok()?,
            DataNumber::I8(n) => u64::try_from(*n).ok()?,
            DataNumber::I16(n) => u64::try_from(*n).ok()?,
            DataNumber::I24(n) | DataNumber::I32(n) => u64::try_from(*n).ok()?,
            DataNumber::I64(n) => u64::try_from(*n).ok()?,
            DataNumber::I128(n) => u64::try_from(*n).ok()?,
            DataNumber::Vec(b) if b.len() <= 8 => b.iter().fold(0, |a, &x| (a << 8) | u64::from(x)),
            DataNumber::Vec(_) => return None,
        },
        FieldValue::ProtocolType(p) => u64::from(u8::from(*p)),
        FieldValue::TcpControlBits(_, raw) => u64::from(*raw),
        FieldValue::Duration(d) => d.as_duration().as_millis() as u64,
        _ => return None,
    })
}

fn micros(v: &FieldValue) -> Option<i64> {
    match v {
        FieldValue::Duration(d) => i64::try_from(d.as_duration().as_micros()).ok(),
        other => number(other).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Accumulates a v9/IPFIX data record's fields, then makes a [`OneWay`] of them.
#[derive(Debug, Default)]
pub struct Fields {
    src4: Option<IpAddr>,
    dst4: Option<IpAddr>,
    src6: Option<IpAddr>,
    dst6: Option<IpAddr>,
    sport: u16,
    dport: u16,
    proto: u8,
    packets: Option<u64>,
    bytes: Option<u64>,
    rpackets: Option<u64>,
    rbytes: Option<u64>,
    start_up: Option<i64>,
    end_up: Option<i64>,
    start_abs: Option<i64>,
    end_abs: Option<i64>,
    init_ms: Option<i64>,
    in_if: u32,
    out_if: u32,
    tcp_flags: u8,
    src_mac: Option<[u8; 6]>,
    dst_mac: Option<[u8; 6]>,
    vlan: Option<u16>,
    sampling: u32,
    l7: Option<&'static str>,
    app: Option<&'static str>,
}

impl Fields {
    /// The record of `(number, value)` pairs (see [`Fields::take`]).
    pub fn read<'a>(
        pairs: impl Iterator<Item = (u16, &'a FieldValue)>,
        clock: Clock,
    ) -> Option<OneWay> {
        let mut f = Fields::default();
        for (n, v) in pairs {
            f.take(n, v);
        }
        f.finish(clock)
    }

    /// Takes field `n` (v9/IANA number, [`REVERSE`] for reverse elements) with value `v`.
    pub fn take(&mut self, n: u16, v: &FieldValue) {
        let num = || number(v).unwrap_or(0);
        let ip = || match v {
            FieldValue::Ip4Addr(a) => Some(IpAddr::V4(*a)),
            FieldValue::Ip6Addr(a) => Some(IpAddr::V6(*a)),
            _ => None,
        };
        let mac = || match v {
            FieldValue::MacAddr(m) => Some(*m),
            FieldValue::Vec(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => None,
        };
        match n {
            1 | 85 => self.bytes = Some(num()),
            2 | 86 => self.packets = Some(num()),
            4 => self.proto = num() as u8,
            6 => self.tcp_flags = num() as u8,
            7 => self.sport = num() as u16,
            8 => self.src4 = ip(),
            10 => self.in_if = num() as u32,
            11 => self.dport = num() as u16,
            12 => self.dst4 = ip(),
            14 => self.out_if = num() as u32,
            21 => self.end_up = Some(num() as i64),
            22 => self.start_up = Some(num() as i64),
            27 => self.src6 = ip(),
            28 => self.dst6 = ip(),
            34 | 50 | 305 => self.sampling = num() as u32,
            56 => self.src_mac = mac(),
            58 => self.vlan = u16::try_from(num()).ok().filter(|v| *v != 0),
            80 | 57 => self.dst_mac = mac(),
            150 | 151 => {
                // Seconds: a duration value (read as µs), or a bare number of seconds.
                let t = match v {
                    FieldValue::Duration(_) => micros(v),
                    _ => micros(v).map(|s| s.saturating_mul(1_000_000)),
                };
                if n == 150 {
                    self.start_abs = t
                } else {
                    self.end_abs = t
                }
            }
            152..=155 => {
                let t = micros(v);
                if n.is_multiple_of(2) {
                    self.start_abs = t
                } else {
                    self.end_abs = t
                }
            }
            160 => self.init_ms = micros(v).map(|us| us / 1000),
            96 => {
                // An application name (nProbe sends nDPI's): a protocol or an application
                // this build knows by that name, nothing otherwise.
                // nDPI writes "TLS.YouTube": the master protocol, then the application.
                if let FieldValue::String(name) = v {
                    let name = name.value.trim();
                    let (master, app) = name.split_once('.').unwrap_or((name, name));
                    self.l7 = flowmesh_record::L7::from_name(master)
                        .map(flowmesh_record::L7::name)
                        .filter(|n| *n != "Unknown");
                    self.app = flowmesh_record::app_named(app);
                }
            }
            x if x == REVERSE | 1 => self.rbytes = Some(num()),
            x if x == REVERSE | 2 => self.rpackets = Some(num()),
            _ => {}
        }
    }

    /// The sampling interval the fields stated (0: none).
    pub fn sampling(&self) -> u32 {
        self.sampling
    }

    /// The record, if it names two addresses; times from the record, else the export's.
    pub fn finish(self, clock: Clock) -> Option<OneWay> {
        let (src, dst) = match (self.src4.or(self.src6), self.dst4.or(self.dst6)) {
            (Some(s), Some(d)) => (s, d),
            _ => return None,
        };
        let at = |abs: Option<i64>, up: Option<i64>| match (abs, up, self.init_ms) {
            (Some(t), _, _) => t,
            (None, Some(u), Some(init)) => init.saturating_add(u).saturating_mul(1000),
            (None, Some(u), None) => clock.at_uptime(u),
            (None, None, _) => clock.unix_ms * 1000,
        };
        let first_us = at(self.start_abs, self.start_up);
        let last_us = at(self.end_abs, self.end_up).max(first_us);
        Some(OneWay {
            src: (src, self.sport),
            dst: (dst, self.dport),
            proto: self.proto,
            packets: self.packets.unwrap_or(0),
            bytes: self.bytes.unwrap_or(0),
            reverse: match (self.rpackets, self.rbytes) {
                (None, None) => None,
                (p, b) => Some((p.unwrap_or(0), b.unwrap_or(0))),
            },
            first_us,
            last_us,
            in_if: self.in_if,
            out_if: self.out_if,
            tcp_flags: self.tcp_flags,
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            vlan: self.vlan,
            sampling: self.sampling,
            l7: self.l7,
            app: self.app,
        })
    }
}
