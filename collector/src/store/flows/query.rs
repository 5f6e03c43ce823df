//! Searching stored flows: filters, newest first, and top-N aggregates. A block is skipped on
//! its index entry (instance, time span) or on its dictionaries (no address, protocol, name or
//! profile the query asks for) before any of its columns is decompressed.

use std::collections::HashMap;
use std::net::IpAddr;

use flowmesh_record::{FlowRecord, L7, Tunnel, app_named, l4_name};
use serde::Serialize;

use super::block::{Block, COLS, Col, Decoded};
use super::column::Damaged;
use crate::policy::net::Cidr;

/// Which stored flows a search wants. Every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct FlowQuery {
    /// Only this instance's flows.
    pub instance: Option<String>,
    /// Flows active at or after this time (µs): last packet ≥ it.
    pub from_us: Option<i64>,
    /// Flows active before this time (µs): first packet < it.
    pub to_us: Option<i64>,
    /// Either end's address in this network.
    pub host: Option<Cidr>,
    /// Either end's port.
    pub port: Option<u16>,
    /// Master protocol (nDPI's name, any case).
    pub l7: Option<String>,
    /// Application (any case).
    pub app: Option<String>,
    /// Matched this traffic profile.
    pub profile: Option<String>,
    /// Server name equal to this or ending in `.` + it (any case).
    pub server_name: Option<String>,
    /// At most this many flows (newest first); 0: no limit.
    pub limit: usize,
}

/// A flow as stored: DESIGN.md's record, its instance and the profiles it matched.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoredFlow {
    /// The instance that saw it.
    pub instance: String,
    /// The record.
    #[serde(flatten)]
    pub record: FlowRecord,
    /// The traffic profiles it matched when it was stored.
    pub profiles: Vec<String>,
}

/// What `--top` counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopKind {
    /// Addresses, either end.
    Hosts,
    /// Applications (the master protocol where none is known).
    Apps,
    /// Master protocols.
    L7,
    /// Traffic profiles.
    Profiles,
    /// Client → server pairs.
    Talkers,
}

impl TopKind {
    /// Parses `hosts`, `apps`, `l7`, `profiles` or `talkers`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hosts" => TopKind::Hosts,
            "apps" => TopKind::Apps,
            "l7" => TopKind::L7,
            "profiles" => TopKind::Profiles,
            "talkers" => TopKind::Talkers,
            _ => return None,
        })
    }
}

/// One line of a top-N: a key and what its flows add up to.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TopEntry {
    /// The host, application, protocol, profile or `client -> server`.
    pub key: String,
    /// Flows.
    pub flows: u64,
    /// Bytes, both directions.
    pub bytes: u64,
    /// Packets, both directions.
    pub packets: u64,
}

fn lower_eq(stored: &[u8], want: &str) -> bool {
    stored.eq_ignore_ascii_case(want.as_bytes())
}

fn name_suffix(stored: &[u8], want: &str) -> bool {
    let w = want.as_bytes();
    stored.len() >= w.len()
        && stored[stored.len() - w.len()..].eq_ignore_ascii_case(w)
        && (stored.len() == w.len() || stored[stored.len() - w.len() - 1] == b'.')
}

fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// One block's columns, decoded as a query needs them.
pub(super) struct Rows<'a> {
    block: Block<'a>,
    cols: [Option<Decoded>; COLS],
    /// Start of each row's profile codes in the flattened profiles column.
    profile_at: Vec<usize>,
    buf: Vec<u8>,
}

