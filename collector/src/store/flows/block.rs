//! One stored block of flow records: columnar, each column compressed alone.
//!
//! Layout: `FMF2`, the flow count, then one section per [`Col`] in order (see
//! [`super::column`]). Numeric columns are varints (times as deltas, zigzag). Names, addresses
//! and MACs are dictionary-coded per column: a value's code is 0 for none, 1 for a value new
//! to the block (appended to the column's dictionary, stored in its own section), and
//! `1 + (entries - index)` for one seen before — a column reads alone, and repeats stay small.
//!
//! `FMF1` blocks (before exported flows) lack the last four columns and the exporter
//! dictionary; they read as flows built from packets.

use std::hash::Hash;
use std::net::IpAddr;

use flowmesh_record::FlowRecord;

use super::column::{self, Damaged, Reader, Section};

const MAGIC: &[u8; 4] = b"FMF2";
/// The first layout: the columns up to `Profiles`, ten dictionaries.
const MAGIC_V1: &[u8; 4] = b"FMF1";
const COLS_V1: usize = Col::Profiles as usize + 1;
const DICTS_V1: usize = 10;
/// Most flows one block holds (a batch larger than this is split over blocks).
pub const MAX_FLOWS: usize = 1 << 16;

/// The columns, in their order in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(super) enum Col {
    First,
    Duration,
    L4,
    ClientIp,
    ServerIp,
    ClientPort,
    ServerPort,
    Vlan,
    Tunnel,
    L7,
    App,
    ServerName,
    Alpn,
    ClientMac,
    ServerMac,
    C2sPackets,
    C2sBytes,
    S2cPackets,
    S2cBytes,
    TcpFlags,
    Profiles,
    Exporter,
    InIf,
    OutIf,
    Sampling,
}

/// How many columns a block has.
pub(super) const COLS: usize = Col::Sampling as usize + 1;

impl Col {
    /// Every column, in block order.
    pub(super) const ALL: [Col; COLS] = [
        Col::First,
        Col::Duration,
        Col::L4,
        Col::ClientIp,
        Col::ServerIp,
        Col::ClientPort,
        Col::ServerPort,
        Col::Vlan,
        Col::Tunnel,
        Col::L7,
        Col::App,
        Col::ServerName,
        Col::Alpn,
        Col::ClientMac,
        Col::ServerMac,
        Col::C2sPackets,
        Col::C2sBytes,
        Col::S2cPackets,
        Col::S2cBytes,
        Col::TcpFlags,
        Col::Profiles,
        Col::Exporter,
        Col::InIf,
        Col::OutIf,
        Col::Sampling,
    ];
}
/// Dictionary sections follow the columns, one per dictionary-coded column.
const DICTS: usize = 11;

/// The dictionary section of a dictionary-coded column (`None`: a numeric column).
fn dict_slot(c: Col) -> Option<usize> {
    Some(match c {
        Col::ClientIp => 0,
        Col::ServerIp => 1,
        Col::Tunnel => 2,
        Col::L7 => 3,
        Col::App => 4,
        Col::ServerName => 5,
        Col::Alpn => 6,
        Col::ClientMac => 7,
        Col::ServerMac => 8,
        Col::Profiles => 9,
        Col::Exporter => 10,
        _ => return None,
    })
}

/// A column's dictionary while a block is built.
struct Dict<K> {
    // A fast hash with a random seed per process: addresses come from the network, and one
    // who could make them collide would slow every compaction down.
    index: std::collections::HashMap<K, u32, foldhash::fast::RandomState>,
    bytes: Vec<u8>,
}

