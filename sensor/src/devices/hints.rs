//! Device types and the evidence for them, read from the packets devices send.

use serde::Serialize;

use crate::decode::IpPacket;
use crate::dissect::{dhcp_option, http_header};

pub use flowmesh_record::DeviceType;

/// Where a type came from; more specific evidence replaces less specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Evidence {
    Vendor,
    UserAgent,
    Dhcp,
    Ssdp,
    Mdns,
}

impl Evidence {
    /// Higher replaces lower.
    pub fn rank(self) -> u8 {
        match self {
            Evidence::Vendor => 1,
            Evidence::UserAgent => 2,
            Evidence::Dhcp => 3,
            Evidence::Ssdp => 4,
            Evidence::Mdns => 5,
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn first_match(hay: &[u8], table: &[(&[u8], DeviceType)]) -> Option<DeviceType> {
    table
        .iter()
        .find(|(n, _)| contains(hay, n))
        .map(|&(_, t)| t)
}

/// What one packet sent by a device tells about it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Hint {
    /// A type, and what it was read from.
    pub guess: Option<(DeviceType, Evidence)>,
    /// Its host name.
    pub host_name: Option<String>,
    /// DHCP option 55, the parameter request list, as comma-separated decimal codes — the
    /// "DHCP fingerprint" of ntopng and Fingerbank, which tells operating systems apart.
    pub dhcp_fingerprint: Option<String>,
    /// DHCP option 60, the vendor class identifier.
    pub dhcp_vendor_class: Option<String>,
}

/// Parameter request lists of common DHCP clients and the device type each implies. The
/// exact list identifies the client software; a prefix is not enough (clients share them).
const DHCP_FINGERPRINTS: &[(&str, DeviceType)] = &[
    // Windows 10 / 11, Windows 8, Windows 7 / Vista.
    (
        "1,3,6,15,31,33,43,44,46,47,119,121,249,252",
        DeviceType::Workstation,
    ),
    (
        "1,15,3,6,44,46,47,31,33,121,249,43,252",
        DeviceType::Workstation,
    ),
    (
        "1,15,3,6,44,46,47,31,33,121,249,43",
        DeviceType::Workstation,
    ),
    // macOS (and OS X 10.x).
    ("1,3,6,15,119,95,252,44,46", DeviceType::Laptop),
    ("1,121,3,6,15,114,119,252,95,44,46", DeviceType::Laptop),
    ("1,121,3,6,15,108,114,119,252,95,44,46", DeviceType::Laptop),
    ("1,121,3,6,15,119,252,95,44,46", DeviceType::Laptop),
    // iOS / iPadOS.
    ("1,121,3,6,15,114,119,252", DeviceType::Phone),
    ("1,121,3,6,15,108,114,119,252", DeviceType::Phone),
    ("1,121,3,6,15,119,252", DeviceType::Phone),
    // Android.
    ("1,3,6,15,26,28,51,58,59,43", DeviceType::Phone),
    ("1,3,6,15,26,28,51,58,59,43,114", DeviceType::Phone),
    ("1,3,6,15,26,28,51,58,59,43,114,108", DeviceType::Phone),
    ("1,33,3,6,15,28,51,58,59", DeviceType::Phone),
    // ISC dhclient (Debian, Ubuntu) and systemd-networkd / NetworkManager's internal client.
    (
        "1,28,2,3,15,6,119,12,44,47,26,121,42",
        DeviceType::Workstation,
    ),
    (
        "1,2,6,12,15,26,28,121,3,33,40,41,42,119,249,252,17",
        DeviceType::Workstation,
    ),
];

/// The parameter request list as ntopng prints it: decimal codes joined by commas.
fn fingerprint(list: &[u8]) -> String {
    let mut out = String::with_capacity(list.len() * 3);
    for (i, code) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&code.to_string());
    }
    out
}

fn text(b: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(b).ok()?.trim_end_matches('\0');
    (!s.is_empty()).then(|| s.to_string())
}