impl<'a> Rows<'a> {
    pub(super) fn new(block: Block<'a>) -> Self {
        Rows {
            block,
            cols: std::array::from_fn(|_| None),
            profile_at: Vec::new(),
            buf: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.block.len()
    }

    fn col(&mut self, c: Col) -> Result<&Decoded, Damaged> {
        if self.cols[c as usize].is_none() {
            let d = self.block.column(c, &mut self.buf)?;
            if c == Col::Profiles {
                let mut at = Vec::with_capacity(self.block.len());
                let mut i = 0;
                while i < d.values.len() {
                    at.push(i);
                    i += 1 + d.values[i] as usize;
                }
                self.profile_at = at;
            }
            self.cols[c as usize] = Some(d);
        }
        self.cols[c as usize].as_ref().ok_or(Damaged("column"))
    }

    /// Per dictionary entry of `c`, whether it satisfies `pred`; `None` if none does (the
    /// block cannot match).
    fn dict_matches(
        &mut self,
        c: Col,
        pred: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<Vec<bool>>, Damaged> {
        let d = self.col(c)?;
        let m: Vec<bool> = d.dict.iter().map(pred).collect();
        Ok(m.iter().any(|x| *x).then_some(m))
    }

    fn value(&self, c: Col, row: usize) -> u64 {
        self.cols[c as usize]
            .as_ref()
            .and_then(|d| d.values.get(row))
            .copied()
            .unwrap_or(0)
    }

    fn dict_value(&self, c: Col, index: u64) -> Option<&[u8]> {
        self.cols[c as usize]
            .as_ref()?
            .dict
            .get(usize::try_from(index).ok()?)
    }

    fn profiles_of(&self, row: usize) -> impl Iterator<Item = u64> + '_ {
        let d = self.cols[Col::Profiles as usize].as_ref();
        let (start, k) = match (d, self.profile_at.get(row)) {
            (Some(d), Some(&at)) => (at + 1, d.values.get(at).copied().unwrap_or(0) as usize),
            _ => (0, 0),
        };
        d.into_iter().flat_map(move |d| {
            d.values
                .get(start..start + k)
                .unwrap_or(&[])
                .iter()
                .copied()
        })
    }

    /// The rows matching `q`, as a bitmap (`None`: no row).
    pub(super) fn select(
        &mut self,
        q: &FlowQuery,
        whole_span: bool,
    ) -> Result<Option<Vec<bool>>, Damaged> {
        let n = self.len();
        let mut keep = vec![true; n];
        let mut dict_filter = |rows: &mut Self,
                               cols: &[Col],
                               pred: &dyn Fn(&[u8]) -> bool|
         -> Result<bool, Damaged> {
            let mut per_col = Vec::new();
            for c in cols {
                per_col.push((*c, rows.dict_matches(*c, pred)?));
            }
            if per_col.iter().all(|(_, m)| m.is_none()) {
                return Ok(false);
            }
            for (row, k) in keep.iter_mut().enumerate() {
                if !*k {
                    continue;
                }
                let mut hit = false;
                for (c, m) in &per_col {
                    let Some(m) = m else { continue };
                    if *c == Col::Profiles {
                        hit |= rows
                            .profiles_of(row)
                            .any(|i| m.get(i as usize).copied().unwrap_or(false));
                    } else {
                        let i = rows.value(*c, row);
                        hit |= m.get(i as usize).copied().unwrap_or(false);
                    }
                }
                *k = hit;
            }
            Ok(true)
        };
        if let Some(net) = q.host {
            let pred = move |b: &[u8]| ip_of(b).is_some_and(|ip| net.contains(ip));
            if !dict_filter(self, &[Col::ClientIp, Col::ServerIp], &pred)? {
                return Ok(None);
            }
        }
        let named = [
            (Col::L7, q.l7.as_deref()),
            (Col::App, q.app.as_deref()),
            (Col::Profiles, q.profile.as_deref()),
        ];
        for (c, want) in named {
            if let Some(w) = want {
                let pred = move |b: &[u8]| lower_eq(b, w);
                if !dict_filter(self, &[c], &pred)? {
                    return Ok(None);
                }
            }
        }
        if let Some(w) = q.server_name.as_deref() {
            let pred = move |b: &[u8]| name_suffix(b, w);
            if !dict_filter(self, &[Col::ServerName], &pred)? {
                return Ok(None);
            }
        }
        if let Some(p) = q.port {
            self.col(Col::ClientPort)?;
            self.col(Col::ServerPort)?;
            for (row, k) in keep.iter_mut().enumerate() {
                *k &= self.value(Col::ClientPort, row) == u64::from(p)
                    || self.value(Col::ServerPort, row) == u64::from(p);
            }
        }
        if !whole_span {
            self.col(Col::First)?;
            self.col(Col::Duration)?;
            for (row, k) in keep.iter_mut().enumerate() {
                let first = self.value(Col::First, row) as i64;
                let last = first.wrapping_add(self.value(Col::Duration, row) as i64);
                *k &= q.from_us.is_none_or(|f| last >= f) && q.to_us.is_none_or(|t| first < t);
            }
        }
        Ok(keep.iter().any(|k| *k).then_some(keep))
    }

    /// The last packet's time of `row` (after `First` and `Duration` are decoded).
    pub(super) fn last_seen(&mut self, row: usize) -> Result<i64, Damaged> {
        self.col(Col::First)?;
        self.col(Col::Duration)?;
        Ok(
            (self.value(Col::First, row) as i64)
                .wrapping_add(self.value(Col::Duration, row) as i64),
        )
    }

    fn name(&self, c: Col, row: usize) -> Option<&[u8]> {
        self.dict_value(c, self.value(c, row))
    }

    fn text(&self, c: Col, row: usize) -> Option<&str> {
        self.name(c, row).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Row `row` as a stored flow.
    pub(super) fn flow(&mut self, instance: &str, row: usize) -> Result<StoredFlow, Damaged> {
        for c in Col::ALL {
            self.col(c)?;
        }
        let v = |c: Col| self.value(c, row);
        let ip = |c: Col| self.name(c, row).and_then(ip_of).ok_or(Damaged("address"));
        let mac = |c: Col| self.name(c, row).and_then(|b| <[u8; 6]>::try_from(b).ok());
        let first = v(Col::First) as i64;
        let flags = v(Col::TcpFlags);
        let record = FlowRecord {
            l4: l4_name(u8::try_from(v(Col::L4)).map_err(|_| Damaged("l4"))?),
            client_ip: ip(Col::ClientIp)?,
            client_port: u16::try_from(v(Col::ClientPort)).map_err(|_| Damaged("port"))?,
            server_ip: ip(Col::ServerIp)?,
            server_port: u16::try_from(v(Col::ServerPort)).map_err(|_| Damaged("port"))?,
            vlan: v(Col::Vlan)
                .checked_sub(1)
                .and_then(|x| u16::try_from(x).ok()),
            tunnel: self
                .text(Col::Tunnel, row)
                .and_then(Tunnel::from_name)
                .map(Tunnel::name),
            l7: self
                .text(Col::L7, row)
                .and_then(L7::from_name)
                .map_or("Unknown", L7::name),
            app: self.text(Col::App, row).and_then(app_named),
            server_name: self.text(Col::ServerName, row).map(str::to_string),
            alpn: self
                .text(Col::Alpn, row)
                .map(|a| a.split(',').map(str::to_string).collect()),
            client_mac: mac(Col::ClientMac),
            server_mac: mac(Col::ServerMac),
            c2s_packets: v(Col::C2sPackets),
            c2s_bytes: v(Col::C2sBytes),
            s2c_packets: v(Col::S2cPackets),
            s2c_bytes: v(Col::S2cBytes),
            first_seen: first,
            last_seen: first.wrapping_add(v(Col::Duration) as i64),
            c2s_tcp_flags: flags as u8,
            s2c_tcp_flags: (flags >> 8) as u8,
            skip_flow_checks: false,
            export: match self.name(Col::Exporter, row) {
                Some(b) => Some(flowmesh_record::Exported {
                    exporter: ip_of(b).ok_or(Damaged("exporter"))?,
                    in_if: u32::try_from(v(Col::InIf)).map_err(|_| Damaged("in_if"))?,
                    out_if: u32::try_from(v(Col::OutIf)).map_err(|_| Damaged("out_if"))?,
                    sampling: u32::try_from(v(Col::Sampling)).map_err(|_| Damaged("sampling"))?,
                }),
                None => None,
            },
        };
        let profiles = self
            .profiles_of(row)
            .filter_map(|i| self.dict_value(Col::Profiles, i))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        Ok(StoredFlow {
            instance: instance.to_string(),
            record,
            profiles,
        })
    }

    /// Adds the selected rows to a top-N count.
    pub(super) fn count(
        &mut self,
        kind: TopKind,
        keep: &[bool],
        into: &mut HashMap<String, TopEntry>,
    ) -> Result<(), Damaged> {
        for c in [
            Col::C2sBytes,
            Col::S2cBytes,
            Col::C2sPackets,
            Col::S2cPackets,
        ] {
            self.col(c)?;
        }
        let key_cols: &[Col] = match kind {
            TopKind::Hosts | TopKind::Talkers => &[Col::ClientIp, Col::ServerIp],
            TopKind::Apps => &[Col::App, Col::L7],
            TopKind::L7 => &[Col::L7],
            TopKind::Profiles => &[Col::Profiles],
        };
        for c in key_cols {
            self.col(*c)?;
        }
        // Summed per dictionary entry within the block first (one string per key, not per
        // flow): in vectors indexed by entry for names, in a map for addresses and pairs.
        let none = u64::from(u32::MAX);
        let mut local: HashMap<(u64, u64, u8), Sum> = HashMap::new();
        let dict_len = |c: Col| self.cols[c as usize].as_ref().map_or(0, |d| d.dict.len());
        let mut by_entry = [
            vec![Sum::default(); dict_len(key_cols[0])],
            vec![Sum::default(); key_cols.get(1).map_or(0, |c| dict_len(*c))],
        ];
        let by_name = matches!(kind, TopKind::Apps | TopKind::L7 | TopKind::Profiles);
        for (row, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            let add = Sum {
                flows: 1,
                bytes: self.value(Col::C2sBytes, row) + self.value(Col::S2cBytes, row),
                packets: self.value(Col::C2sPackets, row) + self.value(Col::S2cPackets, row),
            };
            if by_name {
                let mut bump = |side: usize, i: u64| {
                    if let Some(e) = by_entry[side].get_mut(i as usize) {
                        e.add(add);
                    }
                };
                match kind {
                    TopKind::Apps => match self.value(Col::App, row) {
                        i if i == none => bump(1, self.value(Col::L7, row)),
                        i => bump(0, i),
                    },
                    TopKind::L7 => bump(0, self.value(Col::L7, row)),
                    _ => {
                        for p in self.profiles_of(row) {
                            bump(0, p);
                        }
                    }
                }
                continue;
            }
            let (c, s) = (
                self.value(Col::ClientIp, row),
                self.value(Col::ServerIp, row),
            );
            if kind == TopKind::Talkers {
                local.entry((c, s, 0)).or_default().add(add);
            } else {
                local.entry((c, 0, 0)).or_default().add(add);
                if self.name(Col::ClientIp, row) != self.name(Col::ServerIp, row) {
                    local.entry((s, 0, 1)).or_default().add(add);
                }
            }
        }
        for (side, sums) in by_entry.iter().enumerate() {
            for (i, e) in sums.iter().enumerate().filter(|(_, e)| e.flows > 0) {
                local.insert((i as u64, 0, side as u8), *e);
            }
        }
        for ((a, b, side), e) in local {
            let text = |c: Col, i: u64| -> String {
                match self.dict_value(c, i) {
                    Some(v) if matches!(c, Col::ClientIp | Col::ServerIp) => {
                        ip_of(v).map_or_else(|| "?".into(), |ip| ip.to_string())
                    }
                    Some(v) => String::from_utf8_lossy(v).into_owned(),
                    None => "Unknown".into(),
                }
            };
            let key = match kind {
                TopKind::Hosts => text([Col::ClientIp, Col::ServerIp][usize::from(side)], a),
                TopKind::Talkers => {
                    format!("{} -> {}", text(Col::ClientIp, a), text(Col::ServerIp, b))
                }
                _ => text(key_cols[usize::from(side)], a),
            };
            let t = into.entry(key).or_insert_with_key(|k| TopEntry {
                key: k.clone(),
                ..TopEntry::default()
            });
            t.flows += e.flows;
            t.bytes += e.bytes;
            t.packets += e.packets;
        }
        Ok(())
    }
}

/// Flows, bytes and packets summed.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    flows: u64,
    bytes: u64,
    packets: u64,
}

impl Sum {
    fn add(&mut self, o: Sum) {
        self.flows += o.flows;
        self.bytes += o.bytes;
        self.packets += o.packets;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_match_by_label_suffix() {
        assert!(name_suffix(b"www.example.com", "example.com"));
        assert!(name_suffix(b"Example.COM", "example.com"));
        assert!(!name_suffix(b"badexample.com", "example.com"));
        assert!(!name_suffix(b"com", "example.com"));
    }
}
