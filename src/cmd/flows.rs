//! `flowmesh flows`: one JSON flow record per line for a capture file.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use flowmesh_sensor::offline;

/// Print flow records for a capture.
#[derive(clap::Args)]
pub struct Args {
    /// A pcap or pcapng file (the format is detected from its first bytes).
    file: Option<PathBuf>,
    /// Capture live from this interface instead (not available yet).
    #[arg(long, conflicts_with = "file")]
    iface: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.iface.is_some() {
        eprintln!(
            "live capture (--iface) is not available yet: it is part of issue #3's remaining work. Capture with tcpdump -w and pass the file."
        );
        return Ok(ExitCode::from(2));
    }
    let Some(file) = a.file else {
        anyhow::bail!("give a capture file: flowmesh flows FILE.pcap");
    };
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut write_error = None;
    let result = offline::run_file(&file, &mut |record| {
        if write_error.is_none()
            && let Err(e) = serde_json::to_writer(&mut out, &record)
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n"))
        {
            write_error = Some(e);
        }
    });
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
        secs = format!("{secs:.3}"),
        pps = format!("{:.0}", stats.packets as f64 / secs.max(1e-9)),
        "done"
    );
    match err {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!(
                "error: {}: {e} (the {} flows above were read before it)",
                file.display(),
                stats.flows
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
