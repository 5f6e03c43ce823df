//! The flow store from the command line: `flowmesh check --store` keeps every flow with the
//! profiles it matched; `flows-search` finds them by host, port, protocol and profile and
//! ranks them; `flows-export` writes Parquet that DuckDB — an independent reader — reads back
//! with the same counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn flowmesh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    flowmesh_testkit::die_with_parent(&mut cmd);
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("flowmesh runs");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn key(f: &Value) -> String {
    format!(
        "{} {}:{} {}:{}",
        f["l4"], f["client_ip"], f["client_port"], f["server_ip"], f["server_port"]
    )
}

/// (packets, bytes) per flow tuple, records of one flow summed.
fn sums(flows: &[Value]) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::<String, (u64, u64)>::new();
    for f in flows {
        let n = |k: &str| f[k].as_u64().expect(k);
        let e = out.entry(key(f)).or_default();
        e.0 += n("c2s_packets") + n("s2c_packets");
        e.1 += n("c2s_bytes") + n("s2c_bytes");
    }
    out
}

const POLICY: &str = r#"
[[profile]]
name = "dns"
bpf = "udp port 53"

[[profile]]
name = "web"
bpf = "tcp port 443 or tcp port 80"
"#;

struct Fixture {
    dir: tempfile::TempDir,
    offline: Vec<Value>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tmp");
        let capture = dir.path().join("c.pcap");
        // 15 minutes of capture time: flows cross 5-minute boundaries and are stored in parts.
        run(flowmesh()
            .args([
                "gen",
                "--flows",
                "3000",
                "--concurrent",
                "300",
                "--span",
                "900",
                "--out",
            ])
            .arg(&capture));
        std::fs::write(dir.path().join("p.toml"), POLICY).expect("policy");
        let offline = json_lines(&run(flowmesh().arg("flows").arg(&capture)));
        assert!(offline.len() >= 3000, "{}", offline.len());
        for _ in 0..2 {
            // Twice: the second adds nothing.
            run(flowmesh()
                .args(["check", "--instance", "lab", "--policy"])
                .arg(dir.path().join("p.toml"))
                .arg("--store")
                .arg(dir.path().join("s.redb"))
                .arg(&capture));
        }
        Fixture { dir, offline }
    }

    fn store(&self) -> std::path::PathBuf {
        self.dir.path().join("s.redb")
    }

    fn search(&self, args: &[&str]) -> Vec<Value> {
        json_lines(&run(flowmesh()
            .arg("flows-search")
            .arg("--store")
            .arg(self.store())
            .args(args)))
    }
}

#[test]
fn every_flow_is_stored_once_with_its_profiles_and_found_by_each_filter() {
    let fx = Fixture::new();
    let stored = fx.search(&["--limit", "0"]);
    assert_eq!(
        sums(&stored),
        sums(&fx.offline),
        "stored flows against `flowmesh flows`"
    );
    assert!(stored.iter().all(|f| f["instance"] == "lab"));
    assert!(
        stored
            .windows(2)
            .all(|w| w[0]["last_seen"].as_str() >= w[1]["last_seen"].as_str()),
        "newest first"
    );
    // Profiles: exactly the flows their BPF selects.
    let is_dns = |f: &Value| f["l4"] == "UDP" && (f["server_port"] == 53 || f["client_port"] == 53);
    let dns = fx.search(&["--profile", "dns", "--limit", "0"]);
    assert_eq!(dns.len(), stored.iter().filter(|f| is_dns(f)).count());
    assert!(!dns.is_empty());
    assert!(dns.iter().all(|f| {
        f["profiles"]
            .as_array()
            .expect("profiles")
            .contains(&Value::from("dns"))
    }));
    assert!(stored.iter().filter(|f| !is_dns(f)).all(|f| {
        !f["profiles"]
            .as_array()
            .expect("p")
            .contains(&Value::from("dns"))
    }));
    // Host, port, protocol, server name, time.
    let host = stored[stored.len() / 2]["server_ip"]
        .as_str()
        .expect("ip")
        .to_string();
    let by_host = fx.search(&["--host", &host, "--limit", "0"]);
    assert_eq!(
        by_host.len(),
        stored
            .iter()
            .filter(|f| f["client_ip"] == host.as_str() || f["server_ip"] == host.as_str())
            .count()
    );
    assert_eq!(
        fx.search(&["--port", "443", "--limit", "0"]).len(),
        stored
            .iter()
            .filter(|f| f["server_port"] == 443 || f["client_port"] == 443)
            .count()
    );
    let tls = fx.search(&["--l7", "TLS", "--limit", "0"]);
    assert_eq!(
        tls.len(),
        stored.iter().filter(|f| f["l7"] == "TLS").count()
    );
    assert!(!tls.is_empty());
    let named = stored
        .iter()
        .find_map(|f| f["server_name"].as_str())
        .expect("a flow with a server name")
        .to_string();
    let parent = named
        .split_once('.')
        .map_or(named.as_str(), |(_, p)| p)
        .to_string();
    let under = fx.search(&["--server-name", &parent, "--limit", "0"]);
    assert!(under.iter().any(|f| f["server_name"] == named.as_str()));
    assert!(under.iter().all(|f| {
        f["server_name"]
            .as_str()
            .is_some_and(|n| n.ends_with(&parent))
    }));
    let mid = stored[stored.len() / 2]["last_seen"]
        .as_str()
        .expect("time")
        .to_string();
    let newer = fx.search(&["--from", &mid, "--limit", "0"]);
    assert_eq!(
        newer.len(),
        stored
            .iter()
            .filter(|f| f["last_seen"].as_str() >= Some(mid.as_str()))
            .count()
    );
    // A limit keeps the newest.
    let ten = fx.search(&["--limit", "10"]);
    assert_eq!(ten, stored[..10]);
}

