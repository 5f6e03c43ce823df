//! A flow record's JSON line written straight into a buffer: byte for byte what serde_json
//! makes of the derived `Serialize`, without its per-string escaping passes over field names
//! and formatted numbers (`flowmesh flows` writes records by the hundred thousand; serde's
//! path was about a tenth of a replay). The derive stays the reference: tests compare the two.

use std::io::Write as _;
use std::net::IpAddr;

use crate::record::{FlowRecord, mac_text_into};
use flowmesh_link::time::{RFC3339_LEN, rfc3339_micros, rfc3339_micros_bytes};

impl FlowRecord {
    /// Appends this record as one JSON object (DESIGN.md's form, no newline) to `out`: the
    /// same bytes as `serde_json::to_writer(out, self)`, allocating nothing beyond `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"l4\":");
        string(out, self.l4);
        out.extend_from_slice(b",\"client_ip\":");
        ip(out, self.client_ip);
        out.extend_from_slice(b",\"client_port\":");
        number(out, self.client_port);
        out.extend_from_slice(b",\"server_ip\":");
        ip(out, self.server_ip);
        out.extend_from_slice(b",\"server_port\":");
        number(out, self.server_port);
        out.extend_from_slice(b",\"vlan\":");
        match self.vlan {
            Some(v) => number(out, v),
            None => null(out),
        }
        out.extend_from_slice(b",\"tunnel\":");
        optional(out, self.tunnel);
        out.extend_from_slice(b",\"l7\":");
        string(out, self.l7);
        out.extend_from_slice(b",\"app\":");
        optional(out, self.app);
        out.extend_from_slice(b",\"server_name\":");
        optional(out, self.server_name.as_deref());
        out.extend_from_slice(b",\"alpn\":");
        match &self.alpn {
            Some(ids) => {
                out.push(b'[');
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    string(out, id);
                }
                out.push(b']');
            }
            None => null(out),
        }
        out.extend_from_slice(b",\"client_mac\":");
        mac(out, self.client_mac.as_ref());
        out.extend_from_slice(b",\"server_mac\":");
        mac(out, self.server_mac.as_ref());
        out.extend_from_slice(b",\"c2s_packets\":");
        number(out, self.c2s_packets);
        out.extend_from_slice(b",\"c2s_bytes\":");
        number(out, self.c2s_bytes);
        out.extend_from_slice(b",\"s2c_packets\":");
        number(out, self.s2c_packets);
        out.extend_from_slice(b",\"s2c_bytes\":");
        number(out, self.s2c_bytes);
        out.extend_from_slice(b",\"first_seen\":");
        time(out, self.first_seen);
        out.extend_from_slice(b",\"last_seen\":");
        time(out, self.last_seen);
        if let Some(e) = &self.export {
            out.extend_from_slice(b",\"exporter\":");
            ip(out, e.exporter);
            out.extend_from_slice(b",\"in_if\":");
            number(out, e.in_if);
            out.extend_from_slice(b",\"out_if\":");
            number(out, e.out_if);
            out.extend_from_slice(b",\"sampling\":");
            number(out, e.sampling);
        }
        out.push(b'}');
    }
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn optional(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => null(out),
    }
}

/// A JSON string as serde_json escapes it: `"` and `\`, the short forms of five control
/// characters, `\u00XX` (lower-case hex) for the other controls; everything else as it is.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn ip(out: &mut Vec<u8>, a: IpAddr) {
    out.push(b'"');
    match a {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, octet);
            }
        }
        // IPv6's text form (RFC 5952 zero compression, embedded IPv4) is std's; writing
        // into a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

fn mac(out: &mut Vec<u8>, m: Option<&[u8; 6]>) {
    match m {
        Some(m) => {
            out.push(b'"');
            out.extend_from_slice(mac_text_into(m, &mut [0; 17]).as_bytes());
            out.push(b'"');
        }
        None => null(out),
    }
}

fn time(out: &mut Vec<u8>, micros: i64) {
    out.push(b'"');
    let mut buf = [0u8; RFC3339_LEN];
    if rfc3339_micros_bytes(micros, &mut buf) {
        out.extend_from_slice(&buf);
    } else {
        out.extend_from_slice(rfc3339_micros(micros).as_bytes());
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::Exported;

    fn same_as_serde(r: &FlowRecord) {
        let mut mine = Vec::new();
        r.write_json(&mut mine);
        let serde = serde_json::to_vec(r).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&serde)
        );
    }

    #[test]
    fn an_empty_record_is_serdes() {
        same_as_serde(&FlowRecord::default());
    }

    #[test]
    fn every_field_set_is_serdes() {
        let r = FlowRecord {
            l4: "TCP",
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10)),
            client_port: 50_123,
            server_ip: IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
            server_port: 443,
            vlan: Some(4094),
            tunnel: Some("GTP"),
            l7: "TLS",
            app: Some("YouTube"),
            server_name: Some("www.example.com".into()),
            alpn: Some(vec!["h2".into(), "http/1.1".into()]),
            client_mac: Some([0x02, 0, 0, 0, 0xab, 0x0a]),
            server_mac: Some([0xff; 6]),
            c2s_packets: u64::MAX,
            c2s_bytes: 0,
            s2c_packets: 7,
            s2c_bytes: 1_000_000_000_000,
            first_seen: 1_767_225_600_000_001,
            last_seen: 1_767_225_601_999_999,
            export: Some(Exported {
                exporter: IpAddr::V6(Ipv6Addr::LOCALHOST),
                in_if: 3,
                out_if: u32::MAX,
                sampling: 1,
            }),
            ..FlowRecord::default()
        };
        same_as_serde(&r);
        same_as_serde(&FlowRecord {
            alpn: Some(vec![]),
            ..r
        });
    }

    #[test]
    fn names_an_exporter_or_peer_sent_are_escaped_as_serde_escapes_them() {
        let every_byte: String = (0u8..=0x7f).map(char::from).collect();
        for name in [
            every_byte.as_str(),
            "quote\" backslash\\ slash/",
            "ünïcødé ✓ 𝄞",
            "\u{7f}\u{80}\u{2028}",
            "",
        ] {
            same_as_serde(&FlowRecord {
                server_name: Some(name.into()),
                alpn: Some(vec![name.into(), "h3".into()]),
                ..FlowRecord::default()
            });
        }
    }

    #[test]
    fn addresses_and_times_of_every_form_are_serdes() {
        let v6: [Ipv6Addr; 5] = [
            Ipv6Addr::UNSPECIFIED,
            "2001:db8::1".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
            "fe80::1:0:0:0:1".parse().unwrap(),
            "2001:db8:1:2:3:4:5:6".parse().unwrap(),
        ];
        for a in v6 {
            same_as_serde(&FlowRecord {
                client_ip: IpAddr::V6(a),
                server_ip: IpAddr::V4(Ipv4Addr::new(255, 0, 10, 100)),
                ..FlowRecord::default()
            });
        }
        // Before the epoch, and years outside 0..=9999 (serde's general path).
        for t in [-1, 0, i64::MIN, i64::MAX, 253_402_300_800_000_000] {
            same_as_serde(&FlowRecord {
                first_seen: t,
                last_seen: t,
                ..FlowRecord::default()
            });
        }
    }
}
