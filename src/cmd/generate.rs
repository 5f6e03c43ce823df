//! `flowmesh gen`: a synthetic capture for benchmarks.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write a synthetic pcap of realistic flows (TLS with SNI, DNS, HTTP; full TCP handshakes).
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the pcap.
    #[arg(long)]
    out: PathBuf,
    /// Number of flows (about 9 packets each).
    #[arg(long, default_value_t = 1_000_000)]
    flows: u64,
    /// Flows in progress at the same time (the flow table's peak size).
    #[arg(long, default_value_t = 1_000_000)]
    concurrent: u64,
    /// Seconds of capture time the packets span.
    #[arg(long, default_value_t = 60)]
    span: u64,
    /// Local client addresses the flows take turns over (a site of that many machines).
    /// Default: every flow has a client of its own (the worst case for per-host series).
    #[arg(long)]
    hosts: Option<u64>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&a.out)?);
    let packets = flowmesh_sensor::synth::generate_for_hosts(
        a.flows,
        a.concurrent,
        a.span,
        a.hosts,
        &mut out,
    )?;
    std::io::Write::flush(&mut out)?;
    eprintln!(
        "wrote {packets} packets of {} flows to {}",
        a.flows,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