#[test]
fn top_lists_add_up_and_profiles_have_their_series() {
    let fx = Fixture::new();
    let stored = fx.search(&["--limit", "0"]);
    let total: u64 = sums(&stored).values().map(|(_, b)| b).sum();
    let top = fx.search(&["--top", "l7", "--limit", "0"]);
    assert_eq!(
        top.iter()
            .map(|t| t["bytes"].as_u64().expect("bytes"))
            .sum::<u64>(),
        total
    );
    assert!(
        top.windows(2)
            .all(|w| w[0]["bytes"].as_u64() >= w[1]["bytes"].as_u64())
    );
    let by_flows = fx.search(&["--top", "apps", "--by", "flows", "--limit", "3"]);
    assert_eq!(by_flows.len(), 3);
    assert!(
        by_flows
            .windows(2)
            .all(|w| w[0]["flows"].as_u64() >= w[1]["flows"].as_u64())
    );
    let talkers = fx.search(&["--top", "talkers", "--limit", "1"]);
    assert!(talkers[0]["key"].as_str().expect("key").contains(" -> "));
    // The per-profile series (ntopng's Profile Details chart) holds the profile's bytes.
    let points = json_lines(&run(flowmesh()
        .args([
            "series",
            "--instance",
            "lab",
            "--series",
            "profile:web",
            "--resolution",
            "1d",
            "--store",
        ])
        .arg(fx.store())));
    let web_bytes: u64 = fx
        .search(&["--profile", "web", "--limit", "0"])
        .iter()
        .map(|f| f["c2s_bytes"].as_u64().expect("b") + f["s2c_bytes"].as_u64().expect("b"))
        .sum();
    assert!(web_bytes > 0);
    assert_eq!(
        points
            .iter()
            .map(|p| p["bytes"].as_u64().expect("bytes"))
            .sum::<u64>(),
        web_bytes
    );
    let profiles = fx.search(&["--top", "profiles", "--by", "flows"]);
    let keys: Vec<&str> = profiles.iter().filter_map(|p| p["key"].as_str()).collect();
    assert!(keys.contains(&"dns") && keys.contains(&"web"), "{keys:?}");
}

/// The Python that has DuckDB: `$FLOWMESH_PYTHON` (set by deploy/test.sh), else the venv the
/// deploy scripts make.
fn duckdb_python() -> String {
    let candidates = [
        std::env::var("FLOWMESH_PYTHON").ok(),
        std::env::var("HOME")
            .ok()
            .map(|h| format!("{h}/.cache/flowmesh/venv/bin/python")),
    ];
    for p in candidates.into_iter().flatten() {
        let ok = Command::new(&p)
            .args(["-c", "import duckdb"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return p;
        }
    }
    panic!(
        "no Python with DuckDB: run ./deploy/test.sh (it installs duckdb into the venv) or set FLOWMESH_PYTHON"
    );
}

fn duckdb(dir: &Path, sql: &str) -> Value {
    let script = format!(
        "import duckdb, json\nr = duckdb.sql(\"\"\"{}\"\"\").fetchall()\nprint(json.dumps([list(map(lambda v: v if isinstance(v, (int, str, type(None))) else str(v), row)) for row in r]))",
        sql.replace("DIR", &dir.display().to_string())
    );
    let out = Command::new(duckdb_python())
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the script")
}

#[test]
fn parquet_export_reads_back_in_duckdb_with_the_same_counts() {
    let fx = Fixture::new();
    let out = fx.dir.path().join("parquet");
    let said = flowmesh()
        .arg("flows-export")
        .arg("--store")
        .arg(fx.store())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        said.status.success(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    let stored = fx.search(&["--limit", "0"]);
    let bytes: u64 = sums(&stored).values().map(|(_, b)| b).sum();
    let dns = stored
        .iter()
        .filter(|f| {
            f["profiles"]
                .as_array()
                .is_some_and(|p| p.contains(&Value::from("dns")))
        })
        .count();
    let rows = duckdb(
        &out,
        "select count(*), sum(c2s_bytes + s2c_bytes)::BIGINT, \
         count(*) filter (where list_contains(profiles, 'dns')), \
         count(distinct hour), min(instance), max(first_seen) <= max(last_seen) \
         from read_parquet('DIR/**/*.parquet', hive_partitioning = true)",
    );
    let row = &rows[0];
    assert_eq!(row[0].as_u64(), Some(stored.len() as u64), "{rows}");
    assert_eq!(row[1].as_u64(), Some(bytes), "{rows}");
    assert_eq!(row[2].as_u64(), Some(dns as u64), "{rows}");
    assert!(row[3].as_u64().is_some_and(|h| h >= 1), "{rows}");
    assert_eq!(row[4], "lab");
    // One flow, field by field, as DuckDB reads it.
    let f = &stored[0];
    let one = duckdb(
        &out,
        &format!(
            "select client_ip, client_port, server_ip, server_port, l7, c2s_bytes, \
             strftime(last_seen, '%Y-%m-%dT%H:%M:%S.%fZ') from read_parquet('DIR/**/*.parquet') \
             where client_ip = '{}' and client_port = {} and last_seen = '{}'::TIMESTAMPTZ",
            f["client_ip"].as_str().expect("ip"),
            f["client_port"],
            f["last_seen"].as_str().expect("t")
        ),
    );
    let r = &one[0];
    assert_eq!(r[0], f["client_ip"]);
    assert_eq!(r[2], f["server_ip"]);
    assert_eq!(r[3], f["server_port"]);
    assert_eq!(r[4], f["l7"]);
    assert_eq!(r[5], f["c2s_bytes"]);
    assert_eq!(r[6], f["last_seen"]);
}
