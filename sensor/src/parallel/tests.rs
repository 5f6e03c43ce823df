//! The worker choice: symmetric, fair, and the reader's own share.

use super::*;
use std::net::IpAddr;

fn packet(src: IpAddr, dst: IpAddr, sp: u16, dp: u16) -> IpPacket<'static> {
    IpPacket {
        vlan: Some(7),
        ..IpPacket::tcp_for_test(src, sp, dst, dp)
    }
}

#[test]
fn both_directions_and_every_fragment_go_to_one_worker_and_workers_share_the_flows() {
    for workers in [2, 3, 4] {
        let mut load = vec![0u32; workers];
        for i in 0..20_000u32 {
            let (a, b): (IpAddr, IpAddr) = if i % 2 == 0 {
                (
                    std::net::Ipv4Addr::from(0x0a00_0000 + i).into(),
                    std::net::Ipv4Addr::from(0xc0a8_0000 + i * 7).into(),
                )
            } else {
                (
                    std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)).into(),
                    std::net::Ipv6Addr::from(0xfe80_u128 << 112 | u128::from(i * 13)).into(),
                )
            };
            let w = worker_of(&packet(a, b, 40000, 443), workers);
            assert_eq!(w, worker_of(&packet(b, a, 443, 40000), workers));
            // A later fragment has no ports of its own before they are looked up.
            assert_eq!(w, worker_of(&packet(a, b, 0, 0), workers));
            load[w] += 1;
        }
        let fair = 20_000 / workers as u32;
        assert!(
            load.iter().all(|&n| n > fair * 8 / 10),
            "{workers} workers: {load:?}"
        );
    }
}

#[test]
fn the_reader_s_own_table_takes_half_a_worker_s_share_of_the_flows() {
    for tables in [2, 3, 5] {
        let mut load = vec![0u32; tables];
        for i in 0..30_000u32 {
            let a: IpAddr = std::net::Ipv4Addr::from(0x0a00_0000 + i).into();
            let b: IpAddr = std::net::Ipv4Addr::from(0xc0a8_0000 + i * 7).into();
            let t = shard_of(&packet(a, b, 40000, 443), tables);
            assert_eq!(t, shard_of(&packet(b, a, 443, 40000), tables));
            load[t] += 1;
        }
        let unit = 30_000 / (2 * tables as u32 - 1);
        assert!(
            load[0] > unit * 8 / 10 && load[0] < unit * 12 / 10,
            "{load:?}"
        );
        assert!(
            load[1..]
                .iter()
                .all(|&n| n > unit * 16 / 10 && n < unit * 24 / 10),
            "{load:?}"
        );
    }
}
