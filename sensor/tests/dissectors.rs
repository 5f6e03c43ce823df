//! Application detection on packets built in test code: each protocol detected, and not
//! detected where it is absent.

mod common;
use common::*;

fn udp_flow(sp: u16, dp: u16, payload: &[u8]) -> flowmesh_sensor::flow::FlowRecord {
    one_flow(&pcap(1, &[eth_udp(sp, dp, payload)]))
}

fn tcp_flow(dp: u16, client: &[&[u8]], server: &[&[u8]]) -> flowmesh_sensor::flow::FlowRecord {
    let mut p = vec![
        eth_tcp(true, 50000, dp, SYN, &[]),
        eth_tcp(false, dp, 50000, SYN | ACK, &[]),
    ];
    for c in client {
        p.push(eth_tcp(true, 50000, dp, PSH_ACK, c));
    }
    for s in server {
        p.push(eth_tcp(false, dp, 50000, PSH_ACK, s));
    }
    one_flow(&pcap(1, &p))
}

#[test]
fn http_host_and_application() {
    let f = tcp_flow(
        80,
        &[b"GET /watch HTTP/1.1\r\nHost: www.youtube.com\r\nUser-Agent: t\r\n\r\n"],
        &[b"HTTP/1.1 200 OK\r\n\r\n"],
    );
    assert_eq!(
        (f.l7, f.server_name.as_deref(), f.app),
        ("HTTP", Some("www.youtube.com"), Some("YouTube"))
    );
    assert_eq!((f.c2s_packets, f.s2c_packets), (2, 2));
}

#[test]
fn tls_sni_even_when_the_client_hello_is_split_across_segments() {
    let hello = client_hello("api.dropbox.com");
    let whole = tcp_flow(443, &[&hello], &[]);
    assert_eq!(
        (whole.l7, whole.server_name.as_deref(), whole.app),
        ("TLS", Some("api.dropbox.com"), Some("Dropbox"))
    );
    let (a, b) = hello.split_at(60);
    let split = tcp_flow(443, &[a, b], &[]);
    assert_eq!(
        (split.l7, split.server_name.as_deref()),
        ("TLS", Some("api.dropbox.com"))
    );
    let imaps = tcp_flow(993, &[&hello], &[]);
    assert_eq!(imaps.l7, "IMAPS");
}

#[test]
fn tls_alpn_is_reported_in_the_clients_order() {
    let alpn = |f: &flowmesh_sensor::flow::FlowRecord| f.alpn.clone();
    let f = tcp_flow(
        443,
        &[&client_hello_with("a.example", &["h2", "http/1.1"])],
        &[],
    );
    assert_eq!(alpn(&f), Some(vec!["h2".into(), "http/1.1".into()]));
    let none = tcp_flow(443, &[&client_hello_with("a.example", &[])], &[]);
    assert_eq!(
        (none.server_name.as_deref(), alpn(&none)),
        (Some("a.example"), None)
    );
    let json = serde_json::to_string(&f).unwrap();
    assert!(
        json.contains(r#""server_name":"a.example","alpn":["h2","http/1.1"],"#),
        "{json}"
    );
}

#[test]
fn quic_client_hello_over_two_initial_packets() {
    use flowmesh_sensor::dissect::seal_client_initial;
    let rec = client_hello_with("www.youtube.com", &["h3"]);
    let hs = &rec[5..];
    let dcid = [9, 8, 7, 6, 5, 4, 3, 2];
    let cut = hs.len() / 2;
    let first = seal_client_initial(1, &dcid, 0, 0, &hs[..cut], 1200);
    let second = seal_client_initial(1, &dcid, 1, cut, &hs[cut..], 1200);
    let f = one_flow(&pcap(
        1,
        &[eth_udp(50000, 443, &first), eth_udp(50000, 443, &second)],
    ));
    assert_eq!(
        (f.l7, f.server_name.as_deref(), f.app),
        ("QUIC", Some("www.youtube.com"), Some("YouTube"))
    );
    assert_eq!(f.alpn, Some(vec!["h3".to_string()]));
    // Only the first Initial seen: QUIC all the same, without names.
    let f = one_flow(&pcap(1, &[eth_udp(50000, 443, &first)]));
    assert_eq!((f.l7, f.server_name), ("QUIC", None));
}

#[test]
fn smtp_becomes_smtps_after_starttls() {
    let plain = tcp_flow(25, &[b"EHLO me\r\n"], &[b"220 mx ESMTP ready\r\n"]);
    assert_eq!(plain.l7, "SMTP");
    let upgraded = tcp_flow(
        25,
        &[b"EHLO me\r\n", b"STARTTLS\r\n"],
        &[b"220 mx ESMTP ready\r\n"],
    );
    assert_eq!(upgraded.l7, "SMTPS");
}

#[test]
fn banners_and_greetings() {
    assert_eq!(tcp_flow(22, &[b"SSH-2.0-OpenSSH_9.6\r\n"], &[]).l7, "SSH");
    assert_eq!(
        tcp_flow(5222, &[b"WA\x02\x00\x00\x00\x10"], &[]).l7,
        "WhatsApp"
    );
    assert_eq!(
        tcp_flow(6881, &[b"\x13BitTorrent protocol\0\0\0\0\0\0\0\0"], &[]).l7,
        "BitTorrent"
    );
    assert_eq!(tcp_flow(179, &[&[0xff; 19]], &[]).l7, "BGP");
    assert_eq!(
        tcp_flow(80, &[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], &[]).l7,
        "HTTP2"
    );
}

#[test]
fn udp_protocols() {
    let mut ntp = vec![0x23];
    ntp.extend_from_slice(&[0; 47]);
    assert_eq!(udp_flow(40000, 123, &ntp).l7, "NTP");
    assert_eq!(udp_flow(5353, 5353, &dns_query("printer.local")).l7, "MDNS");
    assert_eq!(udp_flow(40000, 5355, &dns_query("host")).l7, "LLMNR");
    assert_eq!(
        udp_flow(
            40000,
            1900,
            b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"
        )
        .l7,
        "SSDP"
    );
    assert_eq!(
        udp_flow(40000, 514, b"<34>Oct 11 22:14:15 host su: failed").l7,
        "Syslog"
    );
    assert_eq!(
        udp_flow(40000, 161, b"\x30\x26\x02\x01\x01\x04\x06public\xa0\x19").l7,
        "SNMP"
    );
    assert_eq!(
        udp_flow(40000, 69, b"\x00\x01file.txt\x00octet\x00").l7,
        "TFTP"
    );
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[1; 12]);
    assert_eq!(udp_flow(40000, 3478, &stun).l7, "STUN");
    let mut wg = vec![1, 0, 0, 0];
    wg.extend_from_slice(&[9; 144]);
    assert_eq!(udp_flow(40000, 51820, &wg).l7, "WireGuard");
    let mut quic = vec![0xc3, 0, 0, 0, 1, 8];
    quic.extend_from_slice(&[0xab; 1250]);
    assert_eq!(udp_flow(40000, 443, &quic).l7, "QUIC");
    let mut dhcp = vec![1, 1, 6, 0];
    dhcp.extend_from_slice(&[0; 232]);
    dhcp.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 12, 4, b'h', b'o', b's', b't', 255]);
    let f = udp_flow(68, 67, &dhcp);
    assert_eq!((f.l7, f.server_name.as_deref()), ("DHCP", Some("host")));
    assert_eq!(udp_flow(40000, 443, &[0x17; 40]).l7, "Unknown");
}

