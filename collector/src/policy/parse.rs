//! Reading and validating the TOML policy file into the model, every problem with its line.

use std::collections::BTreeMap;

use flowmesh_record::DeviceType;
use serde::Deserialize;
use toml::Spanned;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    acl: Option<RawAcl>,
    devices: Option<RawDevices>,
    #[serde(default)]
    device_types: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    device_apps: BTreeMap<Spanned<String>, RawApps>,
    host_policy: Option<RawHostPolicy>,
    #[serde(default)]
    pool: Vec<RawPool>,
    #[serde(default)]
    profile: Vec<RawProfile>,
    #[serde(default)]
    traffic_rule: Vec<RawRule>,
    settings: Option<RawSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    timezone: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcl {
    #[serde(default)]
    rules: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevices {
    idle_timeout: Option<Spanned<String>>,
    learning_period: Option<Spanned<String>>,
    #[serde(default)]
    authorized: Vec<RawAuthorized>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorized {
    mac: Spanned<String>,
    name: Option<String>,
    #[serde(default)]
    alert_on_disconnect: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApps {
    #[serde(default)]
    client: Vec<Spanned<String>>,
    #[serde(default)]
    server: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostPolicy {
    #[serde(default)]
    restricted: Vec<Spanned<String>>,
    #[serde(default)]
    core: Vec<Spanned<String>>,
    #[serde(default)]
    whitelisted: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    name: Spanned<String>,
    #[serde(default)]
    members: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Spanned<String>,
    bpf: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    target: Spanned<String>,
    metric: Spanned<String>,
    frequency: Spanned<String>,
    kind: Spanned<String>,
    bound: Spanned<String>,
    value: Spanned<String>,
}

/// Byte offset → 1-based line.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Ctx<'a> {
    text: &'a str,
    report: Report,
}

impl Ctx<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let line = line_of(self.text, at.span().start);
        self.report.errors.push(Problem {
            line,
            message: message.into(),
        });
    }
    fn parse<T, U>(
        &mut self,
        v: &Spanned<T>,
        f: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        match f(v.get_ref()) {
            Ok(u) => Some(u),
            Err(e) => {
                self.err(v, e);
                None
            }
        }
    }
}

/// Parses and validates a policy file's text. `Ok` carries the policy and any warnings; `Err`
/// carries every error found (and the warnings).
pub fn parse(text: &str) -> Result<(Policy, Report), Report> {
    let raw: RawPolicy = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            return Err(Report {
                errors: vec![Problem {
                    line,
                    message: e.message().to_string(),
                }],
                warnings: vec![],
            });
        }
    };
    let mut cx = Ctx {
        text,
        report: Report::default(),
    };
    let known = flowmesh_record::is_known_protocol;
    let mut policy = Policy::default();

    if let Some(acl) = raw.acl {
        let mut rules = Vec::new();
        match &acl.rules {
            Some(r) => {
                // A multi-line string starts on the line after its opening quotes.
                let first = line_of(text, r.span().start)
                    + usize::from(
                        text[r.span()].starts_with("\"\"\"") || text[r.span()].starts_with("'''"),
                    );
                let (ok, bad) = acl::parse_lines(r.get_ref(), known);
                let had_lines = !bad.is_empty();
                for (n, e) in bad {
                    cx.report.errors.push(Problem {
                        line: first + n - 1,
                        message: e,
                    });
                }
                rules = ok.into_iter().map(|(_, r)| r).collect();
                if rules.is_empty() && !had_lines {
                    let line = line_of(text, r.span().start);
                    cx.report.warnings.push(Problem {
                        line,
                        message: "the ACL has no rules: every flow violates it (as in ntopng)"
                            .into(),
                    });
                }
            }
            None => cx.report.warnings.push(Problem {
                line: 1,
                message: "[acl] without rules: every flow violates it (as in ntopng)".into(),
            }),
        }
        policy.acl = Some(rules);
    }

    if let Some(d) = raw.devices {
        let idle = d
            .idle_timeout
            .as_ref()
            .and_then(|v| cx.parse(v, |s| units::duration_secs(s)))
            .unwrap_or(300);
        let learning = d
            .learning_period
            .as_ref()
            .and_then(|v| cx.parse(v, |s| units::duration_secs(s)))
            .unwrap_or(0);
        let mut authorized = Vec::new();
        for a in d.authorized {
            if let Some(mac) = cx.parse(&a.mac, |s| s.parse::<Mac>()) {
                authorized.push(AuthorizedDevice {
                    mac,
                    name: a.name,
                    alert_on_disconnect: a.alert_on_disconnect,
                });
            }
        }
        policy.devices = Some(DevicePolicy {
            idle_timeout_secs: idle,
            learning_period_secs: learning,
            authorized,
        });
    }

    for (mac, kind) in &raw.device_types {
        let m = cx.parse(mac, |s| s.parse::<Mac>());
        let t = cx.parse(kind, |s| {
            DeviceType::parse(s).ok_or_else(|| format!("unknown device type {s:?}"))
        });
        if let (Some(m), Some(t)) = (m, t) {
            policy.device_types.insert(m, t);
        }
    }

    for (kind, apps) in &raw.device_apps {
        let t = cx.parse(kind, |s| {
            DeviceType::parse(s)
                .map(|_| s.to_ascii_lowercase())
                .ok_or_else(|| format!("unknown device type {s:?}"))
        });
        let mut sets = AppSets::default();
        for (names, set) in [
            (&apps.client, &mut sets.client),
            (&apps.server, &mut sets.server),
        ] {
            for n in names {
                if let Some(n) = cx.parse(n, |s| {
                    if known(s) {
                        Ok(s.clone())
                    } else {
                        Err(format!("unknown application {s:?}"))
                    }
                }) {
                    set.insert(n);
                }
            }
        }
        if let Some(t) = t {
            policy.device_apps.insert(t, sets);
        }
    }

    if let Some(tz) = raw.settings.and_then(|s| s.timezone) {
        policy.timezone = cx.parse(&tz, |name| {
            jiff::tz::TimeZone::get(name)
                .map(|_| name.to_string())
                .map_err(|_| {
                    format!(
                        "timezone {name:?}: not an IANA time zone (e.g. \"Europe/Rome\", \"UTC\")"
                    )
                })
        });
    }

    if let Some(h) = raw.host_policy {
        let mut list = |v: &[Spanned<String>]| {
            v.iter()
                .filter_map(|s| cx.parse(s, |t| t.parse::<Cidr>()))
                .collect::<Vec<_>>()
        };
        policy.host_policy = HostPolicy {
            restricted: list(&h.restricted),
            core: list(&h.core),
            whitelisted: list(&h.whitelisted),
        };
    }

    for p in &raw.pool {
        let members = p
            .members
            .iter()
            .filter_map(|m| {
                cx.parse(m, |s| {
                    s.parse::<Mac>()
                        .map(PoolMember::Mac)
                        .or_else(|_| s.parse::<Cidr>().map(PoolMember::Net))
                        .map_err(|_| {
                            format!("pool member {s:?} is neither a MAC, an IP nor a CIDR")
                        })
                })
            })
            .collect();
        if policy
            .pools
            .iter()
            .any(|q: &Pool| q.name == *p.name.get_ref())
        {
            cx.err(
                &p.name,
                format!("pool {:?} is defined twice", p.name.get_ref()),
            );
        }
        policy.pools.push(Pool {
            name: p.name.get_ref().clone(),
            members,
        });
    }

    for p in &raw.profile {
        if cx
            .parse(&p.bpf, |s| {
                flowmesh_bpf::compile_bpf(s)
                    .map_err(|e| format!("BPF {s:?} rejected by libpcap: {e}"))
            })
            .is_some()
        {
            policy.profiles.push(Profile {
                name: p.name.get_ref().clone(),
                bpf: p.bpf.get_ref().clone(),
            });
        }
    }

    for r in &raw.traffic_rule {
        let pools: Vec<String> = policy.pools.iter().map(|p| p.name.clone()).collect();
        let profiles: Vec<String> = raw
            .profile
            .iter()
            .map(|p| p.name.get_ref().clone())
            .collect();
        let target = cx.parse(&r.target, |s| parse_target(s, &pools, &profiles));
        let metric = cx.parse(&r.metric, |s| {
            if s == "total" || known(s) {
                Ok(s.clone())
            } else {
                Err(format!(
                    "metric {s:?} is neither \"total\" nor a known application"
                ))
            }
        });
        let frequency = cx.parse(&r.frequency, |s| {
            Frequency::parse(s).ok_or_else(|| format!("frequency {s:?}: one of 5min, hour, day"))
        });
        let above = cx.parse(&r.bound, |s| match s.as_str() {
            "above" => Ok(true),
            "below" => Ok(false),
            _ => Err(format!("bound {s:?}: above or below")),
        });
        let kind = r.kind.get_ref().clone();
        let threshold = match kind.as_str() {
            "volume" => cx.parse(&r.value, |s| units::volume_bytes(s).map(Threshold::Volume)),
            "throughput" => cx.parse(&r.value, |s| {
                units::throughput_bps(s).map(Threshold::Throughput)
            }),
            "percentage" => cx.parse(&r.value, |s| {
                units::percentage(s).map(Threshold::Percentage)
            }),
            _ => {
                cx.err(
                    &r.kind,
                    format!("kind {kind:?}: volume, throughput or percentage"),
                );
                None
            }
        };
        if let (Some(target), Some(metric), Some(frequency), Some(above), Some(threshold)) =
            (target, metric, frequency, above, threshold)
        {
            policy.traffic_rules.push(TrafficRule {
                target_text: r.target.get_ref().clone(),
                target,
                metric,
                frequency,
                threshold,
                above,
                value_text: r.value.get_ref().clone(),
            });
        }
    }

    cx.report.errors.sort_by_key(|p| p.line);
    if cx.report.errors.is_empty() {
        Ok((policy, cx.report))
    } else {
        Err(cx.report)
    }
}

