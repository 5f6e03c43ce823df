//! FTP data channels: the endpoints a control connection announces for its data connections
//! (RFC 959 `PORT` / `227` passive reply, RFC 2428 `EPRT` / `229` extended passive reply), so
//! the flow that then opens to one of them is FTP_DATA.

use std::net::{IpAddr, Ipv4Addr};

/// Endpoints one control-channel packet announces: the listener's address (as announced, and
/// as seen on the control connection when they differ, for servers behind NAT) and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannel {
    /// The address announced in the command or reply.
    pub announced: IpAddr,
    /// The address of the announcing side on the control connection.
    pub seen: IpAddr,
    /// The port the data connection will go to.
    pub port: u16,
}

/// The data channel announced by one FTP control packet, if any. `from_client` packets can
/// carry `PORT` / `EPRT` (active mode: the client listens); server packets `227` / `229`
/// replies (passive mode: the server listens).
pub fn data_channel(
    payload: &[u8],
    from_client: bool,
    client_ip: IpAddr,
    server_ip: IpAddr,
) -> Option<DataChannel> {
    let line = payload.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let (seen, upper) = if from_client {
        (client_ip, line.get(..5)?.to_ascii_uppercase())
    } else {
        (server_ip, line.get(..4)?.to_string())
    };
    let (announced, port) = match upper.as_str() {
        "PORT " => six_numbers(&line[5..])?,
        "EPRT " => extended(&line[5..], seen)?,
        "227 " => {
            // The numbers follow the text; "(h1,h2,h3,h4,p1,p2)" by convention, not always.
            let start = line[4..].find(|c: char| c.is_ascii_digit())? + 4;
            six_numbers(&line[start..])?
        }
        "229 " => extended(&line[line.find('(')? + 1..], seen)?,
        _ => return None,
    };
    // An unspecified address means "the address you are talking to".
    let announced = if announced.is_unspecified() {
        seen
    } else {
        announced
    };
    (port != 0).then_some(DataChannel {
        announced,
        seen,
        port,
    })
}

/// `h1,h2,h3,h4,p1,p2` (anything after the sixth number is ignored).
fn six_numbers(s: &str) -> Option<(IpAddr, u16)> {
    let mut n = [0u8; 6];
    let mut parts = s.trim_start().splitn(6, ',');
    for slot in &mut n {
        let part = parts.next()?.trim();
        let digits = part.len() - part.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        *slot = part.get(..digits)?.parse().ok()?;
    }
    let ip = IpAddr::V4(Ipv4Addr::new(n[0], n[1], n[2], n[3]));
    Some((ip, u16::from(n[4]) << 8 | u16::from(n[5])))
}

/// `<d>proto<d>addr<d>port<d>` with any delimiter; the address may be empty (229 replies).
fn extended(s: &str, seen: IpAddr) -> Option<(IpAddr, u16)> {
    let d = s.chars().next()?;
    let mut fields = s[d.len_utf8()..].split(d);
    let _proto = fields.next()?;
    let addr = fields.next()?;
    let port = fields.next()?.parse().ok()?;
    let ip = if addr.is_empty() {
        seen
    } else {
        addr.parse().ok()?
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn announcements_in_each_form() {
        let (c, s) = (ip("192.168.1.212"), ip("90.130.70.73"));
        let cases: &[(&[u8], bool, &str, u16)] = &[
            (
                b"227 Entering Passive Mode (90,130,70,73,100,85).\r\n",
                false,
                "90.130.70.73",
                25685,
            ),
            (b"227 =10,0,0,5,4,1\r\n", false, "10.0.0.5", 1025),
            (
                b"227 Entering Passive Mode (0,0,0,0,4,1)\r\n",
                false,
                "90.130.70.73",
                1025,
            ),
            (
                b"229 Entering Extended Passive Mode (|||6446|)\r\n",
                false,
                "90.130.70.73",
                6446,
            ),
            (
                b"PORT 192,168,1,212,195,80\r\n",
                true,
                "192.168.1.212",
                50000,
            ),
            (
                b"port 192,168,1,212,195,80\r\n",
                true,
                "192.168.1.212",
                50000,
            ),
            (b"EPRT |2|2001:db8::1|5282|\r\n", true, "2001:db8::1", 5282),
            (
                b"EPRT !1!192.168.1.212!5282!\r\n",
                true,
                "192.168.1.212",
                5282,
            ),
        ];
        for &(line, from_client, announced, port) in cases {
            let d = data_channel(line, from_client, c, s).unwrap_or_else(|| panic!("{line:?}"));
            assert_eq!((d.announced, d.port), (ip(announced), port), "{line:?}");
            assert_eq!(d.seen, if from_client { c } else { s });
        }
    }

    #[test]
    fn other_lines_and_garbage_announce_nothing() {
        let (c, s) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for line in [
            &b"230 Login successful.\r\n"[..],
            b"227 Entering Passive Mode (1,2,3)\r\n",
            b"227 Entering Passive Mode (1,2,3,4,300,1)\r\n",
            b"229 Entering Extended Passive Mode (|||0|)\r\n",
            b"229 (|||notaport|)\r\n",
            b"PORT\r\n",
            b"EPRT |1|not-an-ip|21|\r\n",
            b"\xff\xfe\xfd\xfc\xfb",
            b"",
        ] {
            assert_eq!(data_channel(line, true, c, s), None, "{line:?}");
            assert_eq!(data_channel(line, false, c, s), None, "{line:?}");
        }
    }
}
