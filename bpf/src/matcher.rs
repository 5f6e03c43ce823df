//! The common tcpdump expressions compiled to a predicate over a flow record's fields, so a
//! traffic profile costs a few comparisons per flow instead of building a frame and running
//! libpcap's filter on it. Anything it does not fully understand — names to resolve, `vlan`,
//! `mask`, lengths, byte offsets, the shorthand `host a or b` — is left to libpcap: [`compile`]
//! returns `None` and the caller falls back. Where it answers, it answers as libpcap would on
//! the frame [`crate::frame_of`] builds (the tests compare the two on many records).
//!
//! Grammar (pcap-filter's precedence: `not` binds tightest; `and` and `or` are equal and
//! associate left to right):
//!
//! ```text
//! expr := term (("and" | "&&" | "or" | "||") term)*
//! term := ("not" | "!") term | "(" expr ")" | prim
//! prim := [ip | ip6] [proto] [src | dst | src or dst | src and dst] (host ADDR | net CIDR | port N | portrange N-M)
//!       | ether [src | dst] host MAC | ip | ip6 | tcp | udp | icmp | icmp6 | (ip | ip6) proto N
//! ```

use std::net::IpAddr;

use flowmesh_record::FlowRecord;

/// Which end of the flow a qualifier names: the client is the frame's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Src,
    Dst,
    Either,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prim {
    /// `ip` (4) or `ip6` (6).
    Family(u8),
    /// `tcp`, `udp`, `ip proto N`; `family` restricts to IPv4 or IPv6 (`icmp` is IPv4's).
    Proto {
        family: Option<u8>,
        proto: u8,
    },
    Host {
        family: Option<u8>,
        dir: Dir,
        addr: IpAddr,
    },
    Net {
        family: Option<u8>,
        dir: Dir,
        net: IpAddr,
        len: u8,
    },
    Ports {
        proto: Option<u8>,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    Ether {
        dir: Dir,
        mac: [u8; 6],
    },
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Both.
    And(Box<Matcher>, Box<Matcher>),
    /// Either.
    Or(Box<Matcher>, Box<Matcher>),
    /// Not.
    Not(Box<Matcher>),
    /// A primitive.
    #[allow(private_interfaces)]
    Prim(Prim),
}

/// The matcher of `expr`, or `None` when libpcap must judge it.
pub fn compile(expr: &str) -> Option<Matcher> {
    let tokens = tokenize(expr)?;
    let mut p = Parser { t: &tokens, i: 0 };
    let m = p.expr()?;
    (p.i == tokens.len()).then_some(m)
}

fn tokenize(expr: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => flush(&mut cur, &mut out),
            '(' | ')' | '!' => {
                flush(&mut cur, &mut out);
                out.push(c.to_string());
            }
            '&' | '|' => {
                flush(&mut cur, &mut out);
                if chars.next() != Some(c) {
                    return None;
                }
                out.push(if c == '&' { "and" } else { "or" }.into());
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '-' | '_') => {
                cur.push(c.to_ascii_lowercase())
            }
            _ => return None,
        }
    }
    flush(&mut cur, &mut out);
    Some(out)
}

