use super::*;
use crate::dissect::tests::{tcp, udp};

/// One message each signature must accept, with the ports and direction it comes on.
fn examples() -> Vec<(L7, bool, u16, Vec<u8>)> {
    let mut tds = vec![0x12, 0x01, 0, 0, 0, 0, 0x01, 0];
    tds.extend_from_slice(&[0, 0, 0x15, 0, 6, 0xff]);
    tds[3] = tds.len() as u8;
    let mut mqtt = vec![0x10, 0];
    mqtt.extend_from_slice(b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x03abc");
    mqtt[1] = (mqtt.len() - 2) as u8;
    let mut mongo = vec![0u8; 16];
    mongo.extend_from_slice(&[0; 10]);
    let l = mongo.len() as u32;
    mongo[..4].copy_from_slice(&l.to_le_bytes());
    mongo[4..8].copy_from_slice(&7u32.to_le_bytes());
    mongo[12..16].copy_from_slice(&2013u32.to_le_bytes());
    let mut pg = vec![0, 0, 0, 0, 0, 3, 0, 0];
    pg.extend_from_slice(b"user\0alice\0\0");
    pg[3] = pg.len() as u8;
    let mut enip = vec![0x65, 0, 4, 0];
    enip.extend_from_slice(&[0; 20]);
    enip.extend_from_slice(&[1, 0, 0, 0]);
    let mut raknet = vec![0x01];
    raknet.extend_from_slice(&[0; 8]);
    raknet.extend_from_slice(&[
        0x00, 0xff, 0xff, 0x00, 0xfe, 0xfe, 0xfe, 0xfe, 0xfd, 0xfd, 0xfd, 0xfd, 0x12, 0x34, 0x56,
        0x78,
    ]);
    let mut tuya = vec![0, 0, 0x55, 0xaa];
    tuya.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0x13, 0, 0, 0, 0x0c]);
    tuya.extend_from_slice(&[9; 8]);
    tuya.extend_from_slice(&[0, 0, 0xaa, 0x55]);
    let mut c37 = vec![0xaa, 0x41, 0, 18, 0, 1];
    c37.extend_from_slice(&[0; 12]);
    vec![
        (L7::MsSQL_TDS, true, 1433, tds),
        (L7::PostgreSQL, true, 5432, pg),
        (L7::MongoDB, true, 27017, mongo),
        (L7::MQTT, true, 1883, mqtt),
        (L7::RTSP, true, 554, b"OPTIONS rtsp://cam/stream RTSP/1.0\r\nCSeq: 1\r\n\r\n".to_vec()),
        (L7::VNC, false, 5900, b"RFB 003.008\n".to_vec()),
        (L7::Telnet, false, 23, vec![0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20]),
        (L7::Munin, false, 4949, b"# munin node at host\n".to_vec()),
        (L7::AJP, true, 8009, vec![0x12, 0x34, 0, 2, 0x02, 0x02]),
        (L7::SOCKS, true, 1080, vec![5, 2, 0, 2]),
        (L7::DNP3, true, 20000, vec![0x05, 0x64, 0x05, 0xc9, 1, 0, 0, 4, 0xe9, 0x21]),
        (L7::IEC60870, true, 2404, vec![0x68, 4, 7, 0, 0, 0]),
        (L7::Modbus, true, 502, vec![0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10]),
        (
                L7::S7Comm,
                true,
                102,
                vec![3, 0, 0, 17, 2, 0xf0, 0x80, 0x32, 1, 0, 0, 0, 1, 0, 0, 0, 0],
            ),
            (
                L7::ISO9506_1_MMS,
                true,
                102,
                vec![3, 0, 0, 12, 2, 0xf0, 0x80, 0x0d, 0xb2, 0x05, 0x06, 0x13],
            ),
            (L7::RESP, true, 6379, b"*1\r\n$4\r\nPING\r\n".to_vec()),
            (L7::SD_RTN, true, 8130, {
                let mut p = vec![0, 0x5a, 0x38, 0x4c, 0, 0, 0x21, 0, 0, 0, 0, 0, 2];
                p.extend_from_slice(b"SNI\0\x04\0edge");
                p.extend_from_slice(b"PDMD\0\0");
                p
            }),
            (L7::CAPWAP, true, 5246, {
                let mut p = vec![0, 0x20, 0x02, 0x10, 0, 0, 0, 0];
                p.extend_from_slice(&[0; 16]);
                p
            }),
            (L7::LISP, true, 4342, {
                let mut p = vec![0x32, 0, 1, 1];
                p.extend_from_slice(&[0; 12]);
                p
            }),
            (L7::RX, true, 7002, {
                let mut p = vec![0; 20];
                p.extend_from_slice(&[1, 5, 0, 0, 0, 0, 0, 0x49]);
                p
            }),
            (L7::TLS, false, 443, {
                let mut p = vec![23, 3, 3, 0, 8];
                p.extend_from_slice(&[0x42; 8]);
                p.extend_from_slice(&[23, 3, 3, 0x40, 0]); // a second record, cut by the segment
                p.extend_from_slice(&[0x43; 100]);
                p
            }),
            (L7::DTLS, true, 443, {
                let mut p = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7, 0, 4];
                p.extend_from_slice(&[0x42; 4]);
                p
            }),
            (L7::Kerberos, true, 88, {
                // AS-REQ over UDP: [APPLICATION 10] SEQUENCE { [1] pvno 5, ... }
                vec![0x6a, 0x0b, 0x30, 0x09, 0xa1, 0x03, 0x02, 0x01, 0x05, 0xa2, 0x02, 0x02, 0x0a]
            }),
            (L7::LDAP, true, 389, {
                // bindRequest: SEQUENCE { id 1, [APPLICATION 0] { version 3, name "", simple "" } }
                vec![0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00]
            }),
            (L7::SMBv23, true, 445, {
                let mut p = vec![0, 0, 0, 68, 0xfe, b'S', b'M', b'B'];
                p.extend_from_slice(&[0; 64]);
                p
            }),
            (L7::NetBIOS, true, 139, {
                let mut p = vec![0, 0, 0, 36, 0xff, b'S', b'M', b'B', 0x72];
                p.extend_from_slice(&[0; 31]);
                p
            }),
            (L7::DCERPC, true, 135, {
                let mut p = vec![5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0];
                p.extend_from_slice(&[0; 56]);
                p
            }),
            (L7::RTCP, true, 5005, {
                // A receiver report with no blocks, then an SDES with one chunk.
                let mut p = vec![0x80, 201, 0, 1, 1, 2, 3, 4];
                p.extend_from_slice(&[0x81, 202, 0, 2, 1, 2, 3, 4, 1, 1, b'x', 0]);
                p
            }),
            (L7::Viber, true, 4244, vec![8, 0, 0x0a, 0, 1, 2, 3, 4]),
            (L7::Roughtime, true, 2002, {
                // Google's form: two tags, NONC and PAD, one offset.
                let mut p = vec![2, 0, 0, 0, 4, 0, 0, 0];
                p.extend_from_slice(b"NONCPAD\xff");
                p.extend_from_slice(&[7; 12]);
                p
            }),
            (L7::AliCloud, true, 8999, vec![0xce, 0xfa, 0xbe, 0xba, 0x80, 0, 0, 0]),
            (L7::AVAST, true, 80, b"NOSA\0\x0a\x01\x01\0\0".to_vec()),
            (L7::Controller_Area_Network, true, 11898, b"ISO11898\x01\x02".to_vec()),
            (L7::KCP, true, 8000, {
                let mut p = vec![10, 0, 0, 0, 0x51, 0, 0x80, 0];
                p.extend_from_slice(&[0; 12]);
                p.extend_from_slice(&4u32.to_le_bytes());
                p.extend_from_slice(b"data");
                p
            }),
            (L7::ZUG, true, 19000, vec![0, 8, b'U', b'G', 0x10, 1, 2, 3]),
            (L7::GenshinImpact, true, 22101, {
                let mut p = vec![0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
                p.extend_from_slice(&1_234_567_890u32.to_be_bytes());
                p.extend_from_slice(&[0xff; 4]);
                p
            }),
        (L7::EthernetIP, true, 44818, enip),
        (L7::BACnet, true, 47808, vec![0x81, 0x0b, 0, 12, 1, 0x20, 0xff, 0xff, 0, 0xff, 0x10, 8]),
        (L7::HART_IP, true, 5094, vec![1, 0, 0, 0, 0, 1, 0, 13, 0, 0, 0, 0, 0]),
        (L7::IEEE_C37118, true, 4712, c37),
        (L7::COAP, true, 5683, vec![0x40, 0x01, 0x12, 0x34, 0xb3, b'f', b'o', b'o']),
        (L7::HSRP, true, 1985, {
            let mut h = vec![0, 0, 16, 3, 10, 100, 1, 0];
            h.extend_from_slice(b"cisco\0\0\0");
            h.extend_from_slice(&[10, 0, 0, 1]);
            h
        }),
        (L7::BFD, true, 3784, {
            let mut b = vec![0x20, 0x40, 3, 24];
            b.extend_from_slice(&[0; 20]);
            b
        }),
        (L7::XDMCP, true, 177, vec![0, 1, 0, 2, 0, 1, 0]),
        (L7::NAT_PMP, true, 5351, vec![0, 0]),
        (L7::Roughtime, true, 2002, b"ROUGHTIM\x04\0\0\0abcd".to_vec()),
        (L7::TuyaLP, true, 6667, tuya),
        (L7::RakNet, true, 19132, raknet),
        (L7::BJNP, true, 8611, b"BJNP\x01\x01\0\0\0\0\0\x01\0\0\0\0".to_vec()),
        (L7::Syncthing, true, 21027, vec![0x2e, 0xa7, 0xd9, 0x0b, 0x0a, 0x20]),
        (L7::Collectd, true, 25826, {
            let mut c = vec![0, 0, 0, 9];
            c.extend_from_slice(b"host\0");
            c.extend_from_slice(&[0, 8, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1]);
            c
        }),
        (L7::WSD, true, 3702, b"<?xml version=\"1.0\"?><s:Envelope xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\">".to_vec()),
        (L7::TeamViewer, true, 5938, vec![0x17, 0x24, 0x0a, 0, 0, 0]),
        (L7::TeamSpeak, true, 9987, {
            let mut p = b"TS3INIT1\x00\x65\x00\x00\x88".to_vec();
            p.extend_from_slice(&[0x0d, 0xd0, 0x57, 0x66, 0, 0x5f, 0x59, 0x16]);
            p
        }),
        (L7::SOMEIP, true, 30490, {
            // A service-discovery notification: message id, length 16, request id, protocol
            // version 1, interface version 1, notification, E_OK, then 8 bytes of entries.
            let mut p = vec![0xff, 0xff, 0x81, 0, 0, 0, 0, 16, 0, 0, 0, 1, 1, 1, 2, 0];
            p.extend_from_slice(&[0xc0, 0, 0, 0, 0, 0, 0, 0]);
            p
        }),
    ]
}

