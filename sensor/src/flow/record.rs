//! Flow records in DESIGN.md's JSON form.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use super::table::Flow;

/// IP protocol numbers and the names nDPI gives them.
const L4_NAMES: &[(u8, &str)] = &[
    (1, "ICMP"),
    (2, "IGMP"),
    (6, "TCP"),
    (17, "UDP"),
    (47, "GRE"),
    (50, "ESP"),
    (51, "AH"),
    (58, "ICMPV6"),
    (89, "OSPF"),
    (103, "PIM"),
    (112, "VRRP"),
    (132, "SCTP"),
];

/// The name nDPI gives an IP protocol.
pub fn l4_name(proto: u8) -> &'static str {
    L4_NAMES
        .iter()
        .find(|(n, _)| *n == proto)
        .map_or("Unknown", |(_, name)| name)
}

/// The IP protocol number of an `l4` name (as flow records spell it).
pub fn l4_number(name: &str) -> Option<u8> {
    L4_NAMES.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
}

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
    /// Client MAC.
    pub client_mac: Option<String>,
    /// Server MAC.
    pub server_mac: Option<String>,
    /// Client-to-server packets.
    pub c2s_packets: u64,
    /// Client-to-server L2 bytes.
    pub c2s_bytes: u64,
    /// Server-to-client packets.
    pub s2c_packets: u64,
    /// Server-to-client L2 bytes.
    pub s2c_bytes: u64,
    /// First packet, RFC 3339 UTC with microseconds.
    pub first_seen: String,
    /// Last packet.
    pub last_seen: String,
}

fn mac(m: &[u8; 6]) -> Option<String> {
    (m != &[0; 6]).then(|| {
        let mut s = String::with_capacity(17);
        for (i, b) in m.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            let _ = write!(s, "{b:02x}");
        }
        s
    })
}

/// Formats µs since the epoch as RFC 3339 UTC with microseconds, e.g. `2024-05-01T12:00:00.000001Z`.
pub fn rfc3339_micros(ts: i64) -> String {
    let secs = ts.div_euclid(1_000_000);
    let micros = ts.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Parses the RFC 3339 UTC form flow records use (`2024-05-01T12:00:00.000001Z`; the fraction
/// is optional) back to µs since the epoch: the inverse of [`rfc3339_micros`].
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = if b.get(19) == Some(&b'.') {
        num(20..26).unwrap_or(0)
    } else {
        0
    };
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000) + micros)
}

impl FlowRecord {
    /// The record of a flow as it stands.
    pub fn from_flow(f: &Flow) -> Self {
        let (client, server) = f.endpoints();
        FlowRecord {
            l4: l4_name(f.key.proto),
            client_ip: client.0,
            client_port: client.1,
            server_ip: server.0,
            server_port: server.1,
            vlan: (f.key.vlan != 0xffff).then_some(f.key.vlan),
            tunnel: f.tunnel.map(|t| t.name()),
            l7: f.dpi.l7_name(),
            app: f.dpi.app(),
            server_name: f.dpi.server_name().map(str::to_string),
            alpn: f
                .dpi
                .alpn()
                .map(|a| a.split(',').map(str::to_string).collect()),
            client_mac: mac(&f.client_mac),
            server_mac: mac(&f.server_mac),
            c2s_packets: f.c2s_packets,
            c2s_bytes: f.c2s_bytes,
            s2c_packets: f.s2c_packets,
            s2c_bytes: f.s2c_bytes,
            first_seen: rfc3339_micros(f.first_seen),
            last_seen: rfc3339_micros(f.last_seen),
        }
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
}
