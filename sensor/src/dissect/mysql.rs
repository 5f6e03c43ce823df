//! MySQL: the server greeting (protocol 10, a printable version string).

use super::{L7, PacketView, Verdict};

/// Detects mysql (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.tcp() || v.from_client || p.len() < 40 || p[3] != 0 || p[4] != 10 {
        return Verdict::No;
    }
    let len = usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16;
    let version = &p[5..p.len().min(100)];
    let ver_end = version.iter().position(|&b| b == 0).unwrap_or(0);
    if len + 4 == p.len()
        && ver_end > 2
        && version[..ver_end].iter().all(|c| c.is_ascii_graphic())
        && version[0].is_ascii_digit()
    {
        Verdict::Match(L7::MySQL, None)
    } else {
        Verdict::No
    }
}
