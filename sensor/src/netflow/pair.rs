//! Unidirectional exported records into flowmesh's bidirectional flow records.
//!
//! NetFlow v5/v9 and most IPFIX exporters send each direction of a connection as its own
//! record (softflowd sends both when the flow ends, routers whenever each expires). A record
//! is held for `hold` (2 s by default) waiting for its reverse from the same exporter; the two
//! become one record, or it goes out alone. IPFIX biflow records (RFC 5103 reverse counters)
//! need no pairing.
//!
//! Exports do not say which side opened the connection: the client is the side that sent
//! first when the two records' start times differ, else the side whose port is not a service
//! port (the server's is below 1024, or the lower of two).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use flowmesh_record::{Exported, FlowRecord, l4_name};

use super::fields::OneWay;

type Endpoint = (IpAddr, u16);

/// Held records are keyed by exporter, protocol and the endpoint pair in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(IpAddr, u8, Endpoint, Endpoint);

fn key(exporter: IpAddr, r: &OneWay) -> Key {
    let (a, b) = if r.src <= r.dst {
        (r.src, r.dst)
    } else {
        (r.dst, r.src)
    };
    Key(exporter, r.proto, a, b)
}

/// One record waiting for its reverse.
#[derive(Debug, Clone, Copy)]
struct Held {
    record: OneWay,
    sampling: u32,
    since: i64,
}

/// Pairs records; bounded.
#[derive(Debug)]
pub struct Pairing {
    held: HashMap<Key, Held>,
    order: VecDeque<(i64, Key)>,
    hold_us: i64,
    max_held: usize,
    /// Records that went out alone for want of room (counted, never lost).
    pub evicted: u64,
}

impl Pairing {
    /// Holds records up to `hold_us`, at most `max_held` at once.
    pub fn new(hold_us: i64, max_held: usize) -> Self {
        Pairing {
            held: HashMap::new(),
            order: VecDeque::new(),
            hold_us,
            max_held: max_held.max(1),
            evicted: 0,
        }
    }

    /// Records held now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// A record from `exporter` (counts to be scaled by `sampling`) received at `now` (µs).
    pub fn push(
        &mut self,
        exporter: IpAddr,
        record: OneWay,
        sampling: u32,
        now: i64,
        emit: &mut impl FnMut(FlowRecord),
    ) {
        if record.reverse.is_some() {
            emit(biflow(exporter, &record, sampling));
            return;
        }
        let k = key(exporter, &record);
        if let Some(h) = self.held.remove(&k) {
            if h.record.src == record.dst && h.record.dst == record.src {
                emit(joined(exporter, &h.record, h.sampling, &record, sampling));
                return;
            }
            // The same direction again (an update): the older one goes alone.
            emit(alone(exporter, &h.record, h.sampling));
        }
        while self.held.len() >= self.max_held {
            let Some((since, old)) = self.order.pop_front() else {
                break;
            };
            // Only the entry this queue slot was made for (the key may be held anew).
            if self.held.get(&old).is_some_and(|h| h.since == since) {
                let h = self.held.remove(&old).expect("present");
                self.evicted += 1;
                emit(alone(old.0, &h.record, h.sampling));
            }
        }
        let held = Held {
            record,
            sampling,
            since: now,
        };
        self.held.insert(k, held);
        self.order.push_back((now, k));
        // Slots of records paired meanwhile stay queued until their time: keep them bounded.
        if self.order.len() > 2 * self.max_held {
            let held = &self.held;
            self.order
                .retain(|(since, k)| held.get(k).is_some_and(|h| h.since == *since));
        }
    }

    /// Sends alone every record held longer than the hold time at `now`.
    pub fn tick(&mut self, now: i64, emit: &mut impl FnMut(FlowRecord)) {
        while let Some(&(since, k)) = self.order.front() {
            if now - since < self.hold_us {
                break;
            }
            self.order.pop_front();
            // The entry may be newer (re-held after a pairing), or gone.
            if let Some(h) = self.held.get(&k)
                && h.since == since
            {
                let h = self.held.remove(&k).expect("present");
                emit(alone(k.0, &h.record, h.sampling));
            }
        }
    }

