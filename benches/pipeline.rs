//! End to end: flows/s from a sensor through a 3-node TLS cluster (R3 streams) to a collector
//! with policies on, sealed and in the bench-only plaintext mode (the ratio is the cost of
//! end-to-end encryption); the same flows from a site of 1,000 local hosts; and alert latency
//! from packet time to a `watch` subscriber.
//!
//! `cargo bench --features bench-plaintext --bench pipeline` (needs nats-server:
//! `./deploy/test.sh` installs it). Figures only, no assertions: the machine is shared and
//! noisy. `FLOWMESH_BENCH_KEEP=1` keeps the work directory with full logs;
//! `FLOWMESH_BENCH_BATCH=N` sets the sensor's `batch_flows` (1000), `FLOWMESH_BENCH_THREADS=N`
//! its `[capture] threads` (default: every core).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowmesh_link::async_nats::jetstream;
use flowmesh_link::connect::connect;
use flowmesh_link::subject::Channel;
use flowmesh_link::{Opener, streams};
use flowmesh_testkit::{Cluster, TestUser, consumers_drained, die_with_parent};
use futures::StreamExt;

const FLOWS: u64 = 200_000;

fn flowmesh(args: &[&str], log: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    // Kept work directories get full logs (`-q` leaves warnings only).
    let keep = std::env::var_os("FLOWMESH_BENCH_KEEP").is_some();
    die_with_parent(&mut cmd)
        .args(args.iter().filter(|a| !(keep && **a == "-q")))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn broker_toml(cluster: &Cluster, instance: &str) -> String {
    let b = cluster.broker_config("alice", instance, None);
    toml::to_string(&toml::Table::from_iter([(
        "broker".to_string(),
        toml::Value::try_from(b).unwrap(),
    )]))
    .unwrap()
}

fn stop(child: &mut Child) {
    flowmesh_testkit::process::terminate(child);
}

fn children_cpu_secs() -> f64 {
    flowmesh_testkit::process::children_cpu_secs().unwrap()
}

fn process_cpu_secs(pid: u32) -> f64 {
    flowmesh_testkit::process::cpu_secs(pid).unwrap_or(0.0)
}

/// What one run measured.
struct Measured {
    /// Seconds from the sensor's start to every flow stored.
    secs: f64,
    /// CPU seconds of the sensor, of the collector, and of the three brokers together.
    cpu: (f64, f64, f64),
    /// Alert latencies, ms.
    latencies: Vec<f64>,
}

/// One run: a fresh cluster, the collector, the sensor replaying `capture` at `speed`.
fn run(
    dir: &Path,
    capture: &Path,
    policy: &str,
    plaintext: bool,
    speed: f64,
    replicas: usize,
) -> Measured {
    let user = TestUser::new(
        "alice",
        &[
            ("sensor-1", flowmesh_testkit::Sensor),
            ("collector-1", flowmesh_testkit::Collector),
        ],
    );
    let cluster = Cluster::start_regions(&[("eu", 3)], &[&user], Duration::from_secs(30)).unwrap();
    let tag = if plaintext { "plain" } else { "sealed" };
    let stem = capture
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("capture");
    let work = dir.join(format!("{stem}-{tag}-{speed}-r{replicas}"));
    std::fs::create_dir_all(&work).unwrap();
    user.identity.write(&work.join("alice.id"), false).unwrap();
    std::fs::write(work.join("policy.toml"), policy).unwrap();
    std::fs::write(
        work.join("collector.toml"),
        format!(
            "name = \"collector-1\"\nidentity = \"alice.id\"\nstore = \"c.redb\"\npolicy = \"policy.toml\"\nreplicas = {replicas}\n{}\n[api]\nlisten = \"off\"\n",
            broker_toml(&cluster, "collector-1")
        ),
    )
    .unwrap();
    std::fs::write(
        work.join("sensor.toml"),
        format!(
            "name = \"sensor-1\"\nidentity = \"alice.id\"\nstate_dir = \"s\"\n[capture]\nfile = \"{}\"\nspeed = {speed}\nactive_timeout_secs = 0\n{}[publish]\nbatch_flows = {}\nbatch_max_ms = 100\n{}",
            capture.display(),
            std::env::var("FLOWMESH_BENCH_THREADS").map_or(String::new(), |t| format!("threads = {t}\n")),
            std::env::var("FLOWMESH_BENCH_BATCH").unwrap_or_else(|_| "1000".into()),
            broker_toml(&cluster, "sensor-1")
        ),
    )
    .unwrap();
    let flag = if plaintext {
        vec!["--bench-plaintext"]
    } else {
        vec![]
    };
    let mut cargs = vec!["-q", "collector", "--config"];
    let ccfg = work.join("collector.toml");
    cargs.push(ccfg.to_str().unwrap());
    cargs.extend(&flag);
    let mut collector = flowmesh(&cargs, &work.join("collector.log"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (js, alerts) = rt.block_on(async {
        let b = cluster.insider_config("alice", "tester", None);
        let client = connect(&b, "tester").await.unwrap();
        let alerts = client.subscribe(Channel::Alerts.all()).await.unwrap();
        client.flush().await.unwrap();
        let js = jetstream::new(client);
        // The collector creates the streams; start timing once they exist.
        while js.get_stream(streams::FLOWS).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (js, alerts)
    });
    // Alert latency: receive time minus the packet time of the flow's last packet.
    let opener = Opener::new(&user.identity);
    let latencies = rt.spawn(async move {
        let mut alerts = alerts;
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(15), alerts.next()).await {
            let now = flowmesh_link::envelope::now_micros() as i64;
            let Ok(o) = opener.open(&m.subject, &m.payload) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.payload) else {
                continue;
            };
            if let Some(t) = v["flow"]["last_seen"]
                .as_str()
                .and_then(flowmesh_sensor::flow::parse_rfc3339_micros)
            {
                out.push((now - t) as f64 / 1000.0);
            }
        }
        out
    });
    let scfg = work.join("sensor.toml");
    let mut sargs = vec!["-q", "sensor", "--config", scfg.to_str().unwrap()];
    sargs.extend(&flag);
    let brokers_cpu = || {
        cluster
            .pids()
            .into_iter()
            .map(process_cpu_secs)
            .sum::<f64>()
    };
    // Messages and bytes the brokers took in and sent out (routes included).
    let traffic = || {
        cluster.node_names().iter().fold([0u64; 4], |mut t, n| {
            if let Some(v) = cluster.varz(n) {
                for (i, k) in ["in_msgs", "out_msgs", "in_bytes", "out_bytes"]
                    .iter()
                    .enumerate()
                {
                    t[i] += v[k].as_u64().unwrap_or(0);
                }
            }
            t
        })
    };
    let traffic_before = traffic();
    let brokers_before = brokers_cpu();
    let cpu_before = children_cpu_secs();
    let start = Instant::now();
    let mut sensor = flowmesh(&sargs, &work.join("sensor.log"));
    let _ = sensor.wait();
    let sensor_secs = start.elapsed().as_secs_f64();
    let sensor_cpu = children_cpu_secs() - cpu_before;
    rt.block_on(async {
        while !consumers_drained(&js, streams::FLOWS).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let brokers = brokers_cpu() - brokers_before;
    let t = traffic();
    eprintln!(
        "  (the brokers: {} messages in, {} out, {:.1} MB in, {:.1} MB out)",
        t[0] - traffic_before[0],
        t[1] - traffic_before[1],
        (t[2] - traffic_before[2]) as f64 / 1e6,
        (t[3] - traffic_before[3]) as f64 / 1e6
    );
    eprintln!("  ({tag}: the sensor was done after {sensor_secs:.2} s)");
    // The collector idles once drained: its CPU time is its work.
    let before_stop = children_cpu_secs();
    stop(&mut collector);
    let collector_cpu = children_cpu_secs() - before_stop;
    let latencies = rt.block_on(latencies).unwrap_or_default();
    Measured {
        secs,
        cpu: (sensor_cpu, collector_cpu, brokers),
        latencies,
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// `flowmesh flows` on `capture`: flows/s and the CPU seconds of the same run (the best of
/// three runs: one is a third of a second on a noisy machine): the ceiling the pipeline is
/// compared with.
fn offline_rate(capture: &Path) -> (f64, f64) {
    let mut best = (f64::MAX, 0.0);
    for _ in 0..3 {
        let cpu = children_cpu_secs();
        let started = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
            .args(["-q", "flows", "--threads", "1"])
            .arg(capture)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let secs = started.elapsed().as_secs_f64();
        if secs < best.0 {
            best = (secs, children_cpu_secs() - cpu);
        }
    }
    (FLOWS as f64 / best.0, best.1)
}

/// One run's line: time, rate, share of the offline rate, and where the CPU went. `busy` is
/// all of it against what the machine's cores could give in the run's wall time: near 100%,
/// the run was bound by this machine's cores, not by waiting.
fn report(label: &str, m: &Measured, offline: f64) {
    let rate = FLOWS as f64 / m.secs;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (sensor, collector, brokers) = m.cpu;
    println!(
        "  {label:<13} {:6.2} s  {rate:>9.0} flows/s  ({:.0}% of offline)  CPU: sensor {sensor:.2} s, collector {collector:.2} s, brokers {brokers:.2} s (busy {:.0}%)",
        m.secs,
        rate / offline * 100.0,
        (sensor + collector + brokers) / (cores * m.secs) * 100.0
    );
}

/// The offline line.
fn report_offline((rate, cpu): (f64, f64)) {
    println!(
        "  offline `flowmesh flows --threads 1` on the same capture: {rate:>9.0} flows/s (CPU {cpu:.2} s)"
    );
}

fn main() {
    if flowmesh_testkit::nats_server_binary().is_err() {
        eprintln!("SKIP: nats-server not found (./deploy/test.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("bench.pcap");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&capture).unwrap());
    flowmesh_sensor::synth::generate(FLOWS, 5_000, 60, &mut f).unwrap();
    drop(f);
    // Policies on, traffic allowed (alerts rare): ACL, host policy, device apps, a profile and
    // a traffic rule.
    let allowed = "[acl]\nrules = \"\"\"\nTCP;*;*;443\nTCP;*;*;80\nUDP;*;*;53\n\"\"\"\n[host_policy]\ncore = [\"192.168.99.1\"]\nwhitelisted = [\"8.8.8.8\"]\n[[profile]]\nname = \"web\"\nbpf = \"tcp port 80 or tcp port 443\"\n[[traffic_rule]]\ntarget = \"profile:web\"\nmetric = \"total\"\nfrequency = \"hour\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"100GB\"\n";
    let offline = offline_rate(&capture);
    println!("end to end, {FLOWS} flows, 3-node TLS cluster, policies on:");
    println!("every flow a local client of its own ({FLOWS} host series: the worst case):");
    report_offline(offline);
    let mut runs = Vec::new();
    for (replicas, plaintext) in [(3, false), (3, true), (1, false)] {
        let m = run(dir.path(), &capture, allowed, plaintext, 0.0, replicas);
        let tag = if plaintext { "plaintext" } else { "sealed" };
        report(&format!("R{replicas} {tag}"), &m, offline.0);
        runs.push(m);
    }
    // Wall time on a shared machine moves by several percent from run to run; the CPU the
    // sensor and collector spend is what sealing and opening cost them.
    let cpu = |m: &Measured| m.cpu.0 + m.cpu.1;
    println!(
        "  sealing cost (R3): {:.1}% of the wall time, {:.1}% of the sensor's and collector's CPU",
        (1.0 - runs[1].secs / runs[0].secs) * 100.0,
        (1.0 - cpu(&runs[1]) / cpu(&runs[0])) * 100.0
    );
    // A site: the same flows from 1,000 local machines (the collector keeps a series per
    // local host, so the worst case above is mostly the store writing 200,000 of them).
    let site = dir.path().join("site.pcap");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&site).unwrap());
    flowmesh_sensor::synth::generate_for_hosts(FLOWS, 5_000, 60, Some(1_000), &mut f).unwrap();
    drop(f);
    let offline = offline_rate(&site);
    println!("the same flows from 1,000 local clients (a site):");
    report_offline(offline);
    for replicas in [3, 1] {
        let m = run(dir.path(), &site, allowed, false, 0.0, replicas);
        report(&format!("R{replicas} sealed"), &m, offline.0);
    }
    // Latency: 30 s of traffic in real time; HTTP is not allowed, so its flows alert.
    let small = dir.path().join("latency.pcap");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&small).unwrap());
    flowmesh_sensor::synth::generate(3_000, 300, 30, &mut f).unwrap();
    drop(f);
    let strict = "[acl]\nrules = \"\"\"\nTCP;*;*;443\nUDP;*;*;53\n\"\"\"\n";
    let mut lat = run(dir.path(), &small, strict, false, 1.0, 3).latencies;
    println!(
        "alert latency (packet time of the flow's last packet -> watch subscriber), {} alerts: p50 {:.0} ms, p99 {:.0} ms",
        lat.len(),
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    // `FLOWMESH_BENCH_KEEP=1` keeps the work directory: every run's sensor and collector logs.
    if std::env::var_os("FLOWMESH_BENCH_KEEP").is_some() {
        eprintln!("work directory kept: {}", dir.keep().display());
    }
}
