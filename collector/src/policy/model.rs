//! The validated policy: what the checks use.

use std::collections::{BTreeMap, BTreeSet};

use flowmesh_record::DeviceType;

use super::*;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file.
    pub line: usize,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

/// What validation found: errors (the policy is refused) and warnings (it is applied).
#[derive(Debug, Default)]
pub struct Report {
    /// Errors.
    pub errors: Vec<Problem>,
    /// Warnings.
    pub warnings: Vec<Problem>,
}

/// `[devices]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePolicy {
    /// A device silent this long is gone (seconds).
    pub idle_timeout_secs: u64,
    /// New devices seen during this first period become authorized (seconds).
    pub learning_period_secs: u64,
    /// Known devices.
    pub authorized: Vec<AuthorizedDevice>,
}

/// `[[devices.authorized]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedDevice {
    /// Its MAC.
    pub mac: Mac,
    /// A name for alerts.
    pub name: Option<String>,
    /// Alert when it has been silent for `idle_timeout`.
    pub alert_on_disconnect: bool,
}

/// Allowed applications of one device type, as client and as server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSets {
    /// Allowed as client.
    pub client: BTreeSet<String>,
    /// Allowed as server.
    pub server: BTreeSet<String>,
}

/// `[host_policy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    /// Restricted hosts.
    pub restricted: Vec<Cidr>,
    /// Core hosts.
    pub core: Vec<Cidr>,
    /// Whitelisted hosts.
    pub whitelisted: Vec<Cidr>,
}

/// A pool member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMember {
    /// A network.
    Net(Cidr),
    /// A device.
    Mac(Mac),
}

/// `[[pool]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// Networks and MACs.
    pub members: Vec<PoolMember>,
}

/// `[[profile]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// The BPF expression (compiled by libpcap at validation).
    pub bpf: String,
}

/// What a traffic rule watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `interface:NAME`
    Interface(String),
    /// `host:IP`
    Host(std::net::IpAddr),
    /// `host:*`: every host, each on its own.
    AnyHost,
    /// `network:CIDR`
    Network(Cidr),
    /// `vlan:N`
    Vlan(u16),
    /// `pool:NAME`
    Pool(String),
    /// `profile:NAME`
    Profile(String),
    /// `exporter:IP` (flows a NetFlow/IPFIX exporter sent), `exporter:IP:IFINDEX` (those in or
    /// out of one of its interfaces, by SNMP index).
    Exporter(std::net::IpAddr, Option<u32>),
}

/// 5min | hour | day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// Every 5 minutes.
    FiveMin,
    /// Hourly.
    Hour,
    /// Daily, at midnight, over the previous day.
    Day,
}

impl Frequency {
    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Frequency::FiveMin => "5min",
            Frequency::Hour => "hour",
            Frequency::Day => "day",
        }
    }

    /// The period's length, µs.
    pub fn period_micros(self) -> i64 {
        match self {
            Frequency::FiveMin => 300_000_000,
            Frequency::Hour => 3_600_000_000,
            Frequency::Day => 86_400_000_000,
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        [Frequency::FiveMin, Frequency::Hour, Frequency::Day]
            .into_iter()
            .find(|f| f.name() == s)
    }
}

/// What is compared, with its threshold in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Bytes in the period.
    Volume(u64),
    /// Bits per second averaged over the period.
    Throughput(u64),
    /// Percent change from the previous period.
    Percentage(u8),
}

/// `[[traffic_rule]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficRule {
    /// The target as written.
    pub target_text: String,
    /// What it watches.
    pub target: Target,
    /// "total" or a protocol / application name.
    pub metric: String,
    /// How often.
    pub frequency: Frequency,
    /// The threshold.
    pub threshold: Threshold,
    /// true: alert above; false: below.
    pub above: bool,
    /// The value as written.
    pub value_text: String,
}

/// A validated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `[acl]`: None means the ACL check is off.
    pub acl: Option<Vec<AclRule>>,
    /// `[devices]`: None means device tracking is off.
    pub devices: Option<DevicePolicy>,
    /// Manual device types.
    pub device_types: BTreeMap<Mac, DeviceType>,
    /// Per-type application sets replacing the presets.
    pub device_apps: BTreeMap<String, AppSets>,
    /// Host policy.
    pub host_policy: HostPolicy,
    /// Pools.
    pub pools: Vec<Pool>,
    /// Profiles.
    pub profiles: Vec<Profile>,
    /// Traffic rules.
    pub traffic_rules: Vec<TrafficRule>,
    /// `[settings] timezone`: the IANA zone whose midnight (and hour) starts traffic-rule
    /// periods; `None` is UTC.
    pub timezone: Option<String>,
}
