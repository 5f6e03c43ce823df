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
    /// Every type.
    pub const ALL: [DeviceType; 13] = [
        Self::Unknown,
        Self::Workstation,
        Self::Laptop,
        Self::Tablet,
        Self::Phone,
        Self::Networking,
        Self::Wifi,
        Self::Printer,
        Self::Tv,
        Self::Nas,
        Self::Iot,
        Self::Video,
        Self::Multimedia,
    ];

    /// ntopng's name of the type (what [`DeviceType::parse`] reads).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Workstation => "workstation",
            Self::Laptop => "laptop",
            Self::Tablet => "tablet",
            Self::Phone => "phone",
            Self::Networking => "networking",
            Self::Wifi => "wifi",
            Self::Printer => "printer",
            Self::Tv => "tv",
            Self::Nas => "nas",
            Self::Iot => "iot",
            Self::Video => "video",
            Self::Multimedia => "multimedia",
        }
    }

    /// Parses ntopng's name of a type.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        Self::ALL.into_iter().find(|t| t.name() == s)
    }
}
