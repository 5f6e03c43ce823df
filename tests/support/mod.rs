//! The pipeline harness the end-to-end tests share: a real federated cluster, the flowmesh
//! binary as sensor and collector processes, and flow-by-flow accounting of what was stored.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowmesh_collector::store::{AlertQuery, Store};
use flowmesh_link::async_nats::jetstream;
use flowmesh_link::connect::connect;
use flowmesh_link::streams;
use flowmesh_sensor::flow::TableConfig;
use flowmesh_testkit::{Cluster, Collector, Sensor, TestUser};

pub const FLOWS: u64 = 3000;

/// One flow: its protocol and tuple (the synthetic flows' tuples are unique).
pub type FlowKey = String;

/// What a flow's records say it carried: packets each way, and in how many records. A flow
/// may come in several records that add up (NetFlow's delta semantics): the sensor splits
/// every flow at the 5-minute period boundaries of the wall clock its replay moves packets to,
/// so a run that crosses one (a matter of the time of day) sends two records for each flow
/// active then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    pub c2s_packets: u64,
    pub s2c_packets: u64,
    pub records: u32,
}

impl Carried {
    fn add(&mut self, f: &serde_json::Value) {
        self.c2s_packets += f["c2s_packets"].as_u64().unwrap_or(0);
        self.s2c_packets += f["s2c_packets"].as_u64().unwrap_or(0);
        self.records += 1;
    }
}

pub fn key_of(f: &serde_json::Value) -> FlowKey {
    format!(
        "{} {}:{} {}:{}",
        f["l4"], f["client_ip"], f["client_port"], f["server_ip"], f["server_port"],
    )
}

/// The key of an `acl_violation` alert: the instance that saw the flow, and the flow.
pub fn key_of_alert(a: &serde_json::Value) -> FlowKey {
    format!("{} {}", a["instance"], key_of(&a["flow"]))
}

pub struct Pipeline {
    pub dir: tempfile::TempDir,
    pub cluster: Cluster,
    pub user: TestUser,
    pub capture: PathBuf,
    /// The capture's flows, offline (one record each).
    pub flows: BTreeMap<FlowKey, Carried>,
    /// When set, sensors and collectors get only this node's URL (they learn the others from
    /// it), so a test knows which node they are connected to.
    pub seed: Option<String>,
}

/// The `flowmesh` binary, killed with the test process (PDEATHSIG) however the test ends.
pub fn flowmesh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    flowmesh_testkit::die_with_parent(&mut cmd);
    cmd
}

