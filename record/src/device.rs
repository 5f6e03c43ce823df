//! Device types, as policies name them.

use serde::Serialize;

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