impl<K: Hash + Eq> Default for Dict<K> {
    fn default() -> Self {
        Dict {
            index: Default::default(),
            bytes: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Dict<K> {
    /// The code of `k` (see the module's doc); a new value's bytes are written by `write`.
    fn code(&mut self, k: &K, write: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let len = self.index.len() as u64;
        match self.index.get(k) {
            Some(i) => 1 + (len - u64::from(*i)),
            None => {
                self.index.insert(k.clone(), len as u32);
                write(&mut self.bytes);
                1
            }
        }
    }
}

fn ip_bytes(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => column::put_bytes(out, &a.octets()),
        IpAddr::V6(a) => column::put_bytes(out, &a.octets()),
    }
}

/// Builds one block from records as they come.
#[derive(Default)]
pub struct BlockBuilder {
    n: usize,
    prev_first: i64,
    first_min: i64,
    last_max: i64,
    cols: [Vec<u8>; COLS],
    ips: [Dict<IpAddr>; 2],
    exporters: Dict<IpAddr>,
    macs: [Dict<[u8; 6]>; 2],
    /// Tunnel, l7, app, server name, ALPN, profiles.
    names: [Dict<String>; 6],
    /// Room to join a record's ALPN ids without allocating per record.
    scratch: String,
}

impl BlockBuilder {
    /// Flows added so far.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The earliest first packet and the latest last packet of the flows added (µs).
    pub fn span(&self) -> (i64, i64) {
        (self.first_min, self.last_max)
    }

    fn name(&mut self, slot: usize, col: Col, name: Option<&str>) {
        let code = match name {
            None => 0,
            Some(s) => {
                let d = &mut self.names[slot];
                match d.index.get(s) {
                    Some(i) => 1 + (d.index.len() as u64 - u64::from(*i)),
                    None => d.code(&s.to_string(), |b| column::put_bytes(b, s.as_bytes())),
                }
            }
        };
        column::put(&mut self.cols[col as usize], code);
    }

    /// Adds one record and the names of the profiles it matched.
    pub fn push(&mut self, r: &FlowRecord, profiles: &[&str]) {
        if self.n == 0 {
            self.first_min = r.first_seen;
            self.last_max = r.last_seen;
        }
        self.first_min = self.first_min.min(r.first_seen);
        self.last_max = self.last_max.max(r.last_seen);
        self.n += 1;
        let c = &mut self.cols;
        column::put_signed(
            &mut c[Col::First as usize],
            r.first_seen.wrapping_sub(self.prev_first),
        );
        self.prev_first = r.first_seen;
        column::put_signed(
            &mut c[Col::Duration as usize],
            r.last_seen.wrapping_sub(r.first_seen),
        );
        column::put(
            &mut c[Col::L4 as usize],
            u64::from(flowmesh_record::l4_number(r.l4).unwrap_or(0)),
        );
        for (i, (ip, col)) in [(r.client_ip, Col::ClientIp), (r.server_ip, Col::ServerIp)]
            .into_iter()
            .enumerate()
        {
            let code = self.ips[i].code(&ip, |b| ip_bytes(b, &ip));
            column::put(&mut self.cols[col as usize], code);
        }
        let c = &mut self.cols;
        column::put(&mut c[Col::ClientPort as usize], u64::from(r.client_port));
        column::put(&mut c[Col::ServerPort as usize], u64::from(r.server_port));
        column::put(
            &mut c[Col::Vlan as usize],
            r.vlan.map_or(0, |v| u64::from(v) + 1),
        );
        for (i, (mac, col)) in [
            (r.client_mac, Col::ClientMac),
            (r.server_mac, Col::ServerMac),
        ]
        .into_iter()
        .enumerate()
        {
            let code = mac.map_or(0, |m| self.macs[i].code(&m, |b| b.extend_from_slice(&m)));
            column::put(&mut self.cols[col as usize], code);
        }
        let c = &mut self.cols;
        column::put(&mut c[Col::C2sPackets as usize], r.c2s_packets);
        column::put(&mut c[Col::C2sBytes as usize], r.c2s_bytes);
        column::put(&mut c[Col::S2cPackets as usize], r.s2c_packets);
        column::put(&mut c[Col::S2cBytes as usize], r.s2c_bytes);
        column::put(
            &mut c[Col::TcpFlags as usize],
            u64::from(r.c2s_tcp_flags) | u64::from(r.s2c_tcp_flags) << 8,
        );
        self.name(0, Col::Tunnel, r.tunnel);
        self.name(1, Col::L7, Some(r.l7));
        self.name(2, Col::App, r.app);
        self.name(3, Col::ServerName, r.server_name.as_deref());
        // The offered ALPN ids as one name, joined in a buffer kept for the next record.
        let mut alpn = std::mem::take(&mut self.scratch);
        alpn.clear();
        for (i, id) in r.alpn.iter().flatten().enumerate() {
            if i > 0 {
                alpn.push(',');
            }
            alpn.push_str(id);
        }
        self.name(4, Col::Alpn, r.alpn.is_some().then_some(alpn.as_str()));
        self.scratch = alpn;
        column::put(
            &mut self.cols[Col::Profiles as usize],
            profiles.len() as u64,
        );
        for p in profiles {
            self.name(5, Col::Profiles, Some(p));
        }
        let e = r.export;
        let code = e.map_or(0, |e| {
            self.exporters
                .code(&e.exporter, |b| ip_bytes(b, &e.exporter))
        });
        let c = &mut self.cols;
        column::put(&mut c[Col::Exporter as usize], code);
        column::put(
            &mut c[Col::InIf as usize],
            e.map_or(0, |e| u64::from(e.in_if)),
        );
        column::put(
            &mut c[Col::OutIf as usize],
            e.map_or(0, |e| u64::from(e.out_if)),
        );
        column::put(
            &mut c[Col::Sampling as usize],
            e.map_or(0, |e| u64::from(e.sampling)),
        );
    }

    /// The block's bytes, columns compressed at zstd `level`.
    pub fn finish(&self, level: i32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.n * 24 + 64);
        out.extend_from_slice(MAGIC);
        column::put(&mut out, self.n as u64);
        for c in &self.cols {
            column::put_section(&mut out, c, level);
        }
        let dicts = [&self.ips[0].bytes, &self.ips[1].bytes]
            .into_iter()
            .chain(self.names[..4].iter().map(|d| &d.bytes))
            .chain([&self.names[4].bytes])
            .chain(self.macs.iter().map(|d| &d.bytes))
            .chain([&self.names[5].bytes, &self.exporters.bytes]);
        // In `dict_slot`'s order: ips, tunnel, l7, app, server name, alpn, macs, profiles,
        // exporters.
        for d in dicts {
            column::put_section(&mut out, d, level);
        }
        out
    }
}

/// A block's sections, found but not yet decompressed.
pub(super) struct Block<'a> {
    n: usize,
    /// Every column's section; an `FMF1` block has fewer.
    cols: Vec<Section<'a>>,
    dicts: Vec<Section<'a>>,
}

