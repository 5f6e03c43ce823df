//! The flow record: typed fields, DESIGN.md's JSON form when serialized.

use std::net::IpAddr;

use serde::Serialize;

/// One flow record, as printed by `flowmesh flows` (one JSON object per line).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FlowRecord {
    /// "TCP", "UDP", "ICMP", ...
    pub l4: &'static str,
    /// Client address.
    pub client_ip: IpAddr,
    /// Client port (0 without ports).
    pub client_port: u16,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// VLAN id.
    pub vlan: Option<u16>,
    /// Tunnel the flow came out of.
    pub tunnel: Option<&'static str>,
    /// Master protocol, nDPI's name.
    pub l7: &'static str,
    /// Application, e.g. "YouTube".
    pub app: Option<&'static str>,
    /// SNI, HTTP Host or DNS query.
    pub server_name: Option<String>,
    /// ALPN protocol ids the client offered (TLS, QUIC), in its order; an addition to
    /// DESIGN.md's fields, after `server_name`.
    pub alpn: Option<Vec<String>>,
    /// Client MAC (JSON: `aa:bb:cc:dd:ee:ff`).
    #[serde(serialize_with = "ser_mac")]
    pub client_mac: Option<[u8; 6]>,
    /// Server MAC.
    #[serde(serialize_with = "ser_mac")]
    pub server_mac: Option<[u8; 6]>,
    /// Client-to-server packets.
    pub c2s_packets: u64,
    /// Client-to-server L2 bytes.
    pub c2s_bytes: u64,
    /// Server-to-client packets.
    pub s2c_packets: u64,
    /// Server-to-client L2 bytes.
    pub s2c_bytes: u64,
    /// First packet, µs since the epoch (JSON: RFC 3339 UTC with microseconds).
    #[serde(serialize_with = "ser_time")]
    pub first_seen: i64,
    /// Last packet, µs.
    #[serde(serialize_with = "ser_time")]
    pub last_seen: i64,
    /// TCP flags the client sent (all its segments OR-ed); not in the JSON record.
    #[serde(skip)]
    pub c2s_tcp_flags: u8,
    /// TCP flags the server sent.
    #[serde(skip)]
    pub s2c_tcp_flags: u8,
    /// A part of a flow (split at a period boundary or an active timeout) that the flow-level
    /// checks skip: they judge the flow once, on another of its records. Traffic counts every
    /// part. Not in the JSON record.
    #[serde(skip)]
    pub skip_flow_checks: bool,
    /// Where an exported flow (NetFlow/IPFIX) came from: JSON `exporter`, `in_if`, `out_if`,
    /// `sampling`, after the other fields; absent for flows built from packets.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub export: Option<Exported>,
}

/// What an exporter said about a flow it exported.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Exported {
    /// The exporter's address (the UDP source of its export packets).
    pub exporter: IpAddr,
    /// SNMP index of the interface the flow came in on (0: unknown).
    pub in_if: u32,
    /// SNMP index of the interface it went out on (0: unknown).
    pub out_if: u32,
    /// 1 in `sampling` packets was sampled; the counts are already scaled by it (1: none).
    pub sampling: u32,
}

/// A MAC as flow records spell it: `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(m: &[u8; 6]) -> String {
    mac_text_into(m, &mut [0; 17]).to_string()
}

/// [`mac_text`] written into `buf`: `aa:bb:cc:dd:ee:ff`, allocating nothing.
pub(crate) fn mac_text_into<'a>(m: &[u8; 6], buf: &'a mut [u8; 17]) -> &'a str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in m.iter().enumerate() {
        buf[i * 3] = HEX[usize::from(b >> 4)];
        buf[i * 3 + 1] = HEX[usize::from(b & 15)];
        if i < 5 {
            buf[i * 3 + 2] = b':';
        }
    }
    // Only ASCII was written.
    std::str::from_utf8(buf).unwrap_or_default()
}

// Records are serialized by the hundred thousand: their times and MACs are written into stack
// buffers, not allocated strings.
fn ser_mac<S: serde::Serializer>(m: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_str(mac_text_into(m, &mut [0; 17])),
        None => s.serialize_none(),
    }
}

/// A record time's text (RFC 3339 UTC, µs): from a stack buffer, or for years outside
/// 0..=9999 from an allocated string.
fn ser_time<S: serde::Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; RFC3339_LEN];
    match rfc3339_micros_into(*t, &mut buf) {
        Some(text) => s.serialize_str(text),
        None => s.serialize_str(&rfc3339_micros(*t)),
    }
}

use flowmesh_link::time::{RFC3339_LEN, rfc3339_micros, rfc3339_micros_into};

/// An empty record (unknown protocols, unspecified addresses, nothing counted): a base for
/// records built field by field, as tests and benches do.
impl Default for FlowRecord {
    fn default() -> Self {
        let none = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        FlowRecord {
            l4: "Unknown",
            client_ip: none,
            client_port: 0,
            server_ip: none,
            server_port: 0,
            vlan: None,
            tunnel: None,
            l7: "Unknown",
            app: None,
            server_name: None,
            alpn: None,
            client_mac: None,
            server_mac: None,
            c2s_packets: 0,
            c2s_bytes: 0,
            s2c_packets: 0,
            s2c_bytes: 0,
            first_seen: 0,
            last_seen: 0,
            c2s_tcp_flags: 0,
            s2c_tcp_flags: 0,
            skip_flow_checks: false,
            export: None,
        }
    }
}

impl FlowRecord {
    /// Whether both addresses are proven real: a TCP handshake seen from the client's side
    /// (its SYN, the server's SYN-ACK, then the client's ACK). Anything else can be forged
    /// with one spoofed packet, so only such flows may name an address to the cloud.
    pub fn handshake_seen(&self) -> bool {
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        self.l4 == "TCP"
            && self.c2s_tcp_flags & (SYN | ACK) == SYN | ACK
            && self.s2c_tcp_flags & (SYN | ACK) == SYN | ACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_767_225_600_000_001),
            "2026-01-01T00:00:00.000001Z"
        );
        assert_eq!(
            rfc3339_micros(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn macs_are_six_bytes_and_their_text() {
        let m = [0x02, 0, 0, 0, 0xab, 0x0a];
        assert_eq!(mac_text(&m), "02:00:00:00:ab:0a");
    }
}
