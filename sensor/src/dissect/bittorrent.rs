//! BitTorrent: the TCP handshake, DHT (bencoded KRPC over UDP) and uTP.

use super::{L7, PacketView, Verdict};

/// Detects BitTorrent.
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if p.len() >= 20 && p[0] == 19 && &p[1..20] == b"BitTorrent protocol" {
        return Verdict::Match(L7::BitTorrent, None);
    }
    if !v.udp() {
        return Verdict::No;
    }
    // DHT: a bencoded dictionary with a transaction and a query/response/error key.
    if p.starts_with(b"d1:")
        && (p.windows(4).any(|w| w == b"1:y1") || p.windows(6).any(|w| w == b"d2:id20"))
    {
        return Verdict::Match(L7::BitTorrent, None);
    }
    if p.starts_with(b"d1:ad2:id20:") || p.starts_with(b"d1:rd2:id20:") {
        return Verdict::Match(L7::BitTorrent, None);
    }
    // uTP: version 1 in the low nibble, type 0..4 in the high nibble, a known extension, 20-byte
    // header; the SYN (type 4) of a connection starts it.
    // Only between ephemeral ports: well-known services' payloads can look alike.
    if p.len() >= 20
        && p[0] & 0x0f == 1
        && p[0] >> 4 <= 4
        && p[1] <= 2
        && v.client_port > 1024
        && v.server_port > 1024
    {
        let st_syn = p[0] >> 4 == 4;
        let wnd = u32::from_be_bytes([p[12], p[13], p[14], p[15]]);
        if (st_syn && p.len() == 20)
            || (wnd > 0 && p[1] <= 2 && (p.len() == 20 || p.len() >= 26))
                && !v.port(53)
                && !v.port(443)
        {
            return Verdict::Match(L7::BitTorrent, None);
        }
    }
    Verdict::No
}