    /// Sends every held record (at the end of input).
    pub fn flush(&mut self, emit: &mut impl FnMut(FlowRecord)) {
        self.tick(i64::MAX, emit);
        for (k, h) in self.held.drain() {
            emit(alone(k.0, &h.record, h.sampling));
        }
        self.order.clear();
    }
}

/// Whether `port` looks like a service's rather than a client's.
fn service_rank(port: u16) -> (bool, u16) {
    (port >= 1024, port)
}

/// Whether the record's source is the client.
fn source_is_client(r: &OneWay) -> bool {
    service_rank(r.dst.1) < service_rank(r.src.1)
}

fn base(exporter: IpAddr, client_to_server: &OneWay, sampling: u32) -> FlowRecord {
    let r = client_to_server;
    FlowRecord {
        l4: l4_name(r.proto),
        client_ip: r.src.0,
        client_port: r.src.1,
        server_ip: r.dst.0,
        server_port: r.dst.1,
        vlan: r.vlan,
        l7: r.l7.unwrap_or("Unknown"),
        app: r.app,
        client_mac: r.src_mac,
        server_mac: r.dst_mac,
        first_seen: r.first_us,
        last_seen: r.last_us,
        export: Some(Exported {
            exporter,
            in_if: r.in_if,
            out_if: r.out_if,
            sampling,
        }),
        ..FlowRecord::default()
    }
}

fn swapped(r: &OneWay) -> OneWay {
    OneWay {
        src: r.dst,
        dst: r.src,
        src_mac: r.dst_mac,
        dst_mac: r.src_mac,
        in_if: r.out_if,
        out_if: r.in_if,
        ..*r
    }
}

/// A record that went out without its reverse: its source is the client unless its ports say
/// otherwise (then it is the server's side, counted as server-to-client).
fn alone(exporter: IpAddr, r: &OneWay, sampling: u32) -> FlowRecord {
    let s = u64::from(sampling.max(1));
    if source_is_client(r) {
        let mut f = base(exporter, r, sampling);
        f.c2s_packets = r.packets.saturating_mul(s);
        f.c2s_bytes = r.bytes.saturating_mul(s);
        f.c2s_tcp_flags = r.tcp_flags;
        f
    } else {
        let mut f = base(exporter, &swapped(r), sampling);
        f.s2c_packets = r.packets.saturating_mul(s);
        f.s2c_bytes = r.bytes.saturating_mul(s);
        f.s2c_tcp_flags = r.tcp_flags;
        f
    }
}

/// Two records of one connection.
fn joined(exporter: IpAddr, a: &OneWay, sa: u32, b: &OneWay, sb: u32) -> FlowRecord {
    let a_first = if a.first_us != b.first_us {
        a.first_us < b.first_us
    } else {
        source_is_client(a)
    };
    let ((c, sc), (s, ss)) = if a_first {
        ((a, sa), (b, sb))
    } else {
        ((b, sb), (a, sa))
    };
    let mut f = base(exporter, c, sc.max(ss));
    f.server_mac = f.server_mac.or(s.src_mac);
    f.l7 = c.l7.or(s.l7).unwrap_or("Unknown");
    f.app = c.app.or(s.app);
    f.client_mac = f.client_mac.or(s.dst_mac);
    f.c2s_packets = c.packets.saturating_mul(u64::from(sc.max(1)));
    f.c2s_bytes = c.bytes.saturating_mul(u64::from(sc.max(1)));
    f.s2c_packets = s.packets.saturating_mul(u64::from(ss.max(1)));
    f.s2c_bytes = s.bytes.saturating_mul(u64::from(ss.max(1)));
    f.c2s_tcp_flags = c.tcp_flags;
    f.s2c_tcp_flags = s.tcp_flags;
    f.first_seen = c.first_us.min(s.first_us);
    f.last_seen = c.last_us.max(s.last_us);
    f
}