#[test]
fn icmp_is_known_by_its_protocol_and_unknown_payloads_stay_unknown() {
    let echo = eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4(IP_A, IP_B, 1, &[8, 0, 0, 0, 0, 1, 0, 1]),
    );
    let f = one_flow(&pcap(1, &[echo]));
    assert_eq!((f.l4, f.l7, f.client_port), ("ICMP", "ICMP", 0));
    assert_eq!(
        tcp_flow(7000, &[b"hello there, nothing to see"], &[]).l7,
        "Unknown"
    );
}

#[test]
fn the_remaining_protocols_each_detected() {
    // SIP over UDP.
    assert_eq!(
        udp_flow(
            5060,
            5060,
            b"REGISTER sip:example.org SIP/2.0\r\nVia: x\r\n\r\n"
        )
        .l7,
        "SIP"
    );
    // DHCPv6 solicit.
    assert_eq!(
        udp_flow(546, 547, &[1, 0xaa, 0xbb, 0xcc, 0, 1, 0, 0]).l7,
        "DHCPV6"
    );
    // NetBIOS datagram service.
    let mut nbdd = vec![0x11, 0x02, 0, 1, 10, 0, 0, 1, 0, 138, 0, 0, 0, 0];
    nbdd.extend_from_slice(&[0x20; 20]);
    assert_eq!(udp_flow(138, 138, &nbdd).l7, "NetBIOS");
    // Dropbox LAN sync discovery.
    assert_eq!(
        udp_flow(17500, 17500, br#"{"host_int": 123, "version": [2, 0]}"#).l7,
        "Dropbox"
    );
    // Spotify LAN discovery.
    assert_eq!(
        udp_flow(57621, 57621, b"SpotUdp0\x01\x02\x03\x04").l7,
        "Spotify"
    );
    // Zoom media on 8801.
    let mut zoom = vec![0x05];
    zoom.extend_from_slice(&[0x10; 40]);
    assert_eq!(udp_flow(50000, 8801, &zoom).l7, "Zoom");
    // Teredo signalling: an IPv6 header (payload length 8) and 8 bytes, to UDP 3544.
    let mut teredo = vec![0x60, 0, 0, 0, 0, 8];
    teredo.extend_from_slice(&[0; 42]);
    assert_eq!(udp_flow(50000, 3544, &teredo).l7, "Teredo");
    // IKEv2 on 500: SPIs, next payload, version 2.0, exchange, flags, message id, length.
    let mut ike = vec![0x11; 8];
    ike.extend_from_slice(&[0; 8]);
    ike.extend_from_slice(&[33, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 28]);
    assert_eq!(udp_flow(500, 500, &ike).l7, "IPSec");
    // OpenVPN hard reset (opcode 7 << 3) on 1194.
    let mut ovpn = vec![0x38];
    ovpn.extend_from_slice(&[0x42; 25]);
    assert_eq!(udp_flow(50000, 1194, &ovpn).l7, "OpenVPN");
    // Google QUIC client hello with its version in clear.
    let mut gquic = vec![0x0d, 1, 2, 3, 4, 5, 6, 7, 8, b'Q', b'0', b'4', b'3', 1];
    gquic.extend_from_slice(&[0; 40]);
    assert_eq!(udp_flow(50000, 443, &gquic).l7, "QUIC");
    // BitTorrent DHT query.
    assert_eq!(
        udp_flow(
            50000,
            6881,
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
        )
        .l7,
        "BitTorrent"
    );
    // DTLS ClientHello record.
    let mut dtls = vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10];
    dtls.extend_from_slice(&[1; 10]);
    assert_eq!(udp_flow(50000, 4433, &dtls).l7, "DTLS");
}

