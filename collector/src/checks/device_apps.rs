//! Allowed applications per device type: ntopng's presets, replaced per type by the policy's
//! `[device_apps.TYPE]`. DNS and DHCP are always allowed; the server side is judged only when
//! the server answered.

use std::collections::{BTreeMap, BTreeSet};

use flowmesh_record::DeviceType;

use crate::policy::AppSets;

const BASIC_CLIENT: &[&str] = &[
    "MDNS", "NTP", "NetBIOS", "ICMP", "IGMP", "ICMPV6", "DHCPV6", "SSDP", "LLMNR",
];
const BASIC_SERVER: &[&str] = &["ICMP", "ICMPV6"];

/// The built-in preset of a type: `None` means everything is allowed.
pub fn preset(t: DeviceType) -> Option<AppSets> {
    let (client_extra, server_extra): (&[&str], &[&str]) = match t {
        DeviceType::Unknown
        | DeviceType::Workstation
        | DeviceType::Laptop
        | DeviceType::Tablet
        | DeviceType::Phone
        | DeviceType::Networking
        | DeviceType::Wifi => return None,
        DeviceType::Iot => (&["HTTP", "TLS", "QUIC", "STUN"], &[]),
        DeviceType::Video | DeviceType::Multimedia | DeviceType::Tv => {
            (&["HTTP", "TLS", "QUIC", "STUN", "RTP"], &["HTTP"])
        }
        DeviceType::Nas => (
            &["HTTP", "TLS"],
            &["HTTP", "TLS", "SSH", "FTP_CONTROL", "NetBIOS"],
        ),
        DeviceType::Printer => (&[], &["HTTP", "TLS", "SNMP"]),
    };
    let set = |a: &[&str], b: &[&str]| {
        a.iter()
            .chain(b)
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
    };
    Some(AppSets {
        client: set(BASIC_CLIENT, client_extra),
        server: set(BASIC_SERVER, server_extra),
    })
}

/// Allowed applications by device type, presets overridden by the policy: resolved once, so
/// judging a flow looks its type's sets up without building or naming anything.
pub struct DeviceApps {
    /// Per type, in [`DeviceType::ALL`]'s order; `None`: everything is allowed.
    by_type: Vec<Option<AppSets>>,
}

/// Which side of a flow broke the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The device was the client.
    Client,
    /// The device was the server.
    Server,
}

impl Peer {
    /// "client" or "server".
    pub fn name(self) -> &'static str {
        match self {
            Peer::Client => "client",
            Peer::Server => "server",
        }
    }
}

impl DeviceApps {
    /// With the policy's per-type sets.
    pub fn new(overrides: &BTreeMap<String, AppSets>) -> Self {
        DeviceApps {
            by_type: DeviceType::ALL
                .iter()
                .map(|&t| overrides.get(t.name()).cloned().or_else(|| preset(t)))
                .collect(),
        }
    }

    /// Whether a device of type `t` may use `l7` (or `app`) as `peer`.
    pub fn allowed(&self, t: DeviceType, peer: Peer, l7: &str, app: Option<&str>) -> bool {
        if ["DNS", "DHCP"].iter().any(|a| a.eq_ignore_ascii_case(l7)) {
            return true;
        }
        let at = DeviceType::ALL.iter().position(|x| *x == t);
        let Some(sets) = at.and_then(|i| self.by_type.get(i)?.as_ref()) else {
            return true;
        };
        let set = match peer {
            Peer::Client => &sets.client,
            Peer::Server => &sets.server,
        };
        set.iter()
            .any(|a| a.eq_ignore_ascii_case(l7) || app.is_some_and(|x| x.eq_ignore_ascii_case(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_overrides_and_always_allowed() {
        let none = DeviceApps::new(&BTreeMap::new());
        assert!(none.allowed(DeviceType::Printer, Peer::Server, "SNMP", None));
        assert!(!none.allowed(DeviceType::Printer, Peer::Client, "BitTorrent", None));
        assert!(none.allowed(DeviceType::Printer, Peer::Client, "DNS", None));
        assert!(none.allowed(DeviceType::Workstation, Peer::Client, "BitTorrent", None));
        let mut o = BTreeMap::new();
        o.insert(
            "printer".to_string(),
            AppSets {
                client: ["NTP".to_string()].into(),
                server: BTreeSet::new(),
            },
        );
        let custom = DeviceApps::new(&o);
        assert!(!custom.allowed(DeviceType::Printer, Peer::Server, "SNMP", None));
        assert!(custom.allowed(DeviceType::Printer, Peer::Client, "NTP", None));
        assert!(custom.allowed(DeviceType::Printer, Peer::Server, "DHCP", None));
    }
}
