//! More tunnels and link layers (issue 17): Geneve, GRE over UDP, AYIYA, CAPWAP data (802.3 and
//! native 802.11), ERSPAN type I, VN-Tag, 802.1ah, and 802.11 captured in monitor mode with and
//! without radiotap — each yields the inner flow, and says which tunnel.

mod common;
use common::*;

const IEEE802_11: u32 = 105;
const RADIOTAP: u32 = 127;
const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0d];

fn inner() -> Vec<u8> {
    ipv4(
        [172, 16, 0, 1],
        [172, 16, 0, 2],
        17,
        &udp(40000, 53, &dns_query("in.example")),
    )
}

/// An outer IPv4 packet of IP protocol `proto` carrying `payload`, in Ethernet.
fn outer(proto: u8, payload: &[u8]) -> Vec<u8> {
    eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4([192, 168, 1, 20], [192, 168, 1, 1], proto, payload),
    )
}

fn outer_udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    outer(17, &udp(sp, dp, payload))
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// An 802.11 data frame from `sa` to the access point, for `da`, with LLC/SNAP and `ip`.
fn wifi_frame(sa: [u8; 6], da: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let bssid = [0x02, 0, 0, 0, 0, 0xee];
    cat(&[
        &[0x08, 0x01, 0, 0], // data, to DS
        &bssid,
        &sa,
        &da,
        &[0, 0],
        &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00],
        ip,
    ])
}

fn assert_inner(frame: Vec<u8>, link: u32, tunnel: Option<&str>, what: &str) {
    let f = one_flow(&pcap(link, &[frame]));
    assert_eq!((f.tunnel, f.l7), (tunnel, "DNS"), "{what}");
    assert_eq!(
        f.client_ip.to_string(),
        "172.16.0.1",
        "{what}: not the inner flow"
    );
}

#[test]
fn udp_tunnels_yield_the_inner_flow() {
    let ip = inner();
    let geneve_eth = cat(&[
        &[0, 0, 0x65, 0x58, 0, 0, 7, 0],
        &eth(MAC_A, MAC_B, 0x0800, &ip),
    ]);
    // With 8 bytes of options (length 2 words) and IPv4 directly.
    let geneve_ip = cat(&[&[2, 0, 0x08, 0x00, 0, 0, 7, 0], &[0; 8], &ip]);
    let gre_in_udp = cat(&[&[0, 0, 0x08, 0x00], &ip]);
    let six = ipv6(
        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        17,
        &udp(40000, 53, &dns_query("in.example")),
    );
    // Identity of 16 bytes (length 4: 2^4), a 20-byte signature (5 words), forward, IPv6.
    let ayiya = cat(&[
        &[0x41, 0x52, 0x11, 41, 0, 0, 0, 0],
        &[1; 16],
        &[2; 20],
        &six,
    ]);
    let capwap_8023 = cat(&[
        &[0, 0x10, 0x02, 0, 0, 0, 0, 0],
        &eth(MAC_A, MAC_B, 0x0800, &ip),
    ]);
    let capwap_80211 = cat(&[
        &[0, 0x10, 0x03, 0, 0, 0, 0, 0],
        &wifi_frame(MAC_C, MAC_D, &ip),
    ]);
    // Cisco controllers swap the frame control's two bytes.
    let mut swapped = wifi_frame(MAC_C, MAC_D, &ip);
    swapped.swap(0, 1);
    let capwap_cisco = cat(&[&[0, 0x10, 0x03, 0, 0, 0, 0, 0], &swapped]);
    for (frame, tunnel) in [
        (outer_udp(50000, 6081, &geneve_eth), "Geneve"),
        (outer_udp(50000, 6081, &geneve_ip), "Geneve"),
        (outer_udp(50000, 4754, &gre_in_udp), "GRE"),
        (outer_udp(12380, 5247, &capwap_8023), "CAPWAP"),
        (outer_udp(12380, 5247, &capwap_80211), "CAPWAP"),
        (outer_udp(12380, 5247, &capwap_cisco), "CAPWAP"),
    ] {
        assert_inner(frame, 1, Some(tunnel), tunnel);
    }
    let f = one_flow(&pcap(1, &[outer_udp(5072, 5072, &ayiya)]));
    assert_eq!((f.tunnel, f.l7), (Some("AYIYA"), "DNS"));
    assert!(f.client_ip.is_ipv6());
}

#[test]
fn erspan_type_one_vn_tag_and_provider_bridging_are_peeled() {
    let ip = inner();
    let erspan1 = outer(
        47,
        &cat(&[&[0, 0, 0x88, 0xbe], &eth(MAC_C, MAC_D, 0x0800, &ip)]),
    );
    assert_inner(erspan1, 1, Some("GRE"), "ERSPAN type I");
    let vn_tag = eth(
        MAC_A,
        MAC_B,
        0x8926,
        &cat(&[&[0x80, 0x01, 0, 0x02, 0x08, 0x00], &ip]),
    );
    assert_inner(vn_tag, 1, None, "VN-Tag");
    // 802.1ah: the I-TAG, then the customer's addresses: the flow is theirs.
    let pbb = eth(
        MAC_A,
        MAC_B,
        0x88e7,
        &cat(&[&[0, 0, 0x10, 0x01], &MAC_D, &MAC_C, &[0x08, 0x00], &ip]),
    );
    let f = one_flow(&pcap(1, &[pbb]));
    assert_eq!((f.l7, f.client_mac), ("DNS", Some(MAC_C)));
}

#[test]
fn monitor_mode_wifi_with_and_without_radiotap() {
    let ip = inner();
    let frame = wifi_frame(MAC_C, MAC_D, &ip);
    let f = one_flow(&pcap(IEEE802_11, std::slice::from_ref(&frame)));
    assert_eq!(
        (f.l7, f.client_mac, f.server_mac),
        ("DNS", Some(MAC_C), Some(MAC_D))
    );
    // Radiotap with only the Flags field, saying the frame ends in an FCS.
    let with_fcs = cat(&[
        &[0, 0, 10, 0, 0x02, 0, 0, 0, 0x10, 0],
        &frame,
        &[0xde, 0xad, 0xbe, 0xef],
    ]);
    assert_inner(with_fcs, RADIOTAP, None, "radiotap with FCS");
    // TSFT (8 bytes, 8-aligned) before the Flags: no FCS this time.
    let tsft = cat(&[
        &[0, 0, 24, 0, 0x03, 0, 0, 0],
        &[0; 8],
        &[0x00],
        &[0; 7],
        &frame,
    ]);
    assert_inner(tsft, RADIOTAP, None, "radiotap with TSFT");
    // Protected (encrypted) and management frames decode to nothing, without error.
    let mut protected = frame.clone();
    protected[1] |= 0x40;
    let (flows, r) = flows(&pcap(IEEE802_11, &[protected]));
    r.unwrap();
    assert!(flows.is_empty());
}

#[test]
fn a_capwap_management_frame_stays_in_the_tunnel_s_outer_flow() {
    // A probe request (management): no flow of its own, so the outer UDP flow counts it.
    let probe = cat(&[
        &[0x40, 0, 0, 0],
        &[0xff; 6],
        &MAC_C,
        &[0xff; 6],
        &[0, 0],
        &[0; 8],
    ]);
    let capwap = cat(&[&[0, 0x10, 0x03, 0, 0, 0, 0, 0], &probe]);
    let f = one_flow(&pcap(1, &[outer_udp(12380, 5247, &capwap)]));
    assert_eq!((f.tunnel, f.server_port), (None, 5247));
}
