//! The collector's ingest alone: `cargo bench --bench ingest` (needs nats-server).
//!
//! A 3-node TLS cluster, an R1 `FLOWS` stream filled beforehand with `FLOWMESH_BENCH_FLOWS`
//! (default 1,000,000) sealed flow records in batches of 1,000, as a sensor publishes them;
//! then a collector with policies on (1,000 ACL rules, 100 profiles, 50 traffic rules on them,
//! host policy) is started, pinned to one core with `taskset` when it is there, and timed until
//! its consumer has every batch stored and acknowledged. Prints flows/s; figures only.
//! `FLOWMESH_BENCH_BASELINE=/path/to/an/older/flowmesh` runs that build's collector in turns
//! with this one on fresh clusters and prints the ratio.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowmesh_link::async_nats::HeaderMap;
use flowmesh_link::async_nats::jetstream;
use flowmesh_link::connect::connect;
use flowmesh_link::{Sealer, streams};
use flowmesh_proto::v1::FlowBatch;
use flowmesh_record::{FlowRecord, codec};
use flowmesh_testkit::{Cluster, Collector, TestUser, consumers_drained, die_with_parent};
use prost::Message;

const BATCH: usize = 1000;

#[path = "../collector/tests/common/site.rs"]
mod site;

fn record(i: usize) -> FlowRecord {
    site::record(i, 1_795_946_400_000_000 + (i as i64) * 100)
}

fn policy() -> String {
    let mut p = String::from("[acl]\nrules = \"\"\"\n");
    for i in 0..1000 {
        let _ = writeln!(p, "TCP;192.168.{}.0/24;*;{}", i % 250, 1000 + i);
    }
    p.push_str("TCP;192.168.0.0/16;*;443\nUDP;*;*;53\nUDP;*;*;123\nTCP;*;*;80\nTCP;*;*;8080\nTCP;*;*;22\n\"\"\"\n[host_policy]\nrestricted = [\"192.168.1.30\"]\nwhitelisted = [\"8.8.8.8\"]\n");
    site::profiles(&mut p, 100, "");
    site::traffic_rules(&mut p, 50);
    p
}

/// What one drain measured: seconds, and the collector's peak resident memory.
struct Drained {
    secs: f64,
    /// CPU seconds the collector spent (less noisy than the wall time on a shared machine).
    cpu: f64,
    peak: String,
}

