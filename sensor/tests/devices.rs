//! The device table on packets built in test code.

mod common;
use common::*;

use flowmesh_sensor::capture::{CaptureReader, LinkType};
use flowmesh_sensor::decode::{self, FragmentTable};
use flowmesh_sensor::devices::{DeviceTable, DeviceType, Evidence};

fn table(frames: &[Vec<u8>]) -> DeviceTable {
    let mut t = DeviceTable::default();
    let mut frags = FragmentTable::default();
    let bytes = pcap(1, frames);
    let mut reader = CaptureReader::new(&bytes[..]).unwrap();
    let mut ts = 0;
    while let Some(p) = reader.next_packet().unwrap() {
        ts += 1;
        if let Ok(d) = decode::decode(LinkType::ETHERNET, p.data, &mut frags, ts) {
            t.observe(&d, ts);
        }
    }
    t
}

fn dhcp_request(host: &str, class: &str) -> Vec<u8> {
    dhcp_request_asking(host, class, &[])
}

/// A DHCP request with host name, vendor class (when not empty) and parameter request list.
fn dhcp_request_asking(host: &str, class: &str, params: &[u8]) -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0];
    m.extend_from_slice(&[0; 232]);
    m.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 53, 1, 3, 12, host.len() as u8]);
    m.extend_from_slice(host.as_bytes());
    if !class.is_empty() {
        m.extend_from_slice(&[60, class.len() as u8]);
        m.extend_from_slice(class.as_bytes());
    }
    if !params.is_empty() {
        m.extend_from_slice(&[55, params.len() as u8]);
        m.extend_from_slice(params);
    }
    m.push(255);
    eth(
        MAC_A,
        [0xff; 6],
        0x0800,
        &ipv4([0, 0, 0, 0], [255; 4], 17, &udp(68, 67, &m)),
    )
}

#[test]
fn dhcp_gives_host_name_and_type() {
    let t = table(&[dhcp_request("pixel-7", "android-dhcp-14")]);
    let d = t.get(&MAC_A).unwrap();
    assert_eq!(d.host_name.as_deref(), Some("pixel-7"));
    assert_eq!(
        (d.device_type, d.type_source),
        (DeviceType::Phone, Some(Evidence::Dhcp))
    );
    assert!(d.ips.is_empty(), "0.0.0.0 is nobody's address");
}

#[test]
fn dhcp_parameter_list_is_the_fingerprint_and_types_known_clients() {
    let windows = [1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252];
    let t = table(&[dhcp_request_asking("desk-1", "", &windows)]);
    let d = t.get(&MAC_A).unwrap();
    assert_eq!(
        d.dhcp_fingerprint.as_deref(),
        Some("1,3,6,15,31,33,43,44,46,47,119,121,249,252")
    );
    assert_eq!(d.dhcp_vendor_class, None);
    assert_eq!(
        (d.device_type, d.type_source),
        (DeviceType::Workstation, Some(Evidence::Dhcp))
    );
    // An unknown list is kept but types nothing; the vendor class still decides when known.
    let t = table(&[dhcp_request_asking("thing", "", &[1, 3, 6])]);
    let d = t.get(&MAC_A).unwrap();
    assert_eq!(
        (d.dhcp_fingerprint.as_deref(), d.device_type),
        (Some("1,3,6"), DeviceType::Unknown)
    );
    let t = table(&[dhcp_request_asking("p", "android-dhcp-14", &windows)]);
    let d = t.get(&MAC_A).unwrap();
    assert_eq!(
        (d.dhcp_vendor_class.as_deref(), d.device_type),
        (Some("android-dhcp-14"), DeviceType::Phone)
    );
}

#[test]
fn mdns_announcements_type_a_device_but_queries_do_not() {
    let announce = mdns_announcement(MAC_A, IP_A, "office._ipp._tcp.local");
    let query = mdns_query(MAC_B, [192, 168, 1, 30], "_googlecast._tcp.local");
    let t = table(&[announce, query]);
    assert_eq!(t.get(&MAC_A).unwrap().device_type, DeviceType::Printer);
    assert_eq!(t.get(&MAC_B).unwrap().device_type, DeviceType::Unknown);
    assert_eq!(t.len(), 2, "the multicast destination is not a device");
}

#[test]
fn user_agent_and_vendor_and_more_specific_evidence_wins() {
    let synology = [0x00, 0x11, 0x32, 1, 2, 3];
    let get = tcp(50000, 80, 1, PSH_ACK, b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)\r\n\r\n");
    let t = table(&[
        eth(
            synology,
            MAC_B,
            0x0800,
            &ipv4([192, 168, 1, 9], IP_B, 17, &udp(5000, 5001, b"x")),
        ),
        eth(MAC_A, MAC_B, 0x0800, &ipv4(IP_A, IP_B, 6, &get)),
    ]);
    let nas = t.get(&synology).unwrap();
    assert_eq!(
        (nas.vendor, nas.device_type, nas.type_source),
        (Some("Synology"), DeviceType::Nas, Some(Evidence::Vendor))
    );
    assert_eq!(t.get(&MAC_A).unwrap().device_type, DeviceType::Phone);
}

#[test]
fn a_router_does_not_collect_the_internet_s_addresses_but_arp_is_believed() {
    let from_internet = eth(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(
            [8, 8, 8, 8],
            IP_A,
            17,
            &udp(53, 40000, &dns_response("a.example")),
        ),
    );
    let t = table(&[from_internet, arp(MAC_B, [192, 168, 1, 1], IP_A, 2)]);
    let router = t.get(&MAC_B).unwrap();
    assert_eq!(
        router.ips,
        vec!["192.168.1.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(router.packets, 2);
}
