//! Device types and the evidence for them, read from the packets devices send.

use serde::Serialize;

use crate::decode::IpPacket;
use crate::dissect::{dhcp_option, http_header};

/// Device types, named as ntopng names them (the policy's `device_types` and `device_apps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum DeviceType {
    #[default]
    Unknown,
    Workstation,
    Laptop,
    Tablet,
    Phone,
    Networking,
    Wifi,
    Printer,
    Tv,
    Nas,
    Iot,
    Video,
    Multimedia,
}

impl DeviceType {
    /// Parses ntopng's name of a type.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "unknown" => Self::Unknown,
            "workstation" => Self::Workstation,
            "laptop" => Self::Laptop,
            "tablet" => Self::Tablet,
            "phone" => Self::Phone,
            "networking" => Self::Networking,
            "wifi" => Self::Wifi,
            "printer" => Self::Printer,
            "tv" => Self::Tv,
            "nas" => Self::Nas,
            "iot" => Self::Iot,
            "video" => Self::Video,
            "multimedia" => Self::Multimedia,
            _ => return None,
        })
    }
}

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

/// A type guess and a host name found in one packet sent by the device.
pub type Hint = (Option<(DeviceType, Evidence)>, Option<String>);

/// Reads the device hints a packet carries: DHCP (client's host name and vendor class), mDNS
/// services it announces, SSDP headers, and HTTP User-Agents.
pub fn from_packet(p: &IpPacket<'_>) -> Option<Hint> {
    let pl = p.payload;
    match (p.proto, p.src_port, p.dst_port) {
        (17, 68, 67) if pl.len() > 240 && pl[0] == 1 => {
            let name = dhcp_option(pl, 12)
                .and_then(|n| std::str::from_utf8(n).ok())
                .map(|n| n.trim_end_matches('\0').to_string());
            let class = dhcp_option(pl, 60).unwrap_or(&[]);
            let t = first_match(
                class,
                &[
                    (b"android", DeviceType::Phone),
                    (b"MSFT", DeviceType::Workstation),
                    (b"iPhone", DeviceType::Phone),
                    (b"printer", DeviceType::Printer),
                ],
            );
            Some((t.map(|t| (t, Evidence::Dhcp)), name))
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
            Some((Some((t, Evidence::Mdns)), None))
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
            Some((Some((t, Evidence::Ssdp)), None))
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
            Some((Some((t, Evidence::UserAgent)), None))
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
