//! Packet sources for the sensor daemon: a capture file replayed in real time (or faster, or
//! looping), and a live interface — both counting what they read for the heartbeat.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::capture::{
    CaptureError, CaptureReader, LinkType, LiveCapture, Next, Packet, wall_micros,
};
use crate::offline::PacketSource;

/// Counters a source keeps for the heartbeat.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Packets read.
    pub packets: AtomicU64,
    /// Packets the kernel or interface dropped (live only).
    pub dropped: AtomicU64,
}

/// The longest single sleep while pacing: the flow table still gets idle ticks.
const TICK: Duration = Duration::from_millis(100);

/// A capture file replayed at `speed` × real time (0: as fast as it reads), packet times moved
/// to the wall clock so alerts carry the time the replay "saw" them; optionally looping.
pub struct Replay {
    path: PathBuf,
    reader: CaptureReader<BufReader<File>>,
    speed: f64,
    looping: bool,
    stop: Arc<AtomicBool>,
    counters: Arc<CaptureCounters>,
    held: Option<(i64, u32, LinkType)>,
    buf: Vec<u8>,
    first_ts: Option<i64>,
    last_ts: i64,
    /// Capture time added per loop, so a looped capture keeps moving forward.
    loop_offset: i64,
    wall_start: i64,
}

impl Replay {
    /// Opens `path` for replay.
    pub fn open(
        path: &Path,
        speed: f64,
        looping: bool,
        stop: Arc<AtomicBool>,
        counters: Arc<CaptureCounters>,
    ) -> Result<Self, CaptureError> {
        Ok(Replay {
            path: path.to_path_buf(),
            reader: CaptureReader::open(path)?,
            speed,
            looping,
            stop,
            counters,
            held: None,
            buf: Vec::new(),
            first_ts: None,
            last_ts: 0,
            loop_offset: 0,
            wall_start: wall_micros(),
        })
    }

    /// The next packet into `held`; `false` at the end of input.
    fn fill(&mut self) -> Result<bool, CaptureError> {
        loop {
            if let Some(p) = self.reader.next_packet()? {
                self.buf.clear();
                self.buf.extend_from_slice(p.data);
                self.held = Some((p.ts_micros, p.wire_len, p.link));
                return Ok(true);
            }
            let Some(first) = self.first_ts.filter(|_| self.looping) else {
                return Ok(false);
            };
            self.loop_offset += self.last_ts - first + 1_000_000;
            self.reader = CaptureReader::open(&self.path)?;
        }
    }
}

impl PacketSource for Replay {
    fn next_packet(&mut self) -> Result<Option<Next<'_>>, CaptureError> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if self.held.is_none() && !self.fill()? {
            return Ok(None);
        }
        let Some((ts, wire_len, link)) = self.held else {
            return Ok(None);
        };
        let first = *self.first_ts.get_or_insert(ts);
        self.last_ts = self.last_ts.max(ts);
        let ts_out = if self.speed > 0.0 {
            let due =
                self.wall_start + ((ts - first + self.loop_offset) as f64 / self.speed) as i64;
            let now = wall_micros();
            if due > now {
                std::thread::sleep(Duration::from_micros((due - now) as u64).min(TICK));
                if due > wall_micros() {
                    return Ok(Some(Next::Idle(wall_micros())));
                }
            }
            due
        } else {
            ts + self.loop_offset
        };
        self.held = None;
        self.counters.packets.fetch_add(1, Ordering::Relaxed);
        Ok(Some(Next::Packet(Packet {
            ts_micros: ts_out,
            data: &self.buf,
            wire_len,
            link,
        })))
    }
}

/// A live capture that counts packets and reads the kernel's drop counters on idle ticks.
pub struct CountedLive {
    cap: LiveCapture,
    counters: Arc<CaptureCounters>,
    since_stats: u32,
    was_idle: bool,
}

impl CountedLive {
    /// Wraps an open capture.
    pub fn new(cap: LiveCapture, counters: Arc<CaptureCounters>) -> Self {
        CountedLive {
            cap,
            counters,
            since_stats: 0,
            was_idle: false,
        }
    }
}

impl PacketSource for CountedLive {
    fn next_packet(&mut self) -> Result<Option<Next<'_>>, CaptureError> {
        // Drop counters are read on idle ticks and every 100,000 packets (a syscall each).
        self.since_stats += 1;
        if self.was_idle || self.since_stats >= 100_000 {
            self.since_stats = 0;
            if let Some(s) = self.cap.stats() {
                self.counters
                    .dropped
                    .store(s.dropped + s.if_dropped, Ordering::Relaxed);
            }
        }
        let next = self.cap.read()?;
        self.was_idle = matches!(next, Next::Idle(_));
        if !self.was_idle {
            self.counters.packets.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(next))
    }
}
