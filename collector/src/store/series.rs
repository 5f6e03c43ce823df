//! Timeseries of traffic, as ntopng keeps them for its charts: bytes and packets per 5-minute
//! bucket, rolled up into hourly and daily buckets (sums, so the rollup is exact whatever order
//! the points arrive in; when, see `rollup`).
//!
//! Series of one instance:
//! - `total`: all its traffic (ntopng's interface series);
//! - `l7:<master protocol>` and `app:<application>`;
//! - `host:<ip>` for local hosts (private, link-local, ULA, CGNAT), as ntopng keeps host series
//!   only for local hosts: remote addresses are unbounded;
//! - `profile:<name>` for each traffic profile (ntopng's Profile Details chart).
//!
//! A flow record counts in the bucket that holds its last packet, the same rule the traffic
//! rules use; with the sensor's active timeout long flows spread over the buckets they span.

use flowmesh_link::addr::is_local;
use flowmesh_record::FlowRecord;
use serde::Serialize;

/// A chart resolution and how long its points are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Resolution {
    /// 5-minute buckets.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// Hourly buckets.
    #[serde(rename = "1h")]
    Hour,
    /// Daily buckets (UTC days).
    #[serde(rename = "1d")]
    Day,
}

impl Resolution {
    /// Every resolution, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::FiveMinutes, Resolution::Hour, Resolution::Day];

    /// Bucket length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::FiveMinutes => 300,
            Resolution::Hour => 3_600,
            Resolution::Day => 86_400,
        }
    }

    /// The start (seconds) of the bucket holding `t` (seconds).
    pub fn bucket(self, t: i64) -> i64 {
        t - t.rem_euclid(self.seconds())
    }

    /// How long points are kept by default: 5-minute points a week, hourly ones 90 days,
    /// daily ones 5 years (ntopng's defaults for its RRDs are of the same order).
    pub fn default_retention_secs(self) -> i64 {
        match self {
            Resolution::FiveMinutes => 7 * 86_400,
            Resolution::Hour => 90 * 86_400,
            Resolution::Day => 5 * 365 * 86_400,
        }
    }

    /// Parses `5m`, `1h` or `1d`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "5m" => Some(Resolution::FiveMinutes),
            "1h" => Some(Resolution::Hour),
            "1d" => Some(Resolution::Day),
            _ => None,
        }
    }

    /// The name of the redb table holding this resolution (keys: [`super::point_key`]).
    pub(super) fn table_name(self) -> &'static str {
        match self {
            Resolution::FiveMinutes => "points_5m",
            Resolution::Hour => "points_1h",
            Resolution::Day => "points_1d",
        }
    }

    /// The table that held this resolution in stores of earlier versions, keyed by
    /// `(instance, name, start)` tuples; moved into the new one when such a store is opened.
    pub(super) fn legacy_table_name(self) -> &'static str {
        match self {
            Resolution::FiveMinutes => "series_5m",
            Resolution::Hour => "series_1h",
            Resolution::Day => "series_1d",
        }
    }
}

/// Bytes and packets in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// L2 bytes, both directions.
    pub bytes: u64,
    /// Packets, both directions.
    pub packets: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, o: Counters) {
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.packets = self.packets.saturating_add(o.packets);
    }
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The series name (`total`, `l7:TLS`, `host:192.168.1.20`, ...).
    pub series: String,
    /// The bucket's start, seconds since the epoch (UTC).
    pub start: i64,
    /// What the bucket holds.
    #[serde(flatten)]
    pub counters: Counters,
}

/// A record's static name (protocol, application), compared and hashed by its address: a
/// record's names are interned (one static string per name), so a lookup is a pointer compare,
/// not a string compare per flow. Two copies of one name at different addresses would only be
/// two keys for one series, which the store sums.
#[derive(Debug, Clone, Copy)]
pub(super) struct Name(&'static str);

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Name {}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.0.as_ptr() as usize, self.0.len()).hash(h);
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // By name, then by address: consistent with `eq`.
        self.0
            .cmp(other.0)
            .then_with(|| (self.0.as_ptr() as usize).cmp(&(other.0.as_ptr() as usize)))
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A series of one instance, named only when stored: counting a flow allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum SeriesKey {
    Total,
    L7(Name),
    App(Name),
    Host(std::net::IpAddr),
    Profile(Name),
}

impl std::fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeriesKey::Total => f.write_str("total"),
            SeriesKey::L7(p) => write!(f, "l7:{}", p.0),
            SeriesKey::App(a) => write!(f, "app:{}", a.0),
            SeriesKey::Host(ip) => write!(f, "host:{ip}"),
            SeriesKey::Profile(p) => write!(f, "profile:{}", p.0),
        }
    }
}

/// What a flow adds, and the 5-minute bucket it adds it to.
fn point_of(f: &FlowRecord, t_micros: i64) -> (Counters, i64) {
    let c = Counters {
        bytes: f.c2s_bytes + f.s2c_bytes,
        packets: f.c2s_packets + f.s2c_packets,
    };
    (
        c,
        Resolution::FiveMinutes.bucket(t_micros.div_euclid(1_000_000)),
    )
}

/// Series deltas gathered in memory (one batch of flows) before one store transaction.
#[derive(Debug, Default)]
pub struct SeriesDelta {
    /// (series, 5-minute bucket start) → counters.
    points: foldhash::HashMap<(SeriesKey, i64), Counters>,
}

