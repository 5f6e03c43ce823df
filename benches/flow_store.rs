//! The collector's flow store: `cargo bench --bench flow_store` (figures, no assertions).
//!
//! Records come from the synthetic capture (`flowmesh gen`: 1M flows of TLS, DNS and HTTP over
//! one hour, read by the sensor's offline path). Measured on one thread:
//! - ingest: blocks built and committed in groups as the collector does (256 batches of 1,000
//!   flows a transaction), flows/s, next to decoding the same flows from protobuf (the
//!   baseline: what the collector does with every flow anyway);
//! - bytes per stored flow (blocks, and the redb file), before and after compaction;
//! - with `FLOWMESH_BENCH_STORE_COPIES` (default 10) copies of the hour, one hour after the
//!   other: one host's flows over one hour, and the top 10 applications of a day — then the same
//!   two queries by DuckDB over the store's Parquet export (when `FLOWMESH_PYTHON` or the deploy
//!   venv has duckdb), as a ratio. 100 copies are the issue's 100M flows.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use flowmesh_collector::store::flows::{FlowQuery, FlowSet, TopKind};
use flowmesh_collector::store::{Commit, SeriesDelta, Store};
use flowmesh_record::FlowRecord;

const HOUR_US: i64 = 3_600_000_000;
const BATCH: usize = 1000;
const GROUP: usize = 256;

fn records(flows: u64) -> Vec<FlowRecord> {
    let mut pcap = Vec::new();
    flowmesh_sensor::synth::generate(flows, 10_000, 3600, &mut pcap).expect("generate");
    let mut out = Vec::with_capacity(flows as usize);
    let reader = flowmesh_sensor::capture::CaptureReader::new(&pcap[..]).expect("a capture");
    flowmesh_sensor::offline::run_reader(reader, &mut |r| out.push(r)).expect("read");
    out
}

/// Stores `copies` copies of `base`, copy k shifted by k hours; returns seconds spent.
fn ingest(store: &Store, base: &[FlowRecord], copies: std::ops::Range<usize>) -> f64 {
    let t0 = base.iter().map(|r| r.first_seen).min().unwrap_or(0);
    let profiles: [&[&str]; 3] = [&["web"], &[], &["web", "guests"]];
    let mut seconds = 0.0;
    for k in copies {
        let mut batch_no = 0u64;
        let shift = k as i64 * HOUR_US;
        let batches: Vec<&[FlowRecord]> = base.chunks(BATCH).collect();
        for group in batches.chunks(GROUP) {
            let start = Instant::now();
            let mut sets = Vec::with_capacity(group.len());
            for b in group {
                let mut set = FlowSet::default();
                for (i, r) in b.iter().enumerate() {
                    let mut r = r.clone();
                    r.first_seen += shift;
                    r.last_seen += shift;
                    set.push(&r, profiles[i % 3], t0 + shift + 2 * HOUR_US);
                }
                sets.push(set);
            }
            let ids: Vec<String> = (0..group.len())
                .map(|i| format!("bench/{k}/{}", batch_no + i as u64))
                .collect();
            batch_no += group.len() as u64;
            let empty = SeriesDelta::default();
            let commits: Vec<Commit<'_>> = sets
                .iter()
                .zip(&ids)
                .map(|(s, id)| Commit {
                    batch_id: Some(id),
                    instance: "bench",
                    alerts: &[],
                    series: &empty,
                    now_micros: 0,
                    flows: Some(s),
                })
                .collect();
            store.commit_all(&commits).expect("commit");
            seconds += start.elapsed().as_secs_f64();
        }
    }
    seconds
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.expect("one run"))
}

