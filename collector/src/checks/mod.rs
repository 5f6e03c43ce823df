//! The checks of ntopng's Policies page, one module each, run on every flow record.

pub mod acl;
pub mod blacklist;
pub mod calendar;
pub mod device_apps;
pub mod devices;
pub mod host_policy;
pub mod order;
pub mod profiles;
pub mod traffic_rules;

use flowmesh_record::FlowRecord;

use crate::alert::Alert;
use crate::policy::Policy;

/// The checks a policy turns on, ready to run.
pub struct Engine {
    acl: Option<acl::AclCheck>,
    host_policy: host_policy::HostPolicyCheck,
    devices: Option<devices::DeviceCheck>,
    device_types: std::collections::BTreeMap<crate::policy::Mac, flowmesh_record::DeviceType>,
    device_apps: Option<device_apps::DeviceApps>,
    profiles: profiles::Profiles,
    /// Every profile of the policy: what stored flows and per-profile series are tagged with.
    all_profiles: profiles::Profiles,
    /// The watched profiles a flow matched (kept to reuse its allocation).
    tags: Vec<&'static str>,
    traffic: traffic_rules::TrafficRules,
    /// The instance's batches as they come: a watermark counts once the batches before it did.
    order: order::BatchOrder,
    instance: String,
    now: i64,
    /// MACs already reported for ARP outside the ACL (once each).
    arp_reported: std::collections::HashSet<[u8; 6]>,
}

/// The sizes of an engine's bounded state (device tracking, `host:*` series) and what the
/// bounds made it drop; shown by `flowmesh instances` and logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// MACs tracked now.
    pub devices_tracked: u64,
    /// MACs forgotten to stay within the bound, ever.
    pub devices_evicted: u64,
    /// Traffic-rule series held now.
    pub series: u64,
    /// Host series not counted because a rule was at its bound, ever.
    pub series_dropped: u64,
    /// Records that came after their traffic-rule period was judged, ever (in the timeseries,
    /// too late for a rule).
    pub late_records: u64,
    /// Stretches of empty traffic-rule periods skipped (a watermark far ahead), ever.
    pub periods_skipped: u64,
    /// Instances whose watermark waits now for an earlier batch (redelivered later).
    pub watermarks_waiting: u64,
    /// Batches that never came and were given up on (see [`order`]), ever.
    pub batches_given_up: u64,
}

impl std::ops::AddAssign for Bounds {
    fn add_assign(&mut self, o: Bounds) {
        self.devices_tracked += o.devices_tracked;
        self.devices_evicted += o.devices_evicted;
        self.series += o.series;
        self.series_dropped += o.series_dropped;
        self.late_records += o.late_records;
        self.periods_skipped += o.periods_skipped;
        self.watermarks_waiting += o.watermarks_waiting;
        self.batches_given_up += o.batches_given_up;
    }
}

impl Engine {
    /// Prepares (indexes) the checks of `policy`; alerts carry `instance`.
    pub fn new(policy: &Policy, instance: &str) -> Self {
        let apps_on = !policy.device_types.is_empty() || !policy.device_apps.is_empty();
        Engine {
            acl: policy.acl.as_ref().map(|rules| acl::AclCheck::new(rules)),
            host_policy: host_policy::HostPolicyCheck::new(&policy.host_policy),
            devices: policy.devices.as_ref().map(devices::DeviceCheck::new),
            device_types: policy.device_types.clone(),
            device_apps: apps_on.then(|| device_apps::DeviceApps::new(&policy.device_apps)),
            // Only profiles a traffic rule watches need running on each flow.
            profiles: profiles::Profiles::new(
                &policy
                    .profiles
                    .iter()
                    .filter(|p| {
                        policy
                            .traffic_rules
                            .iter()
                            .any(|r| r.target == crate::policy::Target::Profile(p.name.clone()))
                    })
                    .cloned()
                    .collect::<Vec<_>>(),
            ),
            all_profiles: profiles::Profiles::new(&policy.profiles),
            tags: Vec::new(),
            traffic: traffic_rules::TrafficRules::new(
                &policy.traffic_rules,
                &policy.pools,
                calendar::Calendar::new(policy.timezone.as_deref()),
            ),
            order: order::BatchOrder::default(),
            instance: instance.to_string(),
            now: i64::MIN,
            arp_reported: Default::default(),
        }
    }

