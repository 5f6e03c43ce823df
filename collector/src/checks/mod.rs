//! The checks of ntopng's Policies page, one module each, run on every flow record.

pub mod acl;
pub mod host_policy;

use flowmesh_sensor::flow::FlowRecord;

use crate::alert::Alert;
use crate::policy::Policy;

/// The checks a policy turns on, ready to run.
pub struct Engine {
    acl: Option<acl::AclCheck>,
    host_policy: host_policy::HostPolicyCheck,
    instance: String,
}

impl Engine {
    /// Prepares (indexes) the checks of `policy`; alerts carry `instance`.
    pub fn new(policy: &Policy, instance: &str) -> Self {
        Engine {
            acl: policy.acl.as_ref().map(|rules| acl::AclCheck::new(rules)),
            host_policy: host_policy::HostPolicyCheck::new(&policy.host_policy),
            instance: instance.to_string(),
        }
    }

    /// Runs every check on one flow record; alerts go to `out`.
    pub fn flow(&self, f: &FlowRecord, out: &mut impl FnMut(Alert)) {
        let time = parse_rfc3339_micros(&f.last_seen).unwrap_or(0);
        if let Some(acl) = &self.acl
            && !acl.allows(f)
        {
            out(Alert::about_flow(
                "acl_violation",
                "warning",
                &self.instance,
                f,
                time,
                serde_json::Value::Object(Default::default()),
            ));
        }
        if let Some(reason) = self.host_policy.violation(f) {
            out(Alert::about_flow(
                "host_policy",
                "warning",
                &self.instance,
                f,
                time,
                crate::alert::extra(&[("reason", reason.into())]),
            ));
        }
    }
}

/// Parses the RFC 3339 UTC form flow records use back to µs (records carry their times as
/// text; alerts take the flow's time).
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = if b.get(19) == Some(&b'.') {
        num(20..26).unwrap_or(0)
    } else {
        0
    };
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000) + micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmesh_sensor::flow::rfc3339_micros;

    #[test]
    fn rfc3339_round_trip() {
        for t in [0i64, 1_767_225_600_000_001, 951_782_400_123_456] {
            assert_eq!(parse_rfc3339_micros(&rfc3339_micros(t)), Some(t));
        }
    }
}