struct Parser<'a> {
    t: &'a [String],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).map(String::as_str)
    }

    fn next(&mut self) -> Option<&str> {
        let t = self.t.get(self.i)?;
        self.i += 1;
        Some(t)
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek() == Some(word) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<Matcher> {
        let mut left = self.term()?;
        loop {
            if self.eat("and") {
                left = Matcher::And(Box::new(left), Box::new(self.term()?));
            } else if self.eat("or") {
                left = Matcher::Or(Box::new(left), Box::new(self.term()?));
            } else {
                return Some(left);
            }
        }
    }

    fn term(&mut self) -> Option<Matcher> {
        if self.eat("not") || self.eat("!") {
            return Some(Matcher::Not(Box::new(self.term()?)));
        }
        if self.eat("(") {
            let inner = self.expr()?;
            return self.eat(")").then_some(inner);
        }
        self.prim().map(Matcher::Prim)
    }

    fn dir(&mut self) -> Dir {
        let dir = if self.eat("src") {
            Dir::Src
        } else if self.eat("dst") {
            Dir::Dst
        } else {
            return Dir::Either;
        };
        // `src or dst` / `src and dst` as one qualifier, when a keyword follows.
        let other = if dir == Dir::Src { "dst" } else { "src" };
        let next = self.t.get(self.i + 1).map(String::as_str);
        match (self.peek(), next) {
            (Some("or"), Some(o)) if o == other => {
                self.i += 2;
                Dir::Either
            }
            (Some("and"), Some(o)) if o == other => {
                self.i += 2;
                Dir::Both
            }
            _ => dir,
        }
    }

    fn prim(&mut self) -> Option<Prim> {
        if self.eat("ether") {
            let dir = self.dir();
            if !self.eat("host") {
                return None;
            }
            return Some(Prim::Ether {
                dir,
                mac: parse_mac(self.next()?)?,
            });
        }
        let family = if self.eat("ip") {
            Some(4)
        } else if self.eat("ip6") {
            Some(6)
        } else {
            None
        };
        if family.is_some() && self.eat("proto") {
            let proto = proto_number(self.next()?)?;
            return Some(Prim::Proto { family, proto });
        }
        let proto = match self.peek() {
            Some("tcp") => Some(6),
            Some("udp") => Some(17),
            Some("icmp") if family != Some(6) => Some(1),
            Some("icmp6") if family != Some(4) => Some(58),
            _ => None,
        };
        if proto.is_some() {
            self.i += 1;
        }
        let dir = self.dir();
        match self.peek() {
            Some("host") if proto.is_none() => {
                self.i += 1;
                let addr: IpAddr = self.next()?.parse().ok()?;
                family_fits(family, addr).then_some(Prim::Host { family, dir, addr })
            }
            Some("net") if proto.is_none() => {
                self.i += 1;
                let (net, len) = parse_net(self.next()?)?;
                family_fits(family, net).then_some(Prim::Net {
                    family,
                    dir,
                    net,
                    len,
                })
            }
            Some("port") if matches!(proto, None | Some(6) | Some(17)) && family.is_none() => {
                self.i += 1;
                let port = self.next()?.parse().ok()?;
                Some(Prim::Ports {
                    proto,
                    dir,
                    lo: port,
                    hi: port,
                })
            }
            Some("portrange") if matches!(proto, None | Some(6) | Some(17)) && family.is_none() => {
                self.i += 1;
                let (lo, hi) = self.next()?.split_once('-')?;
                let (lo, hi): (u16, u16) = (lo.parse().ok()?, hi.parse().ok()?);
                Some(Prim::Ports {
                    proto,
                    dir,
                    lo: lo.min(hi),
                    hi: lo.max(hi),
                })
            }
            _ if dir == Dir::Either => match (family, proto) {
                (f, Some(p)) => Some(Prim::Proto {
                    family: f.or(if p == 1 {
                        Some(4)
                    } else if p == 58 {
                        Some(6)
                    } else {
                        None
                    }),
                    proto: p,
                }),
                (Some(f), None) => Some(Prim::Family(f)),
                (None, None) => None,
            },
            _ => None,
        }
    }
}

fn family_fits(family: Option<u8>, addr: IpAddr) -> bool {
    match family {
        Some(4) => addr.is_ipv4(),
        Some(6) => addr.is_ipv6(),
        _ => true,
    }
}

