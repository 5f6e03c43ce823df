//! ACL rules in ntopng's grammar, `PROTOCOL;CLIENT;SERVER;PORT|APPLICATION`:
//! ARP takes protocol and client MAC only; TCP/UDP take exactly one of a port (`53`, `1-100`,
//! `*` or `all`, any case) or an application; other protocols take protocol, client, server.

use std::fmt;

use super::net::{Endpoint, Mac};

/// What a TCP/UDP rule's last field says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// `*` / `all`: any port.
    AnyPort,
    /// A port range (a single port is `n-n`).
    Ports(u16, u16),
    /// An application or protocol name (nDPI spelling).
    App(String),
}

/// One ACL rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclRule {
    /// `ARP;MAC`
    Arp(Mac),
    /// `TCP|UDP;CLIENT;SERVER;PORT|APP`
    Transport {
        /// "TCP" or "UDP".
        proto: String,
        /// Client side.
        client: Endpoint,
        /// Server side.
        server: Endpoint,
        /// Port or application.
        service: Service,
    },
    /// `ICMP;CLIENT;SERVER` and other protocols.
    Other {
        /// Protocol name, uppercase (ICMP, ICMPV6, GRE, ...).
        proto: String,
        /// Client side.
        client: Endpoint,
        /// Server side.
        server: Endpoint,
    },
}

/// Parses one rule; `known_app` says whether a name is an application flowmesh recognises.
pub fn parse_rule(line: &str, known_app: impl Fn(&str) -> bool) -> Result<AclRule, String> {
    let fields: Vec<&str> = line.split(';').map(str::trim).collect();
    let proto = fields[0].to_ascii_uppercase();
    let endpoint = |i: usize, what: &str| {
        fields[i]
            .parse::<Endpoint>()
            .map_err(|e| format!("{what}: {e}"))
    };
    match proto.as_str() {
        "ARP" => {
            if fields.len() != 2 {
                return Err(format!(
                    "ARP rules are ARP;MAC, this one has {} fields",
                    fields.len()
                ));
            }
            Ok(AclRule::Arp(fields[1].parse()?))
        }
        "TCP" | "UDP" => {
            if fields.len() != 4 {
                return Err(format!(
                    "{proto} rules are {proto};CLIENT;SERVER;PORT|APPLICATION, this one has {} fields",
                    fields.len()
                ));
            }
            let last = fields[3];
            let service = if last == "*" || last.eq_ignore_ascii_case("all") {
                Service::AnyPort
            } else if last.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                let (a, b) = last.split_once('-').unwrap_or((last, last));
                let port = |p: &str| {
                    p.trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|&p| p > 0)
                        .ok_or_else(|| format!("port {p:?} must be 1-65535"))
                };
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    return Err(format!("port range {last} is reversed"));
                }
                Service::Ports(a, b)
            } else if known_app(last) {
                Service::App(last.to_string())
            } else {
                return Err(format!(
                    "unknown application {last:?} (use nDPI's names: HTTP, TLS, DNS, ...)"
                ));
            };
            Ok(AclRule::Transport {
                proto,
                client: endpoint(1, "client")?,
                server: endpoint(2, "server")?,
                service,
            })
        }
        // Any other IP protocol, spelled as flow records spell it (nDPI's name, else its number).
        p if flowmesh_record::l4_number(p).is_some() => {
            if fields.len() != 3 {
                return Err(format!(
                    "{p} rules are {p};CLIENT;SERVER, this one has {} fields",
                    fields.len()
                ));
            }
            Ok(AclRule::Other {
                proto,
                client: endpoint(1, "client")?,
                server: endpoint(2, "server")?,
            })
        }
        "" => Err("empty protocol".into()),
        p => Err(format!(
            "unknown protocol {p:?} (ARP, TCP, UDP, ICMP, ICMPV6, GRE, ... or an IP protocol number without a name, e.g. 254)"
        )),
    }
}

