//! Protocols recognised by the structure of one message: a magic number, a length field that
//! equals the message's, fields within their defined ranges. One table, one small check each;
//! `ports` limits a check that is not evidence enough alone (a few bytes' worth) to the
//! protocol's registered ports. Stateful protocols have a module of their own.

mod checks;
mod industrial;
#[cfg(test)]
mod tests;

use super::{L7, PacketView, Verdict};
use checks::*;
use industrial::*;

/// Where a signature applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum On {
    Tcp,
    Udp,
    Both,
}

/// One protocol's signature.
struct Signature {
    l7: L7,
    on: On,
    /// Empty: any port (the structure is evidence enough); otherwise one side must use one.
    ports: &'static [u16],
    /// Whether `payload` (from the client when `from_client`) is this protocol.
    check: fn(payload: &[u8], from_client: bool) -> bool,
}

const SIGNATURES: &[Signature] = &[
    Signature {
        l7: L7::MsSQL_TDS,
        on: On::Tcp,
        ports: &[1433, 1434],
        check: tds,
    },
    Signature {
        l7: L7::PostgreSQL,
        on: On::Tcp,
        ports: &[],
        check: postgres,
    },
    Signature {
        l7: L7::MongoDB,
        on: On::Tcp,
        ports: &[],
        check: mongodb,
    },
    Signature {
        l7: L7::MQTT,
        on: On::Tcp,
        ports: &[],
        check: mqtt,
    },
    Signature {
        l7: L7::RTSP,
        on: On::Tcp,
        ports: &[],
        check: rtsp,
    },
    Signature {
        l7: L7::VNC,
        on: On::Tcp,
        ports: &[],
        check: vnc,
    },
    Signature {
        l7: L7::Telnet,
        on: On::Tcp,
        ports: &[23],
        check: telnet,
    },
    Signature {
        l7: L7::Munin,
        on: On::Tcp,
        ports: &[],
        check: munin,
    },
    Signature {
        l7: L7::AJP,
        on: On::Tcp,
        ports: &[8009],
        check: ajp,
    },
    Signature {
        l7: L7::SOCKS,
        on: On::Tcp,
        ports: &[1080, 1081],
        check: socks,
    },
    Signature {
        l7: L7::DNP3,
        on: On::Both,
        ports: &[],
        check: dnp3,
    },
    Signature {
        l7: L7::IEC60870,
        on: On::Tcp,
        ports: &[],
        check: iec104,
    },
    Signature {
        l7: L7::Modbus,
        on: On::Tcp,
        ports: &[502],
        check: modbus,
    },
    Signature {
        l7: L7::S7Comm,
        on: On::Tcp,
        ports: &[102],
        check: s7comm,
    },
    Signature {
        l7: L7::ISO9506_1_MMS,
        on: On::Tcp,
        ports: &[102],
        check: mms,
    },
    Signature {
        l7: L7::RESP,
        on: On::Tcp,
        ports: &[],
        check: resp,
    },
    Signature {
        l7: L7::EthernetIP,
        on: On::Both,
        ports: &[44818, 2222],
        check: enip,
    },
    Signature {
        l7: L7::BACnet,
        on: On::Udp,
        ports: &[],
        check: bacnet,
    },
    Signature {
        l7: L7::HART_IP,
        on: On::Both,
        ports: &[5094],
        check: hart_ip,
    },
    Signature {
        l7: L7::IEEE_C37118,
        on: On::Both,
        ports: &[4712, 4713],
        check: c37118,
    },
    Signature {
        l7: L7::COAP,
        on: On::Udp,
        ports: &[5683, 5684],
        check: coap,
    },
    Signature {
        l7: L7::HSRP,
        on: On::Udp,
        ports: &[1985, 2029],
        check: hsrp,
    },
    Signature {
        l7: L7::BFD,
        on: On::Udp,
        ports: &[3784, 3785, 4784],
        check: bfd,
    },
    Signature {
        l7: L7::XDMCP,
        on: On::Udp,
        ports: &[177],
        check: xdmcp,
    },
    Signature {
        l7: L7::NAT_PMP,
        on: On::Udp,
        ports: &[5351],
        check: nat_pmp,
    },
    Signature {
        l7: L7::Roughtime,
        on: On::Both,
        ports: &[],
        check: roughtime,
    },
    Signature {
        l7: L7::TuyaLP,
        on: On::Both,
        ports: &[],
        check: tuya,
    },
    Signature {
        l7: L7::RakNet,
        on: On::Udp,
        ports: &[],
        check: raknet,
    },
    Signature {
        l7: L7::BJNP,
        on: On::Udp,
        ports: &[8611, 8612],
        check: bjnp,
    },
    Signature {
        l7: L7::Syncthing,
        on: On::Udp,
        ports: &[21027],
        check: syncthing,
    },
    Signature {
        l7: L7::Collectd,
        on: On::Udp,
        ports: &[25826],
        check: collectd,
    },
    Signature {
        l7: L7::WSD,
        on: On::Udp,
        ports: &[3702],
        check: wsd,
    },
    Signature {
        l7: L7::TeamViewer,
        on: On::Both,
        ports: &[5938],
        check: teamviewer,
    },
    Signature {
        l7: L7::SD_RTN,
        on: On::Udp,
        ports: &[],
        check: sd_rtn,
    },
    Signature {
        l7: L7::AliCloud,
        on: On::Tcp,
        ports: &[],
        check: alicloud,
    },
    Signature {
        l7: L7::AVAST,
        on: On::Tcp,
        ports: &[],
        check: avast,
    },
    Signature {
        l7: L7::Controller_Area_Network,
        on: On::Udp,
        ports: &[],
        check: can,
    },
    Signature {
        l7: L7::KCP,
        on: On::Udp,
        ports: &[],
        check: kcp,
    },
    Signature {
        l7: L7::ZUG,
        on: On::Udp,
        ports: &[],
        check: zug,
    },
    Signature {
        l7: L7::GenshinImpact,
        on: On::Udp,
        ports: &[],
        check: genshin,
    },
    Signature {
        l7: L7::Viber,
        on: On::Tcp,
        ports: &[4244, 5242, 5243, 7985],
        check: viber,
    },
    Signature {
        l7: L7::CAPWAP,
        on: On::Udp,
        ports: &[5246, 5247],
        check: capwap,
    },
    Signature {
        l7: L7::LISP,
        on: On::Udp,
        ports: &[4342],
        check: lisp,
    },
    Signature {
        l7: L7::RX,
        on: On::Udp,
        ports: &[7000, 7001, 7002, 7003, 7004, 7005, 7006, 7007, 7008, 7009],
        check: rx,
    },
    Signature {
        l7: L7::Kerberos,
        on: On::Both,
        ports: &[],
        check: kerberos,
    },
    Signature {
        l7: L7::LDAP,
        on: On::Both,
        ports: &[],
        check: ldap,
    },
    Signature {
        l7: L7::SMBv23,
        on: On::Tcp,
        ports: &[],
        check: smb2,
    },
    Signature {
        l7: L7::NetBIOS,
        on: On::Tcp,
        ports: &[],
        check: smb1,
    },
    Signature {
        l7: L7::DCERPC,
        on: On::Tcp,
        ports: &[],
        check: dcerpc,
    },
    Signature {
        l7: L7::RTCP,
        on: On::Udp,
        ports: &[],
        check: rtcp,
    },
    Signature {
        l7: L7::TeamSpeak,
        on: On::Udp,
        ports: &[],
        check: teamspeak,
    },
    Signature {
        l7: L7::SOMEIP,
        on: On::Both,
        ports: &[],
        check: someip,
    },
    Signature {
        l7: L7::TLS,
        on: On::Tcp,
        ports: &[],
        check: tls_records,
    },
    Signature {
        l7: L7::DTLS,
        on: On::Udp,
        ports: &[],
        check: dtls_records,
    },
];

/// Detects the protocols of the table (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let on = if v.tcp() {
        On::Tcp
    } else if v.udp() {
        On::Udp
    } else {
        return Verdict::No;
    };
    for s in SIGNATURES {
        if (s.on == on || s.on == On::Both)
            && (s.ports.is_empty() || s.ports.iter().any(|&p| v.port(p)))
            && (s.check)(v.payload, v.from_client)
        {
            return Verdict::Match(s.l7, None);
        }
    }
    Verdict::No
}