fn duckdb_python() -> Option<String> {
    let candidates = [
        std::env::var("FLOWMESH_PYTHON").ok(),
        std::env::var("HOME")
            .ok()
            .map(|h| format!("{h}/.cache/flowmesh/venv/bin/python")),
    ];
    candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import duckdb"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn main() {
    let flows: u64 = std::env::var("FLOWMESH_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let copies: usize = std::env::var("FLOWMESH_BENCH_STORE_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let base = records(flows);
    println!(
        "flow store bench: {} records from the synthetic capture",
        base.len()
    );
    let dir =
        tempfile::tempdir_in(std::env::var("FLOWMESH_BENCH_DIR").unwrap_or("/var/tmp".into()))
            .expect("tmp");

    // Baseline: what the collector does with every flow anyway — its batch decoded from
    // protobuf into records.
    let encoded: Vec<Vec<u8>> = base
        .chunks(BATCH)
        .map(|b| {
            use prost::Message;
            flowmesh_proto::v1::FlowBatch {
                flows: b
                    .iter()
                    .map(|r| flowmesh_record::codec::to_proto(r, false))
                    .collect(),
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect();
    let (t_decode, decoded) = best_of(3, || {
        use prost::Message;
        let mut n = 0usize;
        for e in &encoded {
            let batch = flowmesh_proto::v1::FlowBatch::decode(e.as_slice()).expect("decode");
            for f in batch.flows {
                n += usize::from(flowmesh_record::codec::from_proto(f).is_ok());
            }
        }
        n
    });
    let s_plain = t_decode.as_secs_f64();
    let path = dir.path().join("flows.redb");
    let store = Store::open(&path).expect("open");
    let s = ingest(&store, &base, 0..1);
    let n = base.len() as f64;
    println!(
        "ingest (blocks built + committed, one thread): {:.0} flows/s; baseline, decoding the same {decoded} flows from protobuf: {:.0} flows/s; store/decode time ratio {:.2}",
        n / s,
        decoded as f64 / s_plain,
        s / s_plain
    );
    let st = store.flow_stats().expect("stats");
    let file = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "bytes per flow, as written: {:.1} B in blocks, {:.1} B of file",
        st.bytes as f64 / st.flows as f64,
        file as f64 / st.flows as f64
    );
    let now = (st.newest_hour.unwrap_or(0) + 7200) + 3600;
    let (t, merged) = best_of(1, || store.compact_flows(now, 600).expect("compact"));
    let st = store.flow_stats().expect("stats");
    println!(
        "compaction: {merged} blocks merged in {:.2} s; {:.1} B per flow in blocks after",
        t.as_secs_f64(),
        st.bytes as f64 / st.flows as f64
    );
    if copies > 1 {
        let s = ingest(&store, &base, 1..copies);
        let more = n * (copies - 1) as f64;
        let st = store.flow_stats().expect("stats");
        let now = st.newest_hour.unwrap_or(0) + 7200;
        let (t, _) = best_of(1, || store.compact_flows(now, 600).expect("compact"));
        let file = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let st = store.flow_stats().expect("stats");
        println!(
            "{} flows stored ({} hours): ingest {:.0} flows/s, compaction {:.1} s; {:.1} B per flow in blocks, {:.1} B of file",
            st.flows,
            copies,
            more / s,
            t.as_secs_f64(),
            st.bytes as f64 / st.flows as f64,
            file as f64 / st.flows as f64
        );
    }
    // Queries: a host of the middle hour, over that hour; top 10 applications over a day.
    let host: IpAddr = base[base.len() / 2].server_ip;
    let hour0 = store.flow_stats().expect("stats").oldest_hour.unwrap_or(0);
    let mid = hour0 + (copies as i64 / 2) * 3600;
    let host_q = FlowQuery {
        host: Some(host.to_string().parse().expect("cidr")),
        from_us: Some(mid * 1_000_000),
        to_us: Some((mid + 3600) * 1_000_000),
        ..FlowQuery::default()
    };
    let (t_host, found) = best_of(3, || store.search_flows(&host_q).expect("search"));
    let day = FlowQuery {
        from_us: Some(hour0 * 1_000_000),
        to_us: Some((hour0 + 86_400) * 1_000_000),
        ..FlowQuery::default()
    };
    let (t_top, top) = best_of(3, || {
        store
            .top_flows(&day, TopKind::Apps, false, 10)
            .expect("top")
    });
    println!(
        "query: host {host} over one hour: {} flows in {:.3} s; top 10 apps over a day ({} hours): {:.3} s (first: {} {} B)",
        found.len(),
        t_host.as_secs_f64(),
        copies.min(24),
        t_top.as_secs_f64(),
        top.first().map_or("-", |e| e.key.as_str()),
        top.first().map_or(0, |e| e.bytes)
    );
    let Some(python) = duckdb_python() else {
        println!("duckdb: not installed (./deploy/test.sh installs it); no comparison");
        return;
    };
    let out = dir.path().join("parquet");
    let t = Instant::now();
    let mut exported = 0;
    for h in store.flow_hours(i64::MIN, i64::MAX).expect("hours") {
        exported += store
            .export_hour(
                h,
                &flowmesh_collector::store::flows::parquet::hour_path(&out, h),
            )
            .expect("export");
    }
    println!(
        "parquet export: {exported} flows in {:.1} s ({:.1} B per flow on disk)",
        t.elapsed().as_secs_f64(),
        dir_size(&out) as f64 / exported.max(1) as f64
    );
    let script = format!(
        r#"
import duckdb, time
con = duckdb.connect()
con.execute("SET threads TO 1")
src = "read_parquet('{dir}/**/*.parquet')"
def best(sql):
    b = 1e9
    for _ in range(3):
        t = time.perf_counter(); r = con.execute(sql).fetchall(); b = min(b, time.perf_counter() - t)
    return b, r
th, rh = best(f"select count(*) from {{src}} where (client_ip = '{host}' or server_ip = '{host}') and last_seen >= to_timestamp({from}) and first_seen < to_timestamp({to})")
tt, rt = best(f"select coalesce(app, l7) k, sum(c2s_bytes + s2c_bytes) b from {{src}} where last_seen >= to_timestamp({d0}) and first_seen < to_timestamp({d1}) group by k order by b desc limit 10")
print(th, rh[0][0], tt, rt[0][0], rt[0][1])
"#,
        dir = out.display(),
        from = mid,
        to = mid + 3600,
        d0 = hour0,
        d1 = hour0 + 86_400,
    );
    let o = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&o.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    if !o.status.success() || v.len() < 5 {
        println!("duckdb failed: {}", String::from_utf8_lossy(&o.stderr));
        return;
    }
    let th: f64 = v[0].parse().unwrap_or(f64::NAN);
    let tt: f64 = v[2].parse().unwrap_or(f64::NAN);
    println!(
        "duckdb (1 thread, same Parquet): host query {th:.3} s ({} flows), top apps {tt:.3} s ({} {} B); flowmesh/duckdb time ratio: host {:.2}, top {:.2}",
        v[1],
        v[3],
        v[4],
        t_host.as_secs_f64() / th,
        t_top.as_secs_f64() / tt
    );
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                dir_size(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