fn proto_number(word: &str) -> Option<u8> {
    match word {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmp6" => Some(58),
        n => n.parse().ok(),
    }
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut out {
        let h = parts.next()?;
        if h.is_empty() || h.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(h, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a whole address. Host bits set: libpcap refuses it at
/// validation, so this never sees one judged.
fn parse_net(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        // A dotted prefix such as `10.1` means a /16 in pcap: leave it to libpcap.
        None => {
            let a: IpAddr = text.parse().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The fields of a record the matcher reads, as the synthesized frame carries them: taken once
/// per record, then tested by every filter.
#[derive(Debug, Clone)]
pub struct View {
    family: u8,
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    smac: [u8; 6],
    dmac: [u8; 6],
}

impl View {
    /// The client's and the server's port.
    pub fn ports(&self) -> (u16, u16) {
        (self.sport, self.dport)
    }

    /// The view of `f`, or `None` when this record must go to libpcap (a VLAN tag, or addresses
    /// of two families: frames the matcher does not model).
    pub fn of(f: &FlowRecord) -> Option<View> {
        if f.vlan.is_some() || f.client_ip.is_ipv4() != f.server_ip.is_ipv4() {
            return None;
        }
        Some(View {
            family: if f.client_ip.is_ipv4() { 4 } else { 6 },
            proto: flowmesh_record::l4_number(f.l4).unwrap_or(0),
            src: f.client_ip,
            dst: f.server_ip,
            sport: f.client_port,
            dport: f.server_port,
            smac: f.client_mac.unwrap_or_default(),
            dmac: f.server_mac.unwrap_or_default(),
        })
    }
}

impl Matcher {
    /// Port ranges one of which every matching record has at one end (its client or server
    /// port), or `None` when a match needs no port (`host X`, `not port 53`, ...): lets a set of
    /// profiles be indexed by port, so a flow is tested only against those that can match it.
    pub fn port_guard(&self) -> Option<Vec<(u16, u16)>> {
        match self {
            Matcher::Prim(Prim::Ports { lo, hi, .. }) => Some(vec![(*lo, *hi)]),
            Matcher::Or(a, b) => {
                let mut g = a.port_guard()?;
                g.extend(b.port_guard()?);
                Some(g)
            }
            // Both must hold: either side's guard is one; the narrower skips more.
            Matcher::And(a, b) => match (a.port_guard(), b.port_guard()) {
                (Some(x), Some(y)) => Some(if width(&x) <= width(&y) { x } else { y }),
                (x, y) => x.or(y),
            },
            Matcher::Not(_) | Matcher::Prim(_) => None,
        }
    }

    /// Whether the record's frame matches, or `None` when libpcap must judge this record.
    pub fn matches(&self, f: &FlowRecord) -> Option<bool> {
        View::of(f).map(|v| self.eval(&v))
    }

    /// Whether a record with this view matches.
    pub fn eval(&self, v: &View) -> bool {
        match self {
            Matcher::And(a, b) => a.eval(v) && b.eval(v),
            Matcher::Or(a, b) => a.eval(v) || b.eval(v),
            Matcher::Not(a) => !a.eval(v),
            Matcher::Prim(p) => p.eval(v),
        }
    }
}

fn width(ranges: &[(u16, u16)]) -> u32 {
    ranges.iter().map(|(lo, hi)| u32::from(*hi - *lo) + 1).sum()
}

fn by_dir<T>(dir: Dir, src: T, dst: T, test: impl Fn(T) -> bool) -> bool {
    match dir {
        Dir::Src => test(src),
        Dir::Dst => test(dst),
        Dir::Either => test(src) || test(dst),
        Dir::Both => test(src) && test(dst),
    }
}

impl Prim {
    fn eval(&self, v: &View) -> bool {
        let family_ok = |f: &Option<u8>| f.is_none_or(|f| f == v.family);
        match self {
            Prim::Family(f) => *f == v.family,
            Prim::Proto { family, proto } => family_ok(family) && *proto == v.proto,
            Prim::Host { family, dir, addr } => {
                family_ok(family) && by_dir(*dir, v.src, v.dst, |a| a == *addr)
            }
            Prim::Net {
                family,
                dir,
                net,
                len,
            } => family_ok(family) && by_dir(*dir, v.src, v.dst, |a| in_net(a, *net, *len)),
            Prim::Ports { proto, dir, lo, hi } => {
                // Only TCP and UDP frames carry ports here (SCTP's would, but it is built
                // without a header).
                let carries = matches!(v.proto, 6 | 17);
                carries
                    && proto.is_none_or(|p| p == v.proto)
                    && by_dir(*dir, v.sport, v.dport, |p| (*lo..=*hi).contains(&p))
            }
            Prim::Ether { dir, mac } => by_dir(*dir, v.smac, v.dmac, |m| m == *mac),
        }
    }
}