fn parse_target(s: &str, pools: &[String], profiles: &[String]) -> Result<Target, String> {
    let (kind, arg) = s.split_once(':').ok_or_else(|| {
        format!(
            "target {s:?}: KIND:VALUE (interface, host, network, vlan, pool, profile, exporter)"
        )
    })?;
    let ip = |a: &str| {
        a.parse::<std::net::IpAddr>()
            .map_err(|_| format!("target {s:?}: {a:?} is not an IP address"))
    };
    Ok(match kind {
        "interface" if !arg.is_empty() => Target::Interface(arg.into()),
        "host" if arg == "*" => Target::AnyHost,
        "host" => Target::Host(ip(arg)?),
        "network" => Target::Network(arg.parse()?),
        "vlan" => Target::Vlan(
            arg.parse::<u16>()
                .ok()
                .filter(|v| *v < 4096)
                .ok_or_else(|| format!("target {s:?}: VLAN 0-4095"))?,
        ),
        "pool" if pools.iter().any(|p| p == arg) => Target::Pool(arg.into()),
        "pool" => return Err(format!("target {s:?}: no [[pool]] named {arg:?}")),
        "profile" if profiles.iter().any(|p| p == arg) => Target::Profile(arg.into()),
        "profile" => return Err(format!("target {s:?}: no [[profile]] named {arg:?}")),
        "exporter" => match arg.parse::<std::net::IpAddr>() {
            Ok(a) => Target::Exporter(a, None),
            // `IP:IFINDEX` (an IPv6 address with an index: `[2001:db8::1]:3`).
            Err(_) => {
                let (a, index) = arg
                    .rsplit_once(':')
                    .ok_or_else(|| format!("target {s:?}: exporter:IP or exporter:IP:IFINDEX"))?;
                let index = index
                    .parse::<u32>()
                    .map_err(|_| format!("target {s:?}: {index:?} is not an interface index"))?;
                Target::Exporter(
                    ip(a.trim_start_matches('[').trim_end_matches(']'))?,
                    Some(index),
                )
            }
        },
        _ => {
            return Err(format!(
                "unknown target {s:?} (interface:NAME, host:IP, host:*, network:CIDR, vlan:N, pool:NAME, profile:NAME, exporter:IP, exporter:IP:IFINDEX)"
            ));
        }
    })
}