/// An IPFIX biflow record (forward and reverse counters in one).
fn biflow(exporter: IpAddr, r: &OneWay, sampling: u32) -> FlowRecord {
    let s = u64::from(sampling.max(1));
    let (rp, rb) = r.reverse.unwrap_or_default();
    let mut f = base(exporter, r, sampling);
    f.c2s_packets = r.packets.saturating_mul(s);
    f.c2s_bytes = r.bytes.saturating_mul(s);
    f.s2c_packets = rp.saturating_mul(s);
    f.s2c_bytes = rb.saturating_mul(s);
    f.c2s_tcp_flags = r.tcp_flags;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str, sp: u16, dst: &str, dp: u16, first: i64, packets: u64) -> OneWay {
        OneWay {
            src: (src.parse().unwrap(), sp),
            dst: (dst.parse().unwrap(), dp),
            proto: 6,
            packets,
            bytes: packets * 100,
            reverse: None,
            first_us: first,
            last_us: first + 10,
            in_if: 1,
            out_if: 2,
            tcp_flags: 0x12,
            src_mac: None,
            dst_mac: None,
            vlan: None,
            sampling: 0,
            l7: None,
            app: None,
        }
    }

    #[test]
    fn two_directions_become_one_record_and_lone_ones_go_out_after_the_hold() {
        let exporter: IpAddr = "192.0.2.1".parse().unwrap();
        let mut p = Pairing::new(1000, 10);
        let mut out = Vec::new();
        p.push(
            exporter,
            one("10.0.0.1", 443, "10.0.0.2", 50000, 5, 3),
            1,
            0,
            &mut |f| out.push(f),
        );
        p.push(
            exporter,
            one("10.0.0.2", 50000, "10.0.0.1", 443, 5, 4),
            1,
            1,
            &mut |f| out.push(f),
        );
        p.push(
            exporter,
            one("10.0.0.9", 40000, "10.0.0.1", 53, 7, 1),
            10,
            2,
            &mut |f| out.push(f),
        );
        p.tick(500, &mut |f| out.push(f));
        assert_eq!(out.len(), 1);
        p.tick(2000, &mut |f| out.push(f));
        assert_eq!(out.len(), 2);
        let f = &out[0];
        // Same start: the service port (443) is the server's.
        assert_eq!((f.client_port, f.server_port), (50000, 443));
        assert_eq!((f.c2s_packets, f.s2c_packets), (4, 3));
        assert_eq!(f.export.unwrap().exporter, exporter);
        let lone = &out[1];
        assert_eq!(
            (lone.server_port, lone.c2s_packets, lone.c2s_bytes),
            (53, 10, 1000)
        );
        assert_eq!(lone.export.unwrap().sampling, 10);
        assert!(p.is_empty());
    }

    #[test]
    fn the_held_set_is_bounded_and_nothing_is_lost() {
        let exporter: IpAddr = "192.0.2.1".parse().unwrap();
        let mut p = Pairing::new(1_000_000, 2);
        let mut out = Vec::new();
        for i in 0..5u16 {
            p.push(
                exporter,
                one("10.0.0.1", 1000 + i, "10.0.0.2", 80, 0, 1),
                1,
                0,
                &mut |f| out.push(f),
            );
        }
        assert_eq!(p.len(), 2);
        assert_eq!(p.evicted, 3);
        p.flush(&mut |f| out.push(f));
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn records_paired_at_once_leave_no_queue_behind() {
        let exporter: IpAddr = "192.0.2.1".parse().unwrap();
        let mut p = Pairing::new(i64::MAX, 10);
        let mut out = Vec::new();
        for i in 0..1000u16 {
            let c = one("10.0.0.1", 1000 + i, "10.0.0.2", 80, 0, 1);
            let s = one("10.0.0.2", 80, "10.0.0.1", 1000 + i, 0, 1);
            p.push(exporter, c, 1, 0, &mut |f| out.push(f));
            p.push(exporter, s, 1, 0, &mut |f| out.push(f));
        }
        assert_eq!(out.len(), 1000);
        assert!(p.order.len() <= 20, "{} queued", p.order.len());
    }
}
