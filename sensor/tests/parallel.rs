//! Flow workers give the single-threaded records: on a generated capture (thousands of
//! concurrent flows), with the capture's packets shuffled out of time order in places (idle
//! expiry then depends on the capture clock, which the reader ticks into every worker), and
//! with flows split at period boundaries. `tests/corpus.rs` compares the same on the corpus.

use std::sync::atomic::AtomicBool;

use flowmesh_sensor::capture::CaptureReader;
use flowmesh_sensor::flow::{FlowRecord, PERIOD_MICROS, TableConfig};
use flowmesh_sensor::{offline, parallel};

fn lines(records: Vec<FlowRecord>) -> Vec<String> {
    let mut l: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    l.sort();
    l
}

fn single(capture: &[u8], config: TableConfig) -> Vec<String> {
    let mut out = Vec::new();
    offline::run_reader_with(CaptureReader::new(capture).unwrap(), config, &mut |r| {
        out.push(r)
    })
    .unwrap();
    lines(out)
}

/// The records of `threads` flow tables, in both layouts (the reader keeping one or not);
/// both must be the same.
fn workers(capture: &[u8], config: TableConfig, threads: usize) -> Vec<String> {
    let [a, b] = [false, true].map(|reader_keeps_one| {
        let mut out = Vec::new();
        let mut reader = CaptureReader::new(capture).unwrap();
        let stats = parallel::run(
            &mut reader,
            &AtomicBool::new(false),
            config,
            parallel::Layout {
                tables: threads,
                reader_keeps_one,
            },
            &mut |r| out.push(r),
        )
        .unwrap();
        assert_eq!(stats.flows, out.len() as u64);
        lines(out)
    });
    assert_eq!(
        a, b,
        "{threads} tables: the reader's keeping one changes the records"
    );
    a
}

/// Swaps the timestamps of packet pairs here and there (a capture merged from two taps).
fn shuffle_times(mut capture: Vec<u8>) -> Vec<u8> {
    let mut offsets = Vec::new();
    let mut off = 24;
    while off + 16 <= capture.len() {
        offsets.push(off);
        let incl = u32::from_le_bytes(capture[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
    }
    for pair in offsets.chunks(2).step_by(37) {
        if let [a, b] = pair {
            for i in 0..8 {
                capture.swap(a + i, b + i);
            }
        }
    }
    capture
}

/// A UDP packet from 10.0.0.`a` to 10.0.1.`b`, Ethernet.
fn udp(a: u8, b: u8) -> Vec<u8> {
    use flowmesh_sensor::synth::*;
    eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4([10, 0, 0, a], [10, 0, 1, b], 17, &udp(40000, 500, b"x")),
    )
}

#[test]
fn the_capture_clock_reaches_every_worker() {
    // Flow A at 1000 s; other flows move the clock to 1300 s (a single table's sweep expires
    // A: idle 300 s > 180 s); then A again, stamped 1100 s (the capture went back in time):
    // on one thread that is a new flow, so every worker must have heard the clock too.
    // One other flow at a time, so that it is on A's worker for some of them and not for others.
    for b in 2..24 {
        let packets = [(1000, udp(1, 1)), (1300, udp(b, b)), (1100, udp(1, 1))];
        let capture = flowmesh_sensor::synth::pcap_at(1, &packets);
        let one = single(&capture, TableConfig::default());
        let a = one
            .iter()
            .filter(|l| l.contains("\"client_ip\":\"10.0.0.1\""))
            .count();
        assert_eq!(a, 2, "the single-threaded table split flow A: {one:#?}");
        for threads in [2, 3, 5] {
            assert_eq!(
                one,
                workers(&capture, TableConfig::default(), threads),
                "other flow {b}, {threads} threads"
            );
        }
    }
}

#[test]
fn flow_workers_give_the_single_threaded_records() {
    let mut capture = Vec::new();
    flowmesh_sensor::synth::generate(3000, 600, 900, &mut capture).unwrap();
    let shuffled = shuffle_times(capture.clone());
    let split = TableConfig {
        period_micros: PERIOD_MICROS,
        ..TableConfig::default()
    };
    for (name, cap, config) in [
        ("generated", &capture, TableConfig::default()),
        ("timestamps out of order", &shuffled, TableConfig::default()),
        ("split at period boundaries", &capture, split),
    ] {
        let one = single(cap, config);
        assert!(one.len() >= 3000, "{name}: {}", one.len());
        for threads in [1, 2, 3, 5] {
            assert_eq!(
                one,
                workers(cap, config, threads),
                "{name}, {threads} threads"
            );
        }
    }
}

/// What a run reports, in order: records (their first packet's time) and watermarks.
#[derive(Debug)]
enum Heard {
    Record(i64),
    Mark(i64),
}

/// Every record heard after a watermark starts at or after it: what the collector relies on
/// to judge a period once its watermark has passed.
fn check_marks(heard: &[Heard], what: &str) -> Vec<i64> {
    let mut mark = i64::MIN;
    let mut marks = Vec::new();
    for h in heard {
        match *h {
            Heard::Mark(m) => {
                assert!(m > mark, "{what}: watermark went from {mark} to {m}");
                mark = m;
                marks.push(m);
            }
            Heard::Record(first) => assert!(
                first >= mark,
                "{what}: a record starting at {first} came after watermark {mark}"
            ),
        }
    }
    marks
}

#[test]
fn flow_workers_report_the_single_threaded_watermarks_after_their_records() {
    let mut capture = Vec::new();
    flowmesh_sensor::synth::generate(3000, 600, 900, &mut capture).unwrap();
    let config = TableConfig {
        period_micros: PERIOD_MICROS,
        ..TableConfig::default()
    };
    let heard = std::cell::RefCell::new(Vec::new());
    offline::run_reader_observed(
        CaptureReader::new(&capture[..]).unwrap(),
        config,
        &mut |_| {},
        &mut |m| heard.borrow_mut().push(Heard::Mark(m)),
        &mut |r| heard.borrow_mut().push(Heard::Record(r.first_seen)),
    )
    .unwrap();
    let one = check_marks(&heard.take(), "one thread");
    assert!(one.len() >= 3, "the capture crosses periods: {one:?}");
    for (threads, reader_keeps_one) in [(2, false), (2, true), (3, false), (3, true)] {
        let mut reader = CaptureReader::new(&capture[..]).unwrap();
        parallel::run_with(
            &mut reader,
            &AtomicBool::new(false),
            config,
            parallel::Layout {
                tables: threads,
                reader_keeps_one,
            },
            &|r: FlowRecord, out: &mut Vec<i64>| out.push(r.first_seen),
            &mut |m| heard.borrow_mut().push(Heard::Mark(m)),
            &mut |firsts| {
                let mut h = heard.borrow_mut();
                h.extend(firsts.into_iter().map(Heard::Record));
            },
        )
        .unwrap();
        let what = format!("{threads} tables, the reader keeping one: {reader_keeps_one}");
        assert_eq!(check_marks(&heard.take(), &what), one, "{what}");
    }
}