/// One column decoded: numbers, or dictionary indices (`u32::MAX`: none) with the dictionary.
#[derive(Default)]
pub(super) struct Decoded {
    pub(super) values: Vec<u64>,
    pub(super) dict: Entries,
}

/// A column's dictionary entries, in one buffer (no allocation per entry).
#[derive(Default)]
pub(super) struct Entries {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Entries {
    fn push(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
        self.ends.push(self.bytes.len());
    }

    /// Entries.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Entry `i`.
    pub(super) fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.get(start..end)
    }

    /// Every entry, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<'a> Block<'a> {
    /// Finds the sections of a stored block.
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Self, Damaged> {
        let (body, cols, dicts) = match bytes.strip_prefix(MAGIC) {
            Some(body) => (body, COLS, DICTS),
            None => (
                bytes.strip_prefix(MAGIC_V1).ok_or(Damaged("magic"))?,
                COLS_V1,
                DICTS_V1,
            ),
        };
        let mut r = Reader::new(body);
        let n = r.get_as::<usize>()?;
        if n > MAX_FLOWS {
            return Err(Damaged("flow count"));
        }
        let mut read = |k: usize| -> Result<Vec<Section<'a>>, Damaged> {
            (0..k).map(|_| Section::read(&mut r)).collect()
        };
        let cols = read(cols)?;
        let dicts = read(dicts)?;
        Ok(Block { n, cols, dicts })
    }

    /// Flows in the block.
    pub(super) fn len(&self) -> usize {
        self.n
    }

    /// Decodes one column (`buf`: scratch space for decompression).
    pub(super) fn column(&self, col: Col, buf: &mut Vec<u8>) -> Result<Decoded, Damaged> {
        let Some(section) = self.cols.get(col as usize) else {
            // A column older blocks lack: none in every row.
            let none = if dict_slot(col).is_some() {
                u64::from(u32::MAX)
            } else {
                0
            };
            return Ok(Decoded {
                values: vec![none; self.n],
                dict: Entries::default(),
            });
        };
        let raw = section.open(buf)?;
        let mut r = Reader::new(raw);
        let mut out = Decoded {
            values: Vec::with_capacity(self.n),
            dict: Entries::default(),
        };
        let Some(slot) = dict_slot(col) else {
            let mut prev = 0i64;
            for _ in 0..self.n {
                let v = match col {
                    Col::First => {
                        prev = prev.wrapping_add(r.get_signed()?);
                        prev as u64
                    }
                    Col::Duration => r.get_signed()? as u64,
                    _ => r.get()?,
                };
                out.values.push(v);
            }
            return Ok(out);
        };
        let mut dbuf = Vec::new();
        let mut dict = Reader::new(
            self.dicts
                .get(slot)
                .ok_or(Damaged("dictionaries"))?
                .open(&mut dbuf)?,
        );
        let mac = matches!(col, Col::ClientMac | Col::ServerMac);
        for _ in 0..self.n {
            if col == Col::Profiles {
                // A count, then that many codes, flattened into `values`.
                let k = r.get()?;
                if k > 64 {
                    return Err(Damaged("profile count"));
                }
                out.values.push(k);
                for _ in 0..k {
                    let v = decode_code(&mut r, &mut dict, mac, &mut out.dict)?;
                    out.values.push(v);
                }
            } else {
                let v = decode_code(&mut r, &mut dict, mac, &mut out.dict)?;
                out.values.push(v);
            }
        }
        Ok(out)
    }
}

/// One dictionary code read back as an index (`u32::MAX`: none), a new value taken from the
/// dictionary's section.
fn decode_code(
    r: &mut Reader<'_>,
    dict: &mut Reader<'_>,
    mac: bool,
    entries: &mut Entries,
) -> Result<u64, Damaged> {
    let len = entries.len() as u64;
    Ok(match r.get()? {
        0 => u64::from(u32::MAX),
        1 => {
            let v = if mac {
                dict.get_fixed(6)?
            } else {
                dict.get_bytes()?
            };
            entries.push(v);
            len
        }
        c if c - 1 <= len => len - (c - 1),
        _ => return Err(Damaged("dictionary code")),
    })
}
