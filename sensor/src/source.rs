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
    /// The file ended and loops: it is opened again at the next call.
    reopen: bool,
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
            reopen: false,
            wall_start: wall_micros(),
        })
    }

    /// Opens the file again for its next loop.
    fn reopen(&mut self, first: i64) -> Result<(), CaptureError> {
        self.loop_offset += self.last_ts - first + 1_000_000;
        self.reader = CaptureReader::open(&self.path)?;
        Ok(())
    }

    /// The next packet into `held` (a copy: pacing may hand out an idle tick and keep the
    /// packet for the next call); `false` at the end of input.
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
            self.reopen(first)?;
        }
    }

    /// As fast as the file reads: every packet straight from the reader's buffer, no copy
    /// (the copy was 6% of a sensor's time). At the end of a looping file, an idle tick at
    /// the last packet's time (which moves no clock) while the file is opened again.
    fn next_unpaced(&mut self) -> Result<Option<Next<'_>>, CaptureError> {
        if self.reopen {
            self.reopen = false;
            if let Some(first) = self.first_ts {
                self.reopen(first)?;
            }
        }
        match self.reader.next_packet()? {
            Some(p) => {
                self.first_ts.get_or_insert(p.ts_micros);
                self.last_ts = self.last_ts.max(p.ts_micros);
                self.counters.packets.fetch_add(1, Ordering::Relaxed);
                Ok(Some(Next::Packet(Packet {
                    ts_micros: p.ts_micros + self.loop_offset,
                    ..p
                })))
            }
            None if self.looping && self.first_ts.is_some() => {
                self.reopen = true;
                Ok(Some(Next::Idle(self.last_ts + self.loop_offset)))
            }
            None => Ok(None),
        }
    }
}

impl PacketSource for Replay {
    fn next_packet(&mut self) -> Result<Option<Next<'_>>, CaptureError> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if self.speed <= 0.0 {
            return self.next_unpaced();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Packet times (`Some`) and idle ticks (`None`, with their time) of `n` calls.
    fn times(replay: &mut Replay, n: usize) -> Vec<(bool, i64)> {
        (0..n)
            .map_while(|_| match replay.next_packet().unwrap()? {
                Next::Packet(p) => Some((true, p.ts_micros)),
                Next::Idle(t) => Some((false, t)),
            })
            .collect()
    }

    #[test]
    fn an_unpaced_replay_hands_out_the_file_and_a_loop_moves_time_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcap");
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        crate::synth::generate(20, 5, 2, &mut f).unwrap();
        drop(f);
        let mut reader = CaptureReader::open(&path).unwrap();
        let mut file = Vec::new();
        while let Some(p) = reader.next_packet().unwrap() {
            file.push((p.ts_micros, p.data.to_vec()));
        }
        let open = |looping| {
            let stop = Arc::new(AtomicBool::new(false));
            Replay::open(&path, 0.0, looping, stop, Arc::default()).unwrap()
        };
        // Once: the file's packets, bytes and times as they are, then the end.
        let mut once = open(false);
        for (ts, data) in &file {
            match once.next_packet().unwrap() {
                Some(Next::Packet(p)) => assert_eq!((p.ts_micros, p.data), (*ts, &data[..])),
                _ => panic!("a packet of the file is missing"),
            }
        }
        assert!(once.next_packet().unwrap().is_none());
        assert_eq!(
            once.counters.packets.load(Ordering::Relaxed),
            file.len() as u64
        );
        // Looping: an idle tick at the last packet's time, then the file again, later.
        let n = file.len();
        let got = times(&mut open(true), 2 * n + 1);
        let (first, last) = (file[0].0, file.iter().map(|p| p.0).max().unwrap());
        assert!(got[..n].iter().zip(&file).all(|(g, f)| *g == (true, f.0)));
        assert_eq!(got[n], (false, last));
        let offset = last - first + 1_000_000;
        assert!(
            got[n + 1..]
                .iter()
                .zip(&file)
                .all(|(g, f)| *g == (true, f.0 + offset))
        );
    }
}
