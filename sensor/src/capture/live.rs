//! Live capture from an interface through libpcap: immediate mode, an optional BPF filter,
//! and the kernel's drop counters.

use super::{CaptureError, LinkType, Packet};

/// Kernel and interface counters of a live capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets the kernel handed to the capture.
    pub received: u64,
    /// Packets dropped because the capture buffer was full (we were too slow).
    pub dropped: u64,
    /// Packets dropped by the interface or its driver.
    pub if_dropped: u64,
}

/// A live capture.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    /// The last read found nothing: wait for the descriptor before reading again.
    drained: bool,
}

/// How long one wait for packets lasts before an idle tick (and a look at the stop flag).
const WAIT_MS: i32 = 200;

/// What the next read gave.
pub enum Next<'a> {
    /// A packet.
    Packet(Packet<'a>),
    /// Nothing within the read timeout; the wall clock, µs since the epoch.
    Idle(i64),
}

fn live_error(iface: &str, e: impl std::fmt::Display) -> CaptureError {
    let msg = e.to_string();
    let hint = if msg.contains("ermission") || msg.contains("not permitted") {
        " (capturing needs root or CAP_NET_RAW: sudo setcap cap_net_raw,cap_net_admin=eip $(command -v flowmesh))"
    } else if msg.contains("No such device") || msg.contains("doesn't exist") {
        " (list interfaces with `ip link`)"
    } else {
        ""
    };
    CaptureError::Live {
        iface: iface.to_string(),
        reason: format!("{msg}{hint}"),
    }
}

impl LiveCapture {
    /// Opens `iface` in promiscuous immediate mode with an optional BPF `filter`.
    pub fn open(iface: &str, filter: Option<&str>) -> Result<Self, CaptureError> {
        let mut cap = pcap::Capture::from_device(iface)
            .map_err(|e| live_error(iface, e))?
            .promisc(true)
            .immediate_mode(true)
            .snaplen(65535)
            .buffer_size(16 << 20)
            .timeout(WAIT_MS)
            .open()
            .map_err(|e| live_error(iface, e))?
            // Non-blocking, waiting in our own poll(): libpcap's own wait is not interrupted by
            // signals in immediate mode, and Ctrl-C must stop the capture.
            .setnonblock()
            .map_err(|e| live_error(iface, e))?;
        if let Some(f) = filter {
            cap.filter(f, true).map_err(|e| CaptureError::Live {
                iface: iface.to_string(),
                reason: format!("filter {f:?}: {e}"),
            })?;
        }
        let link = LinkType(u16::try_from(cap.get_datalink().0).unwrap_or(u16::MAX));
        Ok(LiveCapture {
            cap,
            link,
            drained: false,
        })
    }

    /// The next packet, or `Idle` after the wait timeout or a signal.
    pub fn read(&mut self) -> Result<Next<'_>, CaptureError> {
        let link = self.link;
        if self.drained {
            let mut pfd = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&self.cap),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut pfd, 1, WAIT_MS) };
            if ready <= 0 {
                // Timeout, or interrupted by a signal: an idle tick either way.
                return Ok(Next::Idle(crate::capture::wall_micros()));
            }
        }
        match self.cap.next_packet() {
            Ok(p) => {
                self.drained = false;
                Ok(Next::Packet(Packet {
                    ts_micros: p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec,
                    data: p.data,
                    wire_len: p.header.len,
                    link,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.drained = true;
                Ok(Next::Idle(crate::capture::wall_micros()))
            }
            Err(e) => Err(CaptureError::Live {
                iface: String::new(),
                reason: e.to_string(),
            }),
        }
    }

    /// The kernel's counters so far.
    pub fn stats(&mut self) -> Option<LiveStats> {
        self.cap.stats().ok().map(|s| LiveStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}