    /// Switches to a new policy. What the checks learned (devices seen, traffic counted in the
    /// current periods, ARP senders reported) is kept where the part of the policy it depends
    /// on did not change, so an unrelated edit does not reset them.
    pub fn reconfigure(&mut self, old: &Policy, new: &Policy) {
        let mut fresh = Engine::new(new, &self.instance);
        fresh.now = self.now;
        // The batch order is the sensor's, whatever the policy.
        std::mem::swap(&mut fresh.order, &mut self.order);
        if old.devices == new.devices {
            std::mem::swap(&mut fresh.devices, &mut self.devices);
        }
        if old.traffic_rules == new.traffic_rules
            && old.pools == new.pools
            && old.timezone == new.timezone
        {
            std::mem::swap(&mut fresh.traffic, &mut self.traffic);
        }
        if old.acl == new.acl {
            std::mem::swap(&mut fresh.arp_reported, &mut self.arp_reported);
        }
        *self = fresh;
    }

    /// An ARP packet's sender: outside the ACL's `ARP;MAC` rules it raises
    /// `acl_violation_arp`, once per MAC.
    pub fn arp(
        &mut self,
        mac: [u8; 6],
        ip: std::net::Ipv4Addr,
        time: i64,
        out: &mut impl FnMut(Alert),
    ) {
        let Some(acl) = &self.acl else { return };
        // Bounded like device tracking: past the bound the memory of who was reported starts
        // over (those MACs may alert once more) instead of growing with a flood.
        if self.arp_reported.len() >= devices::MAX_TRACKED {
            self.arp_reported.clear();
        }
        if !flowmesh_link::addr::is_unicast(&mac)
            || acl.allows_arp(&mac)
            || !self.arp_reported.insert(mac)
        {
            return;
        }
        out(Alert::new(
            "acl_violation_arp",
            "warning",
            &self.instance,
            time,
            serde_json::json!({"mac": crate::policy::Mac(mac).to_string(), "ip": ip}),
        ));
    }