fn view(l7: L7, from_client: bool, port: u16, p: &[u8]) -> PacketView<'_> {
    let sig = SIGNATURES
        .iter()
        .find(|s| s.l7 == l7)
        .expect("in the table");
    let mut v = if sig.on == On::Udp {
        udp(p, 40000, port)
    } else {
        tcp(p, 40000, port)
    };
    v.from_client = from_client;
    v
}

#[test]
fn every_signature_accepts_its_example_and_only_its_own() {
    let all = examples();
    for s in SIGNATURES {
        assert!(all.iter().any(|e| e.0 == s.l7), "{:?} has no example", s.l7);
    }
    for (l7, from_client, port, p) in &all {
        assert_eq!(
            detect(&view(*l7, *from_client, *port, p)),
            Verdict::Match(*l7, None),
            "{l7:?}"
        );
    }
}

#[test]
fn a_changed_length_or_magic_is_refused() {
    for (l7, from_client, port, mut p) in examples() {
        if matches!(
            l7,
            L7::Telnet
                | L7::Controller_Area_Network
                | L7::CAPWAP
                | L7::TLS
                | L7::DCERPC
                | L7::SMBv23
                | L7::NetBIOS
                | L7::Kerberos
                | L7::LISP
                | L7::RX
                | L7::RESP
                | L7::TeamViewer
                | L7::Roughtime
                | L7::BJNP
                | L7::RakNet
                | L7::Syncthing
                | L7::Munin
                | L7::WSD
                | L7::TuyaLP
                | L7::TeamSpeak
                | L7::VNC
                | L7::RTSP
                | L7::NAT_PMP
                | L7::SOCKS
                | L7::DNP3
                | L7::COAP
        ) {
            continue; // recognised by a magic, not a length: see below
        }
        p.push(0);
        assert_ne!(
            detect(&view(l7, from_client, port, &p)),
            Verdict::Match(l7, None),
            "{l7:?} with a byte more"
        );
    }
    for (l7, from_client, port, mut p) in examples() {
        // Modbus begins with a transaction id (anything): its protocol id is the key.
        // KCP's conversation id likewise: its command is.
        let at = match l7 {
            L7::Modbus => 2,
            L7::KCP => 4,
            L7::RX => 20,
            // SOME/IP's message id is anything too: its protocol version is the key.
            L7::SOMEIP => 12,
            _ => 0,
        };
        p[at] ^= 0x5a;
        assert_ne!(
            detect(&view(l7, from_client, port, &p)),
            Verdict::Match(l7, None),
            "{l7:?} with another first byte"
        );
    }
}

