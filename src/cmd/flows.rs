//! `flowmesh flows`: one JSON flow record per line for a capture file.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use flowmesh_sensor::capture::{CaptureReader, LiveCapture};
use flowmesh_sensor::flow::{FlowRecord, TableConfig};
use flowmesh_sensor::offline::{self, RunStats};
use flowmesh_sensor::parallel;

/// Print flow records for a capture.
#[derive(clap::Args)]
pub struct Args {
    /// A pcap or pcapng file (the format is detected from its first bytes).
    file: Option<PathBuf>,
    /// Capture live from this interface instead, until interrupted (Ctrl-C / SIGTERM); flows
    /// print as they end, and every open flow at the stop. Needs root or CAP_NET_RAW.
    #[arg(long, conflicts_with = "file")]
    iface: Option<String>,
    /// With --iface: a tcpdump/BPF filter, e.g. "not port 22".
    #[arg(long, requires = "iface")]
    filter: Option<String>,
    /// Receive NetFlow v5/v9 and IPFIX from exporters on this UDP address instead (e.g.
    /// 0.0.0.0:2055), until interrupted: each record prints once both directions of its
    /// connection are in (or 2 s after one), with `exporter`, `in_if`, `out_if`, `sampling`.
    #[arg(long, conflicts_with_all = ["file", "iface"])]
    netflow: Option<String>,
    /// Seconds after which a running flow prints a record of what it did since its previous
    /// one (records of one flow add up). Default: off for files, 120 for --iface; 0 disables.
    #[arg(long)]
    active_timeout: Option<u64>,
    /// Split flows at 5-minute boundaries (as sensors do for the collector): each record then
    /// holds what its flow did within one period, and a flow's records add up.
    #[arg(long)]
    split_periods: bool,
    /// Flow workers: packets are spread over them by a symmetric hash of their addresses (both
    /// directions of a flow, and its fragments, on one worker); the records are the same, in
    /// another order. Default: every core; 1 runs it all on one thread.
    #[arg(long)]
    threads: Option<usize>,
}