#[test]
fn tcp_greetings_of_the_remaining_protocols() {
    let mut mysql = vec![0, 0, 0, 0, 10];
    mysql.extend_from_slice(b"8.0.36\0");
    mysql.extend_from_slice(&[0x11; 40]);
    let len = mysql.len() - 4;
    mysql[0] = len as u8;
    assert_eq!(tcp_flow(3306, &[], &[&mysql]).l7, "MySQL");
    let rdp = [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 3, 0, 0, 0];
    assert_eq!(tcp_flow(3389, &[&rdp], &[]).l7, "RDP");
    assert_eq!(
        tcp_flow(110, &[b"USER bob\r\n"], &[b"+OK POP3 ready\r\n"]).l7,
        "POP3"
    );
    assert_eq!(
        tcp_flow(143, &[b"a1 CAPABILITY\r\n"], &[b"* OK IMAP4rev1 ready\r\n"]).l7,
        "IMAP"
    );
    assert_eq!(
        tcp_flow(21, &[b"USER anonymous\r\n"], &[b"220 FTP server ready\r\n"]).l7,
        "FTP_CONTROL"
    );
    let connect = tcp_flow(
        8080,
        &[b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"],
        &[],
    );
    assert_eq!(
        (connect.l7, connect.server_name.as_deref()),
        ("HTTP_Connect", Some("example.org"))
    );
}

#[test]
fn ftp_data_connections_are_known_from_their_control_connection() {
    let control = |from_client: bool, line: &[u8]| {
        if from_client {
            eth_tcp(true, 50000, 21, PSH_ACK, line)
        } else {
            eth_tcp(false, 21, 50000, PSH_ACK, line)
        }
    };
    let session = |announce: Vec<u8>, data: [Vec<u8>; 2]| {
        let mut p = vec![
            eth_tcp(true, 50000, 21, SYN, &[]),
            eth_tcp(false, 21, 50000, SYN | ACK, &[]),
            control(false, b"220 (vsFTPd 3.0.3)\r\n"),
            control(true, b"USER anonymous\r\n"),
            control(false, b"230 Login successful.\r\n"),
            announce,
        ];
        p.extend(data);
        let (flows, r) = flows(&pcap(1, &p));
        r.unwrap();
        flows
    };
    // Passive: the server (10.0.0.5) listens on 100*256+85 = 25685.
    let passive = session(
        control(false, b"227 Entering Passive Mode (10,0,0,5,100,85).\r\n"),
        [
            eth_tcp(true, 50001, 25685, SYN, &[]),
            eth_tcp(
                false,
                25685,
                50001,
                PSH_ACK,
                b"-rw-r--r-- 1 0 0 1073741824 big\r\n",
            ),
        ],
    );
    let data = passive.iter().find(|f| f.server_port == 25685).unwrap();
    assert_eq!(data.l7, "FTP_DATA");
    assert_eq!(
        passive.iter().find(|f| f.server_port == 21).unwrap().l7,
        "FTP_CONTROL"
    );
    // Active: the client (192.168.1.20) listens on 195*256+80 = 50000+, the server connects.
    let active = session(
        control(true, b"PORT 192,168,1,20,195,81\r\n"),
        [
            eth_tcp(false, 20, 50001, SYN, &[]),
            eth_tcp(true, 50001, 20, SYN | ACK, &[]),
        ],
    );
    assert_eq!(
        active.iter().find(|f| f.client_port == 20).unwrap().l7,
        "FTP_DATA"
    );
    // The same connection without an announcement is not FTP_DATA.
    let unannounced = session(
        control(false, b"250 OK\r\n"),
        [
            eth_tcp(true, 50001, 25685, SYN, &[]),
            eth_tcp(
                false,
                25685,
                50001,
                PSH_ACK,
                b"-rw-r--r-- 1 0 0 1073741824 big\r\n",
            ),
        ],
    );
    assert_eq!(
        unannounced
            .iter()
            .find(|f| f.server_port == 25685)
            .unwrap()
            .l7,
        "Unknown"
    );
}