/// Reads the device hints a packet carries: DHCP (client's host name, vendor class and
/// parameter list), mDNS services it announces, SSDP headers, and HTTP User-Agents.
pub fn from_packet(p: &IpPacket<'_>) -> Option<Hint> {
    let pl = p.payload;
    let typed = |t: DeviceType, ev: Evidence| Hint {
        guess: Some((t, ev)),
        ..Hint::default()
    };
    match (p.proto, p.src_port, p.dst_port) {
        (17, 68, 67) if pl.len() > 240 && pl[0] == 1 => {
            let class = dhcp_option(pl, 60).unwrap_or(&[]);
            let print = dhcp_option(pl, 55)
                .filter(|l| !l.is_empty())
                .map(fingerprint);
            let by_class = first_match(
                class,
                &[
                    (b"android", DeviceType::Phone),
                    (b"MSFT", DeviceType::Workstation),
                    (b"iPhone", DeviceType::Phone),
                    (b"printer", DeviceType::Printer),
                ],
            );
            let by_print = print.as_deref().and_then(|f| {
                DHCP_FINGERPRINTS
                    .iter()
                    .find(|(known, _)| *known == f)
                    .map(|&(_, t)| t)
            });
            Some(Hint {
                guess: by_class.or(by_print).map(|t| (t, Evidence::Dhcp)),
                host_name: dhcp_option(pl, 12).and_then(text),
                dhcp_fingerprint: print,
                dhcp_vendor_class: text(class),
            })
        }
        // Only responses (announcements): a query for a service says nothing about the asker.
        (17, 5353, _) if pl.len() > 12 && pl[2] & 0x80 != 0 => {
            let t = first_match(
                pl,
                &[
                    (b"_ipp", DeviceType::Printer),
                    (b"_printer", DeviceType::Printer),
                    (b"_pdl-datastream", DeviceType::Printer),
                    (b"_googlecast", DeviceType::Tv),
                    (b"_airplay", DeviceType::Tv),
                    (b"_roku", DeviceType::Tv),
                    (b"_adisk", DeviceType::Nas),
                    (b"_sonos", DeviceType::Multimedia),
                    (b"_spotify-connect", DeviceType::Multimedia),
                    (b"_hap", DeviceType::Iot),
                    (b"_matter", DeviceType::Iot),
                ],
            )?;
            Some(typed(t, Evidence::Mdns))
        }
        (17, _, 1900) | (17, 1900, _)
            if pl.starts_with(b"NOTIFY") || pl.starts_with(b"HTTP/1.1 200") =>
        {
            let t = first_match(
                pl,
                &[
                    (b"MediaRenderer", DeviceType::Tv),
                    (b"InternetGatewayDevice", DeviceType::Networking),
                    (b"WLANAccessPoint", DeviceType::Wifi),
                    (b"WFADevice", DeviceType::Wifi),
                    (b"Printer", DeviceType::Printer),
                    (b"MediaServer", DeviceType::Nas),
                ],
            )?;
            Some(typed(t, Evidence::Ssdp))
        }
        (6, _, _) if pl.starts_with(b"GET ") || pl.starts_with(b"POST ") => {
            let ua = http_header(pl, "user-agent")?.as_bytes();
            let t = first_match(
                ua,
                &[
                    (b"iPhone", DeviceType::Phone),
                    (b"iPad", DeviceType::Tablet),
                    (b"SmartTV", DeviceType::Tv),
                    (b"Tizen", DeviceType::Tv),
                    (b"Web0S", DeviceType::Tv),
                    (b"AppleTV", DeviceType::Tv),
                    (b"Roku", DeviceType::Tv),
                    (b"PlayStation", DeviceType::Multimedia),
                    (b"Xbox", DeviceType::Multimedia),
                    (b"Mobile", DeviceType::Phone),
                    (b"Android", DeviceType::Tablet),
                    (b"Windows NT", DeviceType::Workstation),
                    (b"Macintosh", DeviceType::Laptop),
                ],
            )?;
            Some(typed(t, Evidence::UserAgent))
        }
        _ => None,
    }
}

/// A type that follows from the manufacturer alone.
pub fn type_from_vendor(vendor: &str) -> Option<DeviceType> {
    Some(match vendor {
        "Brother" | "Canon" | "Epson" | "Xerox" | "Lexmark" => DeviceType::Printer,
        "Synology" | "QNAP" => DeviceType::Nas,
        "Ubiquiti" | "Cisco" | "MikroTik" | "TP-Link" | "Netgear" => DeviceType::Networking,
        "Espressif" | "Raspberry Pi" => DeviceType::Iot,
        "Roku" => DeviceType::Tv,
        "Sonos" => DeviceType::Multimedia,
        _ => return None,
    })
}