/// Set by SIGINT/SIGTERM: the capture loop stops at its next packet or idle tick.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn stop_on_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if let Some(addr) = &a.netflow {
        return netflow(addr);
    }
    let source = match (&a.file, &a.iface) {
        (Some(f), None) => f.display().to_string(),
        (None, Some(i)) => i.clone(),
        _ => anyhow::bail!(
            "give a capture file (flowmesh flows FILE.pcap) or an interface (--iface eth0)"
        ),
    };
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut write_error = None;
    let live = a.iface.is_some();
    // Records are JSON lines; on flow workers, each worker writes its own (see `finish`).
    let mut write = |lines: &[u8]| {
        if write_error.is_none()
            && let Err(e) = out.write_all(lines)
        {
            write_error = Some(e);
        }
        // Live records should show as they end, not when a buffer fills.
        if live {
            let _ = out.flush();
        }
    };
    let finish = |record: FlowRecord, lines: &mut Vec<u8>| {
        record.write_json(lines);
        lines.push(b'\n');
    };
    let threads = parallel::workers(a.threads);
    let mut kernel = None;
    let active_secs = a
        .active_timeout
        .unwrap_or(if a.iface.is_some() { 120 } else { 0 });
    let config = TableConfig {
        active_micros: i64::try_from(active_secs).unwrap_or(i64::MAX / 2_000_000) * 1_000_000,
        // Live, a closed connection prints soon after its close; a file prints at the end anyway.
        tcp_closed_micros: if a.iface.is_some() {
            flowmesh_sensor::flow::LIVE_TCP_CLOSE_GRACE_MICROS
        } else {
            0
        },
        period_micros: if a.split_periods {
            flowmesh_sensor::flow::PERIOD_MICROS
        } else {
            0
        },
        ..TableConfig::default()
    };
    let mut one = Vec::with_capacity(4096);
    // The pipeline over a source: on flow workers, or on this thread.
    let mut run = |source: &mut dyn offline::PacketSource| {
        if threads > 1 {
            parallel::run_with(
                source,
                &STOP,
                config,
                threads,
                &finish,
                &mut |_| {},
                &mut |v: Vec<u8>| write(&v),
            )
        } else {
            offline::run(
                source,
                &STOP,
                None,
                config,
                &mut |_| {},
                &mut |_| {},
                &mut |r| {
                    finish(r, &mut one);
                    write(&one);
                    one.clear();
                },
            )
        }
    };
    let result = match &a.iface {
        Some(iface) => {
            stop_on_signals();
            match LiveCapture::open(iface, a.filter.as_deref()) {
                Err(e) => Err((RunStats::default(), e)),
                Ok(mut cap) => {
                    tracing::info!(%iface, filter = a.filter.as_deref().unwrap_or(""), threads, "capturing; Ctrl-C to stop");
                    let r = run(&mut cap);
                    kernel = cap.stats();
                    r
                }
            }
        }
        None => {
            let path = a.file.as_deref().unwrap_or(std::path::Path::new(""));
            CaptureReader::open(path)
                .map_err(|e| (RunStats::default(), e))
                .and_then(|mut reader| run(&mut reader))
        }
    };
    out.flush()?;
    if let Some(e) = write_error
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    let secs = started.elapsed().as_secs_f64();
    let (stats, err) = match result {
        Ok(s) => (s, None),
        Err((s, e)) => (s, Some(e)),
    };
    tracing::info!(
        packets = stats.packets,
        flows = stats.flows,
        non_ip = stats.non_ip,
        undecodable = stats.undecodable,
        evictions = stats.evictions,
        updates = stats.updates,
        secs = format!("{secs:.3}"),
        pps = format!("{:.0}", stats.packets as f64 / secs.max(1e-9)),
        "done"
    );
    if stats.evictions > 0 {
        tracing::warn!(
            evictions = stats.evictions,
            "the flow table was full: the least recently seen flows were emitted early"
        );
    }
    if let Some(k) = kernel {
        tracing::info!(
            received = k.received,
            dropped = k.dropped,
            if_dropped = k.if_dropped,
            "kernel capture counters"
        );
        if k.dropped + k.if_dropped > 0 {
            tracing::warn!(
                dropped = k.dropped + k.if_dropped,
                "the kernel dropped packets: flows are undercounted"
            );
        }
    }
    match err {
        None => Ok(ExitCode::SUCCESS),
        // A file cut short inside its last packet (a capture stopped while writing, a copy
        // interrupted) still held every packet before it: they are all above. As libpcap's
        // readers do, that is a warning, not a failure.
        Some(e @ flowmesh_sensor::capture::CaptureError::Truncated { .. }) => {
            eprintln!(
                "warning: {source}: {e}: the file ends inside a packet (cut short while it was \
                 written?); the {} flows above hold every packet before it",
                stats.flows
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(e) => {
            eprintln!(
                "error: {source}: {e} (the {} flows above were read before it)",
                stats.flows
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `flows --netflow ADDR`: exported flows as JSON lines until SIGINT/SIGTERM.
fn netflow(addr: &str) -> anyhow::Result<ExitCode> {
    use flowmesh_sensor::netflow::{Receiver, Settings, listen};
    let socket = listen::bind(addr).map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e} (a port below 1024 needs root)")
    })?;
    stop_on_signals();
    eprintln!(
        "receiving NetFlow v5/v9 and IPFIX on {}; Ctrl-C to stop",
        socket.local_addr()?
    );
    let mut receiver = Receiver::new(Settings::default());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = None;
    let mut line = Vec::with_capacity(512);
    let mut emit = |r: FlowRecord| {
        line.clear();
        r.write_json(&mut line);
        line.push(b'\n');
        if failed.is_none()
            && let Err(e) = out.write_all(&line).and_then(|_| out.flush())
        {
            failed = Some(e);
        }
    };
    listen::run(
        &socket,
        &mut receiver,
        || STOP.load(Ordering::Relaxed),
        &mut emit,
        |_| {},
    )?;
    for (exporter, c) in receiver.counters() {
        eprintln!(
            "exporter {exporter}: {} datagrams, {} records, {} malformed, {} data sets without a template",
            c.datagrams, c.records, c.malformed, c.missing_template
        );
    }
    if let Some(e) = failed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    Ok(ExitCode::SUCCESS)
}