/// Starts `exe` (a flowmesh binary) with `args`, its stderr to `log`; it dies with the test.
pub fn spawn_logged(exe: &std::path::Path, args: &[&str], log: &std::path::Path) -> Child {
    let mut cmd = Command::new(exe);
    flowmesh_testkit::die_with_parent(&mut cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Pipeline {
    pub fn start(span_secs: u64) -> Pipeline {
        let user = TestUser::new(
            "alice",
            &[
                ("sensor-1", Sensor),
                ("sensor-2", Sensor),
                ("collector-1", Collector),
                ("collector-2", Collector),
            ],
        );
        let bob = TestUser::new("bob", &[("bob-1", Sensor)]);
        // A cluster that does not start fails the test: it never passes for lack of one.
        let cluster = Cluster::start(&[&user, &bob], Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
        let dir = tempfile::tempdir().unwrap();
        user.identity
            .write(&dir.path().join("alice.id"), false)
            .unwrap();
        bob.identity
            .write(&dir.path().join("bob.id"), false)
            .unwrap();
        std::fs::write(dir.path().join("policy.toml"), "[acl]\nrules = \"\"\n").unwrap();
        let capture = dir.path().join("traffic.pcap");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&capture).unwrap());
        flowmesh_sensor::synth::generate(FLOWS, 200, span_secs, &mut f).unwrap();
        drop(f);
        let mut flows = BTreeMap::<FlowKey, Carried>::new();
        flowmesh_sensor::offline::run_file_with(&capture, TableConfig::default(), &mut |r| {
            let r = serde_json::to_value(&r).unwrap();
            flows.entry(key_of(&r)).or_default().add(&r);
        })
        .unwrap();
        assert!(
            flows.values().all(|c| c.records == 1),
            "the synthetic flows' tuples are unique"
        );
        Pipeline {
            dir,
            cluster,
            user,
            capture,
            flows,
            seed: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn broker_toml(&self, instance: &str, region: Option<&str>) -> String {
        let mut b = self.cluster.broker_config("alice", instance, region);
        if let Some(seed) = &self.seed {
            b.urls = vec![seed.clone()];
        }
        toml::to_string(&toml::Table::from_iter([(
            "broker".to_string(),
            toml::Value::try_from(b).unwrap(),
        )]))
        .unwrap()
    }

    pub fn collector(&self, name: &str) -> Child {
        self.collector_of(name, None)
    }

    /// A collector; with `instances`, serving only those (a consumer of its own).
    pub fn collector_of(&self, name: &str, instances: Option<&[&str]>) -> Child {
        let only = instances.map_or(String::new(), |i| format!("instances = {i:?}\n"));
        self.collector_config(name, &only, "")
    }

    /// A collector with more TOML tables (`extra`, after `[broker]`).
    pub fn collector_with(&self, name: &str, extra: &str) -> Child {
        self.collector_config(name, "", extra)
    }

    fn collector_config(&self, name: &str, keys: &str, tables: &str) -> Child {
        let cfg = self.path(&format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "name = \"{name}\"\nidentity = \"alice.id\"\nstore = \"{name}.redb\"\npolicy = \"policy.toml\"\nreplicas = 3\n{keys}{}\n{tables}\n[api]\nlisten = \"127.0.0.1:0\"\naccess_file = \"{name}-api.json\"\n",
                self.broker_toml(name, Some("us"))
            ),
        )
        .unwrap();
        self.spawn("collector", &cfg, name)
    }

    /// `flowmesh COMMAND --config CFG`, its stderr in `<log>.log`.
    pub fn spawn(&self, command: &str, cfg: &std::path::Path, log: &str) -> Child {
        flowmesh()
            .args([command, "--config"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path(&format!("{log}.log"))).unwrap())
            .spawn()
            .unwrap()
    }

    pub fn sensor(&self, speed: f64, batch_flows: usize) -> Child {
        self.sensor_named("sensor-1", speed, batch_flows)
    }

    pub fn sensor_named(&self, name: &str, speed: f64, batch_flows: usize) -> Child {
        self.sensor_with(name, &self.capture, speed, batch_flows)
    }

    /// A sensor named `name` replaying `capture` (its log `sensor.log` for sensor-1, else
    /// `<name>.log`). sensor-2 runs one flow worker (`threads = 1`), the others one per core:
    /// tests with two sensors go through both layouts end to end.
    pub fn sensor_with(
        &self,
        name: &str,
        capture: &std::path::Path,
        speed: f64,
        batch_flows: usize,
    ) -> Child {
        let log = if name == "sensor-1" {
            "sensor".to_string()
        } else {
            name.to_string()
        };
        let cfg = self.path(&format!("{log}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "name = \"{name}\"\nidentity = \"alice.id\"\nstate_dir = \"{name}-state\"\n[capture]\nfile = \"{}\"\nspeed = {speed}\nactive_timeout_secs = 0\n{}[publish]\nbatch_flows = {batch_flows}\nbatch_max_ms = 100\nheartbeat_secs = 1\n{}",
                capture.display(),
                if name == "sensor-2" { "threads = 1\n" } else { "" },
                self.broker_toml(name, Some("eu"))
            ),
        )
        .unwrap();
        self.spawn("sensor", &cfg, &log)
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// A JetStream context of an unrestricted client in alice's account (it stands for an
    /// attacker who runs the broker: tests inject forgeries through it).
    pub async fn js(&self) -> jetstream::Context {
        jetstream::new(self.insider().await)
    }

    /// An unrestricted client in alice's account (see [`Pipeline::js`]).
    pub async fn insider(&self) -> flowmesh_link::async_nats::Client {
        let b = self.cluster.insider_config("alice", "tester", Some("us"));
        connect(&b, "tester").await.unwrap()
    }

    /// Waits until the collectors' consumer has every message of the stream acknowledged.
    pub fn wait_drained(&self, timeout: Duration) {
        let rt = rt();
        rt.block_on(async {
            let js = self.js().await;
            let deadline = Instant::now() + timeout;
            loop {
                let done = flowmesh_testkit::consumers_drained(&js, streams::FLOWS).await;
                if done {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the collector did not drain the stream in {timeout:?}\nsensor:\n{}\ncollector:\n{}",
                    self.log("sensor"),
                    self.log("collector-1")
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    /// How many `acl_violation` alerts the stores hold for each flow. A flow is judged once:
    /// when the sensor splits it at a period boundary, the record that continues it carries
    /// `skip_flow_checks` and raises nothing, so alerts are counted per flow, and what the
    /// records carry is checked in the flow store ([`Self::stored_flows`]).
    pub fn alerted(&self, stores: &[&str]) -> BTreeMap<FlowKey, usize> {
        let mut out = BTreeMap::<FlowKey, usize>::new();
        for name in stores {
            let store = Store::open(&self.path(&format!("{name}.redb"))).unwrap();
            for a in store.alerts(&AlertQuery::default()).unwrap() {
                if a["type"] == "acl_violation" {
                    *out.entry(key_of_alert(&a)).or_default() += 1;
                }
            }
        }
        out
    }

    /// (flows with no alert, flows with more than one) for the capture replayed by
    /// `sensors`; fails on an alert for a flow that was never sent.
    pub fn compare_alerts(
        &self,
        sensors: &[&str],
        alerted: &BTreeMap<FlowKey, usize>,
    ) -> (usize, usize) {
        let expected: std::collections::BTreeSet<FlowKey> = sensors
            .iter()
            .flat_map(|s| self.flows.keys().map(move |f| format!("\"{s}\" {f}")))
            .collect();
        let count = |k: &FlowKey| alerted.get(k).copied().unwrap_or(0);
        let lost = expected.iter().filter(|k| count(k) == 0).count();
        let dup = expected.iter().filter(|k| count(k) > 1).count();
        let extra = alerted.keys().find(|k| !expected.contains(*k));
        assert!(extra.is_none(), "an alert for a flow never sent: {extra:?}");
        (lost, dup)
    }

    /// The flows in the flow store of each collector (`<name>.redb`), keyed as [`Self::stored`].
    pub fn stored_flows(&self, stores: &[&str]) -> BTreeMap<FlowKey, Carried> {
        let mut out = BTreeMap::<FlowKey, Carried>::new();
        for name in stores {
            let store = Store::open(&self.path(&format!("{name}.redb"))).unwrap();
            let all = store
                .search_flows(&flowmesh_collector::store::flows::FlowQuery::default())
                .unwrap();
            for f in all {
                let v = serde_json::to_value(&f).unwrap();
                out.entry(format!("{} {}", v["instance"], key_of(&v)))
                    .or_default()
                    .add(&v);
            }
        }
        out
    }

    /// (lost, duplicated) flows, for the capture replayed by `sensors`: a flow is lost when
    /// its records carry fewer packets than the capture holds (or none arrived), duplicated
    /// when they carry more (a record stored twice).
    pub fn compare(&self, stored: &BTreeMap<FlowKey, Carried>) -> (usize, usize) {
        self.compare_for(&["sensor-1"], stored)
    }

    pub fn compare_for(
        &self,
        sensors: &[&str],
        stored: &BTreeMap<FlowKey, Carried>,
    ) -> (usize, usize) {
        let expected: BTreeMap<FlowKey, Carried> = sensors
            .iter()
            .flat_map(|s| {
                self.flows
                    .iter()
                    .map(move |(f, c)| (format!("\"{s}\" {f}"), *c))
            })
            .collect();
        let packets = |c: &Carried| c.c2s_packets + c.s2c_packets;
        let (mut lost, mut dup) = (0, 0);
        for (k, want) in &expected {
            let got = stored.get(k).copied().unwrap_or_default();
            let (got_c2s, got_s2c) = (got.c2s_packets, got.s2c_packets);
            if packets(&got) < packets(want) {
                lost += 1;
            } else if (got_c2s, got_s2c) != (want.c2s_packets, want.s2c_packets) {
                dup += 1;
            }
        }
        eprintln!(
            "{} of {} flows came in more than one record",
            stored.values().filter(|c| c.records > 1).count(),
            stored.len()
        );
        let extra = stored.keys().filter(|k| !expected.contains_key(*k)).count();
        assert_eq!(
            extra,
            0,
            "stored flows that were never sent, e.g. {:?} (expected e.g. {:?})",
            stored.keys().find(|k| !expected.contains_key(*k)),
            expected.keys().next()
        );
        (lost, dup)
    }
}

/// SIGTERM, and it must stop by itself.
pub fn terminate(child: &mut Child) {
    assert!(
        flowmesh_testkit::process::terminate(child),
        "process {} did not stop on SIGTERM",
        child.id()
    );
}

impl Pipeline {
    /// Waits until these durable consumers of FLOWS exist (each collector creates its own).
    pub fn wait_consumers(&self, names: &[&str]) {
        rt().block_on(async {
            let js = self.js().await;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let mut all = true;
                if let Ok(stream) = js.get_stream(streams::FLOWS).await {
                    for n in names {
                        all &= stream
                            .get_consumer::<jetstream::consumer::pull::Config>(n)
                            .await
                            .is_ok();
                    }
                } else {
                    all = false;
                }
                if all {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "consumers {names:?} never appeared"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
}

/// Runs a `flowmesh` command to its end.
pub fn cli(args: &[&str]) -> std::process::Output {
    flowmesh().args(args).output().unwrap()
}

pub fn stdout_of(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Pipeline {
    /// Batches a durable consumer of FLOWS has acknowledged, i.e. that its collector stored
    /// (the collector acknowledges only after its commit): the consumer's ack floor.
    pub fn stored_batches(&self, durable: &str) -> u64 {
        rt().block_on(async {
            let js = self.js().await;
            let Ok(stream) = js.get_stream(streams::FLOWS).await else {
                return 0;
            };
            let Ok(mut c) = stream
                .get_consumer::<jetstream::consumer::pull::Config>(durable)
                .await
            else {
                return 0;
            };
            c.info().await.map_or(0, |i| i.ack_floor.stream_sequence)
        })
    }
}

/// The node (of those running) that a client named `name` is connected to, asked of each
/// node's `/connz`.
pub fn node_of(cluster: &Cluster, name: &str) -> Option<String> {
    cluster.node_names().into_iter().find(|n| {
        cluster.connz(n).is_some_and(|v| {
            v["connections"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["name"] == name))
        })
    })
}

/// Batches stored before a fault is injected: enough to prove the fault hits mid-stream.
pub const BEFORE_FAULT: u64 = 5;

/// A sensor stopped with SIGSTOP, continued (SIGCONT) when this is dropped.
pub struct Paused(i32);

impl Drop for Paused {
    fn drop(&mut self) {
        // SAFETY: signalling a child this test started.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

impl Pipeline {
    /// Batches the sensors have published into FLOWS (the stream's last sequence).
    pub fn published_batches(&self) -> u64 {
        rt().block_on(async {
            let js = self.js().await;
            let Ok(mut stream) = js.get_stream(streams::FLOWS).await else {
                return 0;
            };
            stream.info().await.map_or(0, |i| i.state.last_sequence)
        })
    }

    /// Brings the pipeline to the middle of its stream, on conditions neither side can
    /// outrun: once `sensor` has published 2×[`BEFORE_FAULT`] batches it is paused (SIGSTOP),
    /// so it cannot finish however slow the collector is on a loaded machine; then the shared
    /// consumer must have stored [`BEFORE_FAULT`]. A fault injected now hits mid-stream; drop
    /// the returned guard to let the sensor go on sending.
    pub fn wait_mid_stream(&self, sensor: &mut Child) -> Paused {
        flowmesh_testkit::process::wait_for(
            "the sensor to publish a few batches",
            Duration::from_secs(60),
            || self.published_batches() >= 2 * BEFORE_FAULT,
        );
        // SAFETY: signalling a child this test started.
        unsafe { libc::kill(sensor.id() as i32, libc::SIGSTOP) };
        let paused = Paused(sensor.id() as i32);
        assert!(
            sensor.try_wait().unwrap().is_none(),
            "the sensor finished before the fault: not mid-stream"
        );
        flowmesh_testkit::process::wait_for(
            "the collector to store a few batches",
            Duration::from_secs(60),
            || self.stored_batches("collectors") >= BEFORE_FAULT,
        );
        paused
    }
}

/// The `[broker]` settings of `instance` of `user` as a TOML table named `table` (`broker`, or
/// `system` for the manager's login to the system account).
pub fn broker_toml(
    cluster: &flowmesh_testkit::Cluster,
    user: &str,
    instance: &str,
    table: &str,
) -> String {
    broker_toml_in(cluster, user, instance, None, table)
}

/// [`broker_toml`] limited to `region`'s nodes, if given.
pub fn broker_toml_in(
    cluster: &flowmesh_testkit::Cluster,
    user: &str,
    instance: &str,
    region: Option<&str>,
    table: &str,
) -> String {
    let b = cluster.broker_config(user, instance, region);
    toml::to_string(&toml::Table::from_iter([(
        table.to_string(),
        toml::Value::try_from(b).unwrap(),
    )]))
    .unwrap()
}