#[test]
fn port_bound_signatures_need_their_port() {
    for (l7, from_client, _, p) in examples() {
        let sig = SIGNATURES.iter().find(|s| s.l7 == l7).unwrap();
        if !sig.ports.is_empty() {
            assert_ne!(
                detect(&view(l7, from_client, 40001, &p)),
                Verdict::Match(l7, None),
                "{l7:?} off its port"
            );
        }
    }
}

#[test]
fn an_mqtt_publish_met_mid_session_is_mqtt_from_either_side() {
    // PUBLISH QoS 1, topic "Bus17Cmd", packet id 5, a JSON payload.
    let mut publish = vec![0x32, 0];
    publish.extend_from_slice(b"\x00\x08Bus17Cmd\x00\x05{\"messageType\":\"UPDATE\"}");
    publish[1] = (publish.len() - 2) as u8;
    for from_client in [true, false] {
        let mut v = crate::dissect::tests::tcp(&publish, 53522, 17501);
        v.from_client = from_client;
        assert_eq!(detect(&v), Verdict::Match(L7::MQTT, None));
    }
    // A wildcard topic (a filter, never published to), a length one short, QoS 3, packet id 0.
    let mut wildcard = publish.clone();
    wildcard[5] = b'#';
    let mut short = publish.clone();
    short[1] -= 1;
    let mut qos3 = publish.clone();
    qos3[0] = 0x36;
    let mut no_id = publish.clone();
    no_id[13] = 0;
    for p in [wildcard, short, qos3, no_id] {
        assert_ne!(
            detect(&crate::dissect::tests::tcp(&p, 53522, 17501)),
            Verdict::Match(L7::MQTT, None),
            "{p:?}"
        );
    }
}
