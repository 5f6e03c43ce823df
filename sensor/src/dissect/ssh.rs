//! SSH: the identification string.

use super::{L7, PacketView, Verdict};

/// Detects `SSH-x.y-...` banners from either side.
pub fn detect(v: &PacketView<'_>) -> Verdict {
    if v.tcp() && (v.payload.starts_with(b"SSH-2.0-") || v.payload.starts_with(b"SSH-1.")) {
        Verdict::Match(L7::SSH, None)
    } else {
        Verdict::No
    }
}