/// One run: a fresh cluster, its `FLOWS` stream filled with `flows` sealed flows, then the
/// collector `binary` timed until it has drained them.
fn drain(binary: &std::path::Path, flows: usize, pinned: bool, say: bool) -> Drained {
    let user = TestUser::new("alice", &[("collector-1", Collector)]);
    let cluster = Cluster::start_regions(&[("eu", 3)], &[&user], Duration::from_secs(60))
        .expect("cluster (run ./deploy/test.sh once to install nats-server)");
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let js = rt.block_on(async {
        let b = cluster.insider_config("alice", "sensor-1", None);
        jetstream::new(connect(&b, "sensor-1").await.unwrap())
    });
    // Fill the stream as a sensor would: sealed batches with message ids.
    let started = Instant::now();
    let sealer = Sealer::new(&user.identity, user.identity.public());
    rt.block_on(async {
        streams::ensure_streams(&js, 1).await.unwrap();
        let mut acks = Vec::new();
        for (seq, start) in (0..flows).step_by(BATCH).enumerate() {
            let batch = FlowBatch {
                instance: "sensor-1".into(),
                sequence: seq as u64,
                boot_id: vec![1; 8],
                watermark_us: 0,
                flows: (start..(start + BATCH).min(flows))
                    .map(|i| codec::to_proto(&record(i), false))
                    .collect(),
            };
            let sealed = sealer
                .seal("flowmesh.flows.sensor-1", &batch.encode_to_vec())
                .unwrap();
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("sensor-1/bench/{seq}").as_str());
            acks.push(
                js.publish_with_headers("flowmesh.flows.sensor-1", h, sealed.into())
                    .await
                    .unwrap(),
            );
            if acks.len() >= 256 {
                for a in acks.drain(..) {
                    a.await.unwrap();
                }
            }
        }
        for a in acks {
            a.await.unwrap();
        }
    });
    if say {
        println!(
            "collector ingest, {flows} sealed flows in batches of {BATCH} (filled in {:.1} s), R1 stream, 3-node TLS cluster",
            started.elapsed().as_secs_f64()
        );
    }
    user.identity
        .write(&dir.path().join("alice.id"), false)
        .unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy()).unwrap();
    let b = cluster.broker_config("alice", "collector-1", None);
    let broker = toml::to_string(&toml::Table::from_iter([(
        "broker".to_string(),
        toml::Value::try_from(b).unwrap(),
    )]))
    .unwrap();
    std::fs::write(
        dir.path().join("collector.toml"),
        format!(
            "name = \"collector-1\"\nidentity = \"alice.id\"\nstore = \"c.redb\"\npolicy = \"policy.toml\"\nreplicas = 1\n{broker}\n[api]\nlisten = \"off\"\n[flows]\nstore = {}\n",
            // `FLOWMESH_BENCH_FLOW_STORE=0`: the same without the flow store, for comparison.
            std::env::var("FLOWMESH_BENCH_FLOW_STORE").map_or(true, |v| v != "0")
        ),
    )
    .unwrap();
    // `FLOWMESH_BENCH_WRAP="perf record -g -o ingest.perf --"` profiles the collector.
    let wrap: Vec<String> = std::env::var("FLOWMESH_BENCH_WRAP")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut cmd = if let Some((first, rest)) = wrap.split_first() {
        let mut c = Command::new(first);
        c.args(rest).arg(binary);
        c
    } else if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1"]).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    cmd.args(["-q", "collector", "--config"])
        .arg(dir.path().join("collector.toml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("collector.log")).unwrap());
    let started = Instant::now();
    let mut collector = die_with_parent(&mut cmd).spawn().unwrap();
    rt.block_on(async {
        while !consumers_drained(&js, streams::FLOWS).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let secs = started.elapsed().as_secs_f64();
    // The collector's peak resident memory (taskset execs it: same process).
    let peak = std::fs::read_to_string(format!("/proc/{}/status", collector.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cpu = flowmesh_testkit::process::cpu_secs(collector.id()).unwrap_or(f64::NAN);
    flowmesh_testkit::process::terminate(&mut collector);
    Drained { secs, cpu, peak }
}

fn main() {
    let flows: usize = std::env::var("FLOWMESH_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pinned = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let this = std::path::PathBuf::from(env!("CARGO_BIN_EXE_flowmesh"));
    // `FLOWMESH_BENCH_BASELINE=/path/to/an/older/flowmesh`: that collector too, in turns with
    // this one (three runs each, the best of each kept), and the ratio.
    let baseline = std::env::var_os("FLOWMESH_BENCH_BASELINE").map(std::path::PathBuf::from);
    let pin = if pinned {
        " (collector pinned to one core)"
    } else {
        ""
    };
    let Some(baseline) = baseline else {
        let d = drain(&this, flows, pinned, true);
        println!(
            "  drained in {:.2} s: {:.0} flows/s, collector CPU {:.2} s, peak RSS {}{pin}",
            d.secs,
            flows as f64 / d.secs,
            d.cpu,
            d.peak
        );
        return;
    };
    let (mut ours, mut theirs) = ((f64::MAX, f64::MAX), (f64::MAX, f64::MAX));
    for round in 0..3 {
        for (name, binary, best) in [
            ("this build", &this, &mut ours),
            ("baseline  ", &baseline, &mut theirs),
        ] {
            let d = drain(binary, flows, pinned, round == 0);
            println!(
                "  {name}: drained in {:.2} s, collector CPU {:.2} s, peak RSS {}{pin}",
                d.secs, d.cpu, d.peak
            );
            *best = (best.0.min(d.secs), best.1.min(d.cpu));
        }
    }
    println!(
        "  best of 3: this build {:.0} flows/s, baseline {:.0} flows/s ({:.2}x); collector CPU {:.2} s vs {:.2} s ({:.2}x)",
        flows as f64 / ours.0,
        flows as f64 / theirs.0,
        theirs.0 / ours.0,
        ours.1,
        theirs.1,
        theirs.1 / ours.1
    );
}