impl SeriesDelta {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Adds a flow record whose last packet is at `t_micros`.
    pub fn add_flow(&mut self, f: &FlowRecord, t_micros: i64) {
        let (c, bucket) = point_of(f, t_micros);
        let mut add = |series: SeriesKey| {
            self.points.entry((series, bucket)).or_default().add(c);
        };
        add(SeriesKey::Total);
        add(SeriesKey::L7(Name(f.l7)));
        if let Some(app) = f.app {
            add(SeriesKey::App(Name(app)));
        }
        // A host talking to itself counts once.
        let server = (f.server_ip != f.client_ip).then_some(f.server_ip);
        for ip in std::iter::once(f.client_ip).chain(server) {
            if is_local(ip) {
                add(SeriesKey::Host(ip));
            }
        }
    }

    /// Adds a flow record to the series of a traffic profile it belongs to (`name` interned, as
    /// [`crate::checks::profiles::intern`] gives it).
    pub fn add_profile(&mut self, name: &'static str, f: &FlowRecord, t_micros: i64) {
        let (c, bucket) = point_of(f, t_micros);
        self.points
            .entry((SeriesKey::Profile(Name(name)), bucket))
            .or_default()
            .add(c);
    }
}

/// The series points of many batches for one transaction, summed per series and 5-minute
/// bucket (one entry each, not one per resolution: the map stays small and in cache).
#[derive(Default)]
pub(super) struct SeriesSum<'a> {
    points: foldhash::HashMap<(&'a str, SeriesKey, i64), Counters>,
}

impl<'a> SeriesSum<'a> {
    /// Adds one batch's points for `instance`.
    pub(super) fn add(&mut self, instance: &'a str, delta: &SeriesDelta) {
        for (&(key, start), &c) in &delta.points {
            self.points
                .entry((instance, key, start))
                .or_default()
                .add(c);
        }
    }

    /// Every 5-minute point, named once into one buffer and handed to `write` in the tables'
    /// key order — instance, name, start — so the B-tree is walked once, in order:
    /// `write(instance, name, start, counters)`. Hours and days are the rollup's (`rollup`).
    pub(super) fn write_in_order<E>(
        self,
        mut write: impl FnMut(&str, &str, i64, Counters) -> Result<(), E>,
    ) -> Result<(), E> {
        use std::fmt::Write as _;
        type Row<'a> = (&'a str, std::ops::Range<usize>, i64, Counters);
        let mut names = String::new();
        let mut rows: Vec<Row<'a>> = Vec::with_capacity(self.points.len());
        for ((instance, key, start), c) in self.points {
            let from = names.len();
            let _ = write!(names, "{key}");
            rows.push((instance, from..names.len(), start, c));
        }
        let name = |row: &Row<'a>| &names[row.1.clone()];
        rows.sort_unstable_by(|a, b| (a.0, name(a), a.2).cmp(&(b.0, name(b), b.2)));
        let mut rows = rows.iter().peekable();
        while let Some(row) = rows.next() {
            // Two keys of one name (see [`Name`]) are one series: summed.
            let mut c = row.3;
            while let Some(next) =
                rows.next_if(|n| (n.0, name(n), n.2) == (row.0, name(row), row.2))
            {
                c.add(next.3);
            }
            write(row.0, name(row), row.2, c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_keys_by_address_and_print_alike() {
        let interned: &'static str = "TLS";
        let copy: &'static str = Box::leak(String::from("TLS").into_boxed_str());
        assert_eq!(Name(interned), Name(interned));
        // Two keys (summed by the store under one name), consistently ordered.
        assert_ne!(Name(interned), Name(copy));
        assert_ne!(Name(interned).cmp(&Name(copy)), std::cmp::Ordering::Equal);
        assert_eq!(
            SeriesKey::L7(Name(interned)).to_string(),
            SeriesKey::L7(Name(copy)).to_string()
        );
    }

    #[test]
    fn a_transaction_writes_each_point_once_in_key_order() {
        let c = |bytes| Counters { bytes, packets: 1 };
        let mut one = SeriesDelta::default();
        let mut two = SeriesDelta::default();
        // 10:55 and 11:00 on 2024-03-10 (UTC), for two series, in two batches; the second
        // names DNS by another copy of the name (summed with the first).
        let (t1055, t1100) = (1_710_068_100, 1_710_068_400);
        let dns: &'static str = Box::leak(String::from("DNS").into_boxed_str());
        one.points.insert((SeriesKey::Total, t1100), c(1));
        one.points.insert((SeriesKey::Total, t1055), c(2));
        one.points
            .insert((SeriesKey::L7(Name("DNS")), t1055), c(16));
        two.points.insert((SeriesKey::Total, t1100), c(4));
        two.points.insert((SeriesKey::L7(Name(dns)), t1055), c(8));
        let mut sum = SeriesSum::default();
        sum.add("a", &one);
        sum.add("a", &two);
        let mut rows = Vec::new();
        sum.write_in_order(|i, name, start, c| {
            rows.push((i.to_string(), name.to_string(), start, c.bytes, c.packets));
            Ok::<_, ()>(())
        })
        .unwrap();
        let row = |name: &str, start, bytes, packets| {
            ("a".to_string(), name.to_string(), start, bytes, packets)
        };
        assert_eq!(
            rows,
            [
                row("l7:DNS", t1055, 24, 2),
                row("total", t1055, 2, 1),
                row("total", t1100, 5, 2),
            ]
        );
    }

    #[test]
    fn buckets_align_to_utc() {
        // 2024-03-10T13:47:12Z
        let t = 1_710_078_432;
        assert_eq!(Resolution::FiveMinutes.bucket(t), 1_710_078_300); // 13:45
        assert_eq!(Resolution::Hour.bucket(t), 1_710_075_600); // 13:00
        assert_eq!(Resolution::Day.bucket(t), 1_710_028_800); // 00:00
        assert_eq!(Resolution::Day.bucket(-1), -86_400);
    }
}
