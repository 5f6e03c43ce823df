//! The device table: one entry per MAC address seen as a source, with when, which IPs, its host
//! name, vendor (from the OUI) and detected type (from DHCP, mDNS, SSDP, HTTP User-Agent and the
//! vendor, most specific evidence first). The policy checks of the collector consume it.

mod hints;
mod oui;

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::decode::Decoded;
pub use hints::{DeviceType, Evidence};

/// At most this many addresses are remembered per device.
const MAX_IPS: usize = 8;

/// One device.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Device {
    /// Its MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// First frame sent, µs.
    pub first_seen: i64,
    /// Last frame sent, µs.
    pub last_seen: i64,
    /// Addresses it sent from (the most recent last).
    pub ips: Vec<IpAddr>,
    /// Its host name (DHCP option 12, mDNS).
    pub host_name: Option<String>,
    /// Manufacturer, from the OUI.
    pub vendor: Option<&'static str>,
    /// DHCP parameter request list (option 55), e.g. `1,3,6,15,31,33,43,44,46,47,119,121,249,252`.
    pub dhcp_fingerprint: Option<String>,
    /// DHCP vendor class (option 60), e.g. `MSFT 5.0`, `android-dhcp-13`.
    pub dhcp_vendor_class: Option<String>,
    /// Detected type.
    pub device_type: DeviceType,
    /// What the type was detected from.
    pub type_source: Option<Evidence>,
    /// Frames sent.
    pub packets: u64,
}

/// MAC → device.
#[derive(Default)]
pub struct DeviceTable {
    devices: HashMap<[u8; 6], Device>,
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub use flowmesh_link::addr::{is_local, is_unicast};

impl DeviceTable {
    /// Devices seen so far.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether none was seen.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The device with this MAC.
    pub fn get(&self, mac: &[u8; 6]) -> Option<&Device> {
        self.devices.get(mac)
    }

    /// Every device with a detected type: (MAC bytes, type).
    pub fn typed(&self) -> impl Iterator<Item = ([u8; 6], DeviceType)> + '_ {
        self.devices
            .iter()
            .filter(|(_, d)| d.device_type != DeviceType::Unknown)
            .map(|(m, d)| (*m, d.device_type))
    }

    /// Every device, in MAC order.
    pub fn all(&self) -> Vec<&Device> {
        let mut v: Vec<&Device> = self.devices.values().collect();
        v.sort_by(|a, b| a.mac.cmp(&b.mac));
        v
    }

    fn entry(&mut self, mac: [u8; 6], ts: i64) -> &mut Device {
        self.devices.entry(mac).or_insert_with(|| {
            let vendor = oui::vendor(&mac);
            let (device_type, type_source) = match vendor.and_then(hints::type_from_vendor) {
                Some(t) => (t, Some(Evidence::Vendor)),
                None => (DeviceType::Unknown, None),
            };
            Device {
                mac: mac_text(&mac),
                first_seen: ts,
                last_seen: ts,
                ips: Vec::new(),
                host_name: None,
                dhcp_fingerprint: None,
                dhcp_vendor_class: None,
                vendor,
                device_type,
                type_source,
                packets: 0,
            }
        })
    }

    /// Learns from one decoded packet: the sender's MAC, its IP, and any hint in the payload.
    pub fn observe(&mut self, decoded: &Decoded<'_>, ts: i64) {
        match decoded {
            Decoded::Ip(p) => {
                let Some(mac) = p.src_mac.filter(is_unicast) else {
                    return;
                };
                let dev = self.entry(mac, ts);
                dev.packets += 1;
                dev.last_seen = dev.last_seen.max(ts);
                // A router forwards traffic from everywhere under its own MAC: only local
                // addresses (and what ARP states) belong to the device that sends them.
                if is_local(p.src) {
                    remember_ip(dev, p.src);
                }
                if let Some(hint) = hints::from_packet(p) {
                    apply(dev, hint);
                }
            }
            Decoded::Arp {
                sender_mac,
                sender_ip,
                ..
            } => {
                if !is_unicast(sender_mac) {
                    return;
                }
                let dev = self.entry(*sender_mac, ts);
                dev.packets += 1;
                dev.last_seen = dev.last_seen.max(ts);
                if !sender_ip.is_unspecified() {
                    remember_ip(dev, IpAddr::V4(*sender_ip));
                }
            }
            Decoded::Other => {}
        }
    }
}

fn remember_ip(dev: &mut Device, ip: IpAddr) {
    if ip.is_unspecified() || ip.is_multicast() {
        return;
    }
    if let Some(pos) = dev.ips.iter().position(|a| *a == ip) {
        let a = dev.ips.remove(pos);
        dev.ips.push(a);
        return;
    }
    if dev.ips.len() >= MAX_IPS {
        dev.ips.remove(0);
    }
    dev.ips.push(ip);
}

fn apply(dev: &mut Device, hint: hints::Hint) {
    if let Some(n) = hint.host_name.filter(|n| !n.is_empty()) {
        dev.host_name = Some(n);
    }
    if hint.dhcp_fingerprint.is_some() {
        dev.dhcp_fingerprint = hint.dhcp_fingerprint;
    }
    if hint.dhcp_vendor_class.is_some() {
        dev.dhcp_vendor_class = hint.dhcp_vendor_class;
    }
    if let Some((t, ev)) = hint.guess
        && dev.type_source.is_none_or(|cur| ev.rank() >= cur.rank())
    {
        dev.device_type = t;
        dev.type_source = Some(ev);
    }
}
