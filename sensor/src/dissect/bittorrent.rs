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
    // uTP: a connection's SYN (type 4, version 1: 0x41), no extension or the selective-ack
    // one, no timestamp difference yet (nothing received), a window, exactly the header — and
    // only between ephemeral ports. Later packets of a uTP stream alone are not evidence
    // enough: too many UDP protocols start alike.
    if p.len() == 20
        && p[0] == 0x41
        && p[1] == 0
        && p[8..12] == [0, 0, 0, 0]
        && v.client_port > 1024
        && v.server_port > 1024
        && v.c2s_packets + v.s2c_packets <= 1
    {
        return Verdict::Match(L7::BitTorrent, None);
    }
    Verdict::No
}