    /// What the bounded parts of the checks hold and had to let go.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            devices_tracked: self.devices.as_ref().map_or(0, |d| d.tracked() as u64),
            devices_evicted: self.devices.as_ref().map_or(0, |d| d.evicted()),
            series: self.traffic.series() as u64,
            series_dropped: self.traffic.dropped(),
            late_records: self.traffic.late(),
            periods_skipped: self.traffic.skipped(),
            watermarks_waiting: u64::from(self.order.is_waiting()),
            batches_given_up: self.order.given_up(),
        }
    }

    /// Devices seen and not authorized (with device tracking on), most recent first.
    pub fn unauthorized_devices(
        &self,
        limit: usize,
    ) -> Vec<(crate::policy::Mac, Option<std::net::IpAddr>, i64)> {
        self.devices
            .as_ref()
            .map_or_else(Vec::new, |d| d.unauthorized(limit))
    }

    /// Device types detected by the sensor; configured `[device_types]` take precedence.
    pub fn with_detected_types(
        mut self,
        detected: impl IntoIterator<Item = ([u8; 6], flowmesh_record::DeviceType)>,
    ) -> Self {
        for (mac, t) in detected {
            self.device_types
                .entry(crate::policy::Mac(mac))
                .or_insert(t);
        }
        self
    }

    /// Whether the device-apps check is on (it needs device types).
    pub fn wants_device_types(&self) -> bool {
        self.device_apps.is_some()
    }

    fn breach(&self, b: traffic_rules::Breach, out: &mut impl FnMut(Alert)) {
        use crate::policy::Threshold;
        let r = self.traffic.rule(b.rule);
        let target = match b.series {
            None => r.target_text.clone(),
            Some(host) => format!("host:{host}"),
        };
        let (kind, value) = match r.threshold {
            Threshold::Volume(_) => ("volume", serde_json::json!(b.value as u64)),
            Threshold::Throughput(_) => ("throughput", serde_json::json!(b.value.round() as u64)),
            Threshold::Percentage(_) => (
                "percentage",
                serde_json::json!((b.value * 10.0).round() / 10.0),
            ),
        };
        out(Alert::new(
            "traffic_rule",
            "warning",
            &self.instance,
            b.period_end,
            serde_json::json!({
                "target": target,
                "metric": r.metric,
                "frequency": r.frequency.name(),
                "kind": kind,
                "bound": if r.above { "above" } else { "below" },
                "threshold": r.value_text,
                "value": value,
                "period_start": flowmesh_record::rfc3339_micros(b.period_start),
            }),
        ));
    }

    fn device_event(&self, e: devices::DeviceEvent, out: &mut impl FnMut(Alert)) {
        use serde_json::json;
        let a = match e {
            devices::DeviceEvent::Unexpected { mac, ip, time } => Alert::new(
                "unexpected_device_connected",
                "warning",
                &self.instance,
                time,
                json!({"mac": mac.to_string(), "ip": ip, "name": null}),
            ),
            devices::DeviceEvent::Disconnected {
                mac,
                ip,
                name,
                time,
            } => Alert::new(
                "device_disconnected",
                "warning",
                &self.instance,
                time,
                json!({"mac": mac.to_string(), "ip": ip, "name": name}),
            ),
        };
        out(a);
    }

    /// Event time has reached `now` (the last packet of the input): devices silent since long
    /// enough disconnect, and every traffic-rule period that ended by then is judged (as
    /// [`Engine::watermark`] with `now`). Call it as often as wanted.
    pub fn finish(&mut self, now: i64, out: &mut impl FnMut(Alert)) {
        self.devices_at(now, out);
        self.watermark(now, out);
    }

    /// The wall clock (the collector) or event time reached `now`: devices silent since long
    /// enough disconnect. Traffic rules wait for the watermark.
    pub fn devices_at(&mut self, now: i64, out: &mut impl FnMut(Alert)) {
        let mut events = Vec::new();
        if let Some(d) = self.devices.as_mut() {
            d.advance(now.max(self.now), &mut |e| events.push(e));
        }
        for e in events {
            self.device_event(e, out);
        }
    }

    /// The instance's watermark: every packet it saw before `watermark` is in a record the
    /// engine has had. Traffic-rule periods that ended by then are complete, and judged.
    pub fn watermark(&mut self, watermark: i64, out: &mut impl FnMut(Alert)) {
        let mut breaches = Vec::new();
        self.traffic.advance(watermark, &mut |b| breaches.push(b));
        for b in breaches {
            self.breach(b, out);
        }
    }

    /// The latest event time seen in this instance's records (its last packet so far).
    pub fn event_time(&self) -> i64 {
        self.now
    }

    /// Batch `sequence` of the instance's run `boot` (hex) came at wall time `now` (µs), with
    /// `watermark` if it has one: that counts (see [`Engine::watermark`]) once every earlier
    /// batch of the run has come, with those held behind it (see [`order`]). Every batch is
    /// told, watermark or not: each is a place in the order.
    pub fn batch_watermark(
        &mut self,
        (boot, sequence): (&str, u64),
        watermark: Option<i64>,
        now: i64,
        out: &mut impl FnMut(Alert),
    ) {
        if let Some(w) = self.order.arrive(boot, sequence, watermark, now) {
            self.watermark(w, out);
        }
    }

    /// Whether a watermark waits for a batch that has not come (redelivered later).
    pub fn is_waiting(&self) -> bool {
        self.order.is_waiting()
    }

    /// Whether the instance's batches are taken as shared with other collectors.
    pub fn batches_shared(&self) -> bool {
        self.order.is_shared()
    }

    /// Gives up on batches missing since more than `wait` µs before `now`: the watermarks
    /// held behind them count. Returns what was given up.
    pub fn give_up_missing(
        &mut self,
        now: i64,
        wait: i64,
        out: &mut impl FnMut(Alert),
    ) -> Vec<order::GivenUp> {
        let mut gone = Vec::new();
        if let Some(w) = self.order.give_up(now, wait, &mut |g| gone.push(g)) {
            self.watermark(w, out);
        }
        gone
    }

    /// The traffic rules' counts not judged yet and the batch order, to keep with a batch
    /// (nothing without rules: then no period is judged).
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        if self.traffic.is_empty() {
            return None;
        }
        let rules = self.traffic.snapshot();
        let order = serde_json::to_vec(&self.order).unwrap_or_default();
        let mut out = Vec::with_capacity(rules.len() + order.len() + 20);
        out.extend_from_slice(b"{\"rules\":");
        out.extend_from_slice(&rules);
        out.extend_from_slice(b",\"order\":");
        out.extend_from_slice(&order);
        out.push(b'}');
        Some(out)
    }

    /// Takes back a [`Engine::snapshot`] (rules edited since start afresh). Returns how many
    /// rules got their counts back.
    pub fn restore(&mut self, snapshot: &[u8]) -> usize {
        let Some((rules, order)) = order::Saved::read(snapshot) else {
            return 0;
        };
        self.order = order;
        self.traffic.restore(&rules)
    }

    /// Hands the name of every traffic profile `f` belongs to to `out` (ntopng's profile badges
    /// on flows, and the per-profile series).
    pub fn each_profile(&self, f: &FlowRecord, out: &mut impl FnMut(&'static str)) {
        if self.all_profiles.is_empty() {
            return;
        }
        self.all_profiles
            .each_match(&mut flowmesh_bpf::Probe::new(f), out);
    }

    /// Runs every check on one flow record; alerts go to `out`.
    pub fn flow(&mut self, f: &FlowRecord, out: &mut impl FnMut(Alert)) {
        self.flow_in(f, None, out);
    }

    /// [`Engine::flow`] for a record whose profiles [`Engine::each_profile`] gave already (the
    /// collector stores them with the flow): the traffic rules use them instead of matching
    /// again.
    pub fn flow_tagged(
        &mut self,
        f: &FlowRecord,
        profiles: &[&'static str],
        out: &mut impl FnMut(Alert),
    ) {
        self.flow_in(f, Some(profiles), out);
    }

    fn flow_in(
        &mut self,
        f: &FlowRecord,
        tagged: Option<&[&'static str]>,
        out: &mut impl FnMut(Alert),
    ) {
        let (time, first) = (f.last_seen, f.first_seen);
        let (client_mac, server_mac) = (f.client_mac, f.server_mac);
        if let Some(d) = self.devices.as_mut() {
            let mut events = Vec::new();
            d.advance(first, &mut |e| events.push(e));
            // A MAC is seen when it sent frames: the client's always, the server's once it answered.
            if let Some(m) = client_mac.filter(|_| f.c2s_packets > 0) {
                d.observe(m, f.client_ip, first, time, &mut |e| events.push(e));
            }
            if let Some(m) = server_mac.filter(|_| f.s2c_packets > 0) {
                d.observe(m, f.server_ip, first, time, &mut |e| events.push(e));
            }
            for e in events {
                self.device_event(e, out);
            }
        }
        self.now = self.now.max(time);
        if !self.traffic.is_empty() {
            match tagged {
                Some(names) => self.traffic.add(f, time, &mut |name| names.contains(&name)),
                None => {
                    // The watched profiles matched once per flow, not once per rule asking.
                    let mut tags = std::mem::take(&mut self.tags);
                    tags.clear();
                    if !self.profiles.is_empty() {
                        self.profiles
                            .each_match(&mut flowmesh_bpf::Probe::new(f), &mut |n| tags.push(n));
                    }
                    self.traffic.add(f, time, &mut |name| tags.contains(&name));
                    self.tags = tags;
                }
            }
        }
        // Flow-level checks judge each flow once (the sensor marks the other parts of a flow
        // it split at period boundaries or active timeouts).
        if f.skip_flow_checks {
            return;
        }
        if let Some(apps) = &self.device_apps {
            let sides = [
                (client_mac, device_apps::Peer::Client, true),
                (server_mac, device_apps::Peer::Server, f.s2c_packets > 0),
            ];
            for (mac, peer, judged) in sides {
                let Some(mac) = mac.filter(|_| judged) else {
                    continue;
                };
                let Some(&t) = self.device_types.get(&crate::policy::Mac(mac)) else {
                    continue;
                };
                if !apps.allowed(t, peer, f.l7, f.app) {
                    out(Alert::about_flow(
                        "device_app_not_allowed",
                        "warning",
                        &self.instance,
                        f,
                        time,
                        serde_json::json!({
                            "mac": crate::policy::Mac(mac).to_string(),
                            "device_type": t,
                            "peer": peer.name(),
                            "app": f.app.unwrap_or(f.l7),
                        }),
                    ));
                }
            }
        }
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

pub use flowmesh_record::parse_rfc3339_micros;

#[cfg(test)]
mod tests {
    use super::*;
    use flowmesh_record::rfc3339_micros;

    #[test]
    fn rfc3339_round_trip() {
        for t in [0i64, 1_767_225_600_000_001, 951_782_400_123_456] {
            assert_eq!(parse_rfc3339_micros(&rfc3339_micros(t)), Some(t));
        }
    }
}