impl fmt::Display for AclRule {
    /// The rule as an ntopng text line (export).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclRule::Arp(m) => write!(f, "ARP;{m}"),
            AclRule::Transport {
                proto,
                client,
                server,
                service,
            } => {
                let last = match service {
                    Service::AnyPort => "*".to_string(),
                    Service::Ports(a, b) if a == b => a.to_string(),
                    Service::Ports(a, b) => format!("{a}-{b}"),
                    Service::App(n) => n.clone(),
                };
                write!(f, "{proto};{client};{server};{last}")
            }
            AclRule::Other {
                proto,
                client,
                server,
            } => write!(f, "{proto};{client};{server}"),
        }
    }
}

/// Rules with their line numbers, and errors with theirs.
pub type Parsed = (Vec<(usize, AclRule)>, Vec<(usize, String)>);

/// Parses ntopng's plain-text rule lines (import); blank lines and `#` comments are skipped.
/// Every bad line is reported as (1-based line number within `text`, reason).
pub fn parse_lines(text: &str, known_app: impl Fn(&str) -> bool + Copy) -> Parsed {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match parse_rule(l, known_app) {
            Ok(r) => rules.push((i + 1, r)),
            Err(e) => errors.push((i + 1, format!("ACL rule {l:?}: {e}"))),
        }
    }
    (rules, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(a: &str) -> bool {
        ["HTTP", "TLS", "DNS"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(a))
    }

    #[test]
    fn every_form_of_the_grammar() {
        let cases = [
            (
                "UDP;192.168.1.0/24;8.8.8.8;53",
                "UDP;192.168.1.0/24;8.8.8.8;53",
            ),
            ("TCP;192.168.1.0/24;*;443", "TCP;192.168.1.0/24;*;443"),
            (
                "TCP;192.168.1.20;10.0.0.5;HTTP",
                "TCP;192.168.1.20;10.0.0.5;HTTP",
            ),
            ("ARP;00:11:22:33:44:55", "ARP;00:11:22:33:44:55"),
            (
                "ICMP;192.168.1.20;192.168.1.1",
                "ICMP;192.168.1.20;192.168.1.1",
            ),
            ("tcp;*;*;ALL", "TCP;*;*;*"),
            ("udp;10.0.0.0/8;*;1-100", "UDP;10.0.0.0/8;*;1-100"),
            ("TCP;*;*;All", "TCP;*;*;*"),
            ("pgm;*;224.0.0.0/4", "PGM;*;224.0.0.0/4"),
            ("254;10.0.0.0/8;*", "254;10.0.0.0/8;*"),
        ];
        for (input, export) in cases {
            let rule = parse_rule(input, known).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(rule.to_string(), export);
            assert_eq!(
                parse_rule(&rule.to_string(), known).unwrap(),
                rule,
                "round trip of {input}"
            );
        }
    }

    #[test]
    fn bad_rules_say_why() {
        for (input, why) in [
            ("TCP;*;*", "fields"),
            ("TCP;*;*;NOPE", "unknown application"),
            ("TCP;*;*;70000", "1-65535"),
            ("TCP;*;*;100-1", "reversed"),
            ("UDP;300.1.1.1;*;53", "client"),
            ("UDP;*;10.0.0.0/99;53", "server"),
            ("ARP;00:11", "MAC"),
            ("ARP;00:11:22:33:44:55;*", "fields"),
            ("ICMP;*;*;80", "fields"),
            ("FOO;*;*", "unknown protocol"),
            ("256;*;*", "unknown protocol"),
            ("6;*;*", "unknown protocol"),
        ] {
            let e = parse_rule(input, known).unwrap_err();
            assert!(e.contains(why), "{input}: {e}");
        }
    }

    #[test]
    fn import_reports_line_numbers() {
        let (rules, errors) = parse_lines(
            "# office\nTCP;*;*;443\n\nUDP;*;*;nope\nARP;00:11:22:33:44:55\n",
            known,
        );
        assert_eq!(rules.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 4);
    }
}
