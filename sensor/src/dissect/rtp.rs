//! RTP (RFC 3550) over UDP. One header is little evidence — version 2 is two bits, a media
//! payload type a few more — so the first packet that has one only asks for the next client
//! packet (`NeedMoreOf` its 12-byte fixed header: `inspect` joins that header and the next
//! payload), and the stream is RTP when a header of the same stream follows it: the same SSRC (32 bits), a sequence number a little higher
//! and a timestamp not earlier. Well-known ports are left out: media uses dynamic ones.

use super::{L7, PacketView, Verdict, u16_at, u32_at};

/// The fixed header: all of the first packet the next inspection needs (sequence, timestamp,
/// SSRC); a later header is looked for after it.
const FIXED_HEADER: usize = 12;

/// How far the sequence number may move between two packets of the stream we see (losses,
/// packets the capture missed).
const MAX_SEQ_STEP: u16 = 16;

/// The stream's fields of an RTP header at the start of `p`: (sequence, timestamp, SSRC).
fn header(p: &[u8]) -> Option<(u16, u32, u32)> {
    let (first, second) = (*p.first()?, *p.get(1)?);
    let csrcs = usize::from(first & 0x0f);
    let payload_type = second & 0x7f;
    // Static audio/video types (RTCP's 200-204 read as 72-76 with the marker) or dynamic ones.
    let media = payload_type <= 34 || (96..=127).contains(&payload_type);
    if first >> 6 != 2 || !media || p.len() < 12 + 4 * csrcs {
        return None;
    }
    let ssrc = u32_at(p, 8)?;
    (ssrc != 0).then_some((u16_at(p, 2)?, u32_at(p, 4)?, ssrc))
}

/// Detects RTP (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    if !v.udp() || v.client_port < 1024 || v.server_port < 1024 {
        return Verdict::No;
    }
    let p = v.payload;
    let Some((seq, ts, ssrc)) = header(p) else {
        return Verdict::No;
    };
    // A later packet of the same stream, joined after this one: its SSRC eight bytes into its
    // header, which starts after this packet's header at least.
    let same_stream = (FIXED_HEADER..p.len().saturating_sub(11)).any(|at| {
        p[at + 8..at + 12] == ssrc.to_be_bytes()
            && header(&p[at..]).is_some_and(|(s, t, _)| {
                s.wrapping_sub(seq).wrapping_sub(1) < MAX_SEQ_STEP && t.wrapping_sub(ts) < 1 << 31
            })
    });
    if same_stream {
        Verdict::Match(L7::RTP, None)
    } else if v.from_client {
        Verdict::NeedMoreOf(FIXED_HEADER)
    } else {
        Verdict::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::tests::udp;

    fn packet(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]); // 20 ms of G.711
        p
    }

    #[test]
    fn two_packets_of_one_stream_are_rtp_and_one_is_not_yet() {
        let first = packet(7000, 160_000, 0x1234_5678);
        assert_eq!(
            detect(&udp(&first, 30000, 40000)),
            Verdict::NeedMoreOf(FIXED_HEADER)
        );
        let joined = [first.clone(), packet(7001, 160_160, 0x1234_5678)].concat();
        assert_eq!(
            detect(&udp(&joined, 30000, 40000)),
            Verdict::Match(L7::RTP, None)
        );
        // Two packets losing a few in between, across the sequence number's wrap.
        let wrap = [packet(65534, 1, 9), packet(2, 961, 9)].concat();
        assert_eq!(
            detect(&udp(&wrap, 30000, 40000)),
            Verdict::Match(L7::RTP, None)
        );
    }

    #[test]
    fn a_flow_keeps_only_the_first_header_while_it_waits_and_is_rtp_after_the_second_packet() {
        let mut dpi = crate::dissect::Dpi::default();
        crate::dissect::inspect(&mut dpi, &udp(&packet(7000, 160_000, 77), 30000, 40000));
        assert_eq!(dpi.pending.as_ref().map(|p| p.len()), Some(FIXED_HEADER));
        assert_eq!(dpi.l7(), L7::Unknown);
        crate::dissect::inspect(&mut dpi, &udp(&packet(7001, 160_160, 77), 30000, 40000));
        assert_eq!((dpi.l7(), dpi.pending.is_none()), (L7::RTP, true));
    }

    #[test]
    fn another_stream_a_step_back_or_a_non_media_header_is_refused() {
        for second in [
            packet(7001, 160_160, 0x1234_5679), // another SSRC
            packet(6999, 159_840, 0x1234_5678), // sequence going back
            packet(7100, 176_000, 0x1234_5678), // too far ahead
        ] {
            let joined = [packet(7000, 160_000, 0x1234_5678), second].concat();
            assert_ne!(
                detect(&udp(&joined, 30000, 40000)),
                Verdict::Match(L7::RTP, None)
            );
        }
        let mut rtcp = packet(7000, 160_000, 1);
        rtcp[1] = 200; // a sender report: payload type 72 with the marker
        assert_eq!(detect(&udp(&rtcp, 30000, 40000)), Verdict::No);
        assert_eq!(
            detect(&udp(&packet(1, 1, 1), 30000, 53)),
            Verdict::No,
            "well-known port"
        );
    }
}
